build2/obj/ops/op_dropout.o: src/ops/op_dropout.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
