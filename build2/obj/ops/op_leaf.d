build2/obj/ops/op_leaf.o: src/ops/op_leaf.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
