build2/obj/backend/conv_portable.o: src/backend/conv_portable.c \
 build2/config.h src/backend/conv_portable.h src/backend/conv.h \
 include/nabla.h src/backend/gemm_pool.h
build2/config.h:
src/backend/conv_portable.h:
src/backend/conv.h:
include/nabla.h:
src/backend/gemm_pool.h:
