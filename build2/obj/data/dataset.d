build2/obj/data/dataset.o: src/data/dataset.c build2/config.h \
 src/data/labels.h include/nabla.h
build2/config.h:
src/data/labels.h:
include/nabla.h:
