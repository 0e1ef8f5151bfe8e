build2/obj/data/labels.o: src/data/labels.c build2/config.h \
 src/data/labels.h include/nabla.h
build2/config.h:
src/data/labels.h:
include/nabla.h:
