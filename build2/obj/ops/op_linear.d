build2/obj/ops/op_linear.o: src/ops/op_linear.c build2/config.h \
 src/backend/linear.h include/nabla.h src/core/graph.h
build2/config.h:
src/backend/linear.h:
include/nabla.h:
src/core/graph.h:
