build2/obj/train/decimal.o: src/train/decimal.c build2/config.h \
 src/train/decimal.h
build2/config.h:
src/train/decimal.h:
