build2/obj/train/augment.o: src/train/augment.c build2/config.h \
 src/train/augment.h include/nabla.h src/core/graph.h
build2/config.h:
src/train/augment.h:
include/nabla.h:
src/core/graph.h:
