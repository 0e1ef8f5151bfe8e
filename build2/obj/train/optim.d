build2/obj/train/optim.o: src/train/optim.c build2/config.h \
 src/train/decimal.h src/backend/gemm_pool.h include/nabla.h \
 src/core/graph.h
build2/config.h:
src/train/decimal.h:
src/backend/gemm_pool.h:
include/nabla.h:
src/core/graph.h:
