build2/obj/backend/gemm_openblas.o: src/backend/gemm_openblas.c \
 build2/config.h src/backend/backend.h include/nabla.h \
 /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h \
 /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h:
/usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h:
