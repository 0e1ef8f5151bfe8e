build2/obj/ops/op_activation.o: src/ops/op_activation.c build2/config.h \
 src/backend/gemm_pool.h include/nabla.h src/core/graph.h
build2/config.h:
src/backend/gemm_pool.h:
include/nabla.h:
src/core/graph.h:
