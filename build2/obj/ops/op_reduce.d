build2/obj/ops/op_reduce.o: src/ops/op_reduce.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
