build2/obj/train/best.o: src/train/best.c build2/config.h \
 src/train/best.h include/nabla.h
build2/config.h:
src/train/best.h:
include/nabla.h:
