build2/obj/ops/op_softmax.o: src/ops/op_softmax.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
