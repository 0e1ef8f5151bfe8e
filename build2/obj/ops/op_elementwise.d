build2/obj/ops/op_elementwise.o: src/ops/op_elementwise.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
