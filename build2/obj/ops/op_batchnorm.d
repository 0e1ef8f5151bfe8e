build2/obj/ops/op_batchnorm.o: src/ops/op_batchnorm.c build2/config.h \
 src/backend/conv.h include/nabla.h src/core/graph.h
build2/config.h:
src/backend/conv.h:
include/nabla.h:
src/core/graph.h:
