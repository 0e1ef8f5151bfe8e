build2/obj/ops/op_reshape.o: src/ops/op_reshape.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
