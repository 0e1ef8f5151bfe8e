build2/obj/train/schedule.o: src/train/schedule.c build2/config.h \
 src/train/decimal.h include/nabla.h
build2/config.h:
src/train/decimal.h:
include/nabla.h:
