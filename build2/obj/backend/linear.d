build2/obj/backend/linear.o: src/backend/linear.c build2/config.h \
 src/backend/backend.h include/nabla.h src/backend/bf16.h \
 src/backend/linear.h src/backend/gemm_pool.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
src/backend/bf16.h:
src/backend/linear.h:
src/backend/gemm_pool.h:
