build2/obj/backend/image_avx2.o: src/backend/image_avx2.c build2/config.h \
 src/backend/backend.h include/nabla.h src/backend/conv.h \
 src/backend/gemm_pool.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
src/backend/conv.h:
src/backend/gemm_pool.h:
