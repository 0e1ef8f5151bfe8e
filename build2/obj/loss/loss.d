build2/obj/loss/loss.o: src/loss/loss.c build2/config.h \
 src/backend/gemm_pool.h include/nabla.h src/core/graph.h
build2/config.h:
src/backend/gemm_pool.h:
include/nabla.h:
src/core/graph.h:
