build2/obj/train/settings.o: src/train/settings.c build2/config.h \
 src/train/settings.h include/nabla.h
build2/config.h:
src/train/settings.h:
include/nabla.h:
