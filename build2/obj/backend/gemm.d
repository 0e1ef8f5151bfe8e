build2/obj/backend/gemm.o: src/backend/gemm.c build2/config.h \
 src/backend/backend.h include/nabla.h src/backend/gemm_pool.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
src/backend/gemm_pool.h:
