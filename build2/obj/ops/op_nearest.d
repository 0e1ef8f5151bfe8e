build2/obj/ops/op_nearest.o: src/ops/op_nearest.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
