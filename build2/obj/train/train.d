build2/obj/train/train.o: src/train/train.c build2/config.h \
 src/backend/gemm_pool.h include/nabla.h src/core/graph.h \
 src/train/augment.h src/model/model.h src/train/best.h \
 src/train/settings.h
build2/config.h:
src/backend/gemm_pool.h:
include/nabla.h:
src/core/graph.h:
src/train/augment.h:
src/model/model.h:
src/train/best.h:
src/train/settings.h:
