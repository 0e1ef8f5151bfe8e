build2/obj/backend/gemm_pool.o: src/backend/gemm_pool.c build2/config.h \
 src/backend/gemm_pool.h include/nabla.h
build2/config.h:
src/backend/gemm_pool.h:
include/nabla.h:
