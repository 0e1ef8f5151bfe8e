build2/obj/backend/gemm_onednn.o: src/backend/gemm_onednn.c \
 build2/config.h src/backend/backend.h include/nabla.h \
 src/backend/onednn_matmul.h src/backend/openmp.h \
 /usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h \
 /usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h
build2/config.h:
src/backend/backend.h:
include/nabla.h:
src/backend/onednn_matmul.h:
src/backend/openmp.h:
/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h:
/usr/include/x86_64-linux-gnu/openblas-pthread/openblas_config.h:
