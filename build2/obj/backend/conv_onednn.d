build2/obj/backend/conv_onednn.o: src/backend/conv_onednn.c \
 build2/config.h src/backend/backend.h include/nabla.h src/backend/conv.h \
 src/backend/gemm_pool.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
src/backend/conv.h:
src/backend/gemm_pool.h:
