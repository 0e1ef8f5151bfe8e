build2/obj/ops/op_pool.o: src/ops/op_pool.c build2/config.h \
 src/ops/window.h src/backend/conv.h include/nabla.h src/core/graph.h
build2/config.h:
src/ops/window.h:
src/backend/conv.h:
include/nabla.h:
src/core/graph.h:
