build2/obj/backend/gemm_portable.o: src/backend/gemm_portable.c \
 build2/config.h src/backend/backend.h include/nabla.h \
 src/backend/gemm_portable_kernel.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
src/backend/gemm_portable_kernel.h:
