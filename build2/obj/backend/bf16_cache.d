build2/obj/backend/bf16_cache.o: src/backend/bf16_cache.c build2/config.h \
 src/backend/backend.h include/nabla.h src/backend/bf16_state.h \
 src/backend/bf16.h src/backend/linear.h src/backend/onednn_matmul.h \
 src/backend/openmp.h src/backend/gemm_pool.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
src/backend/bf16_state.h:
src/backend/bf16.h:
src/backend/linear.h:
src/backend/onednn_matmul.h:
src/backend/openmp.h:
src/backend/gemm_pool.h:
