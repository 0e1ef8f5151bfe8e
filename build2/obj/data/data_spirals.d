build2/obj/data/data_spirals.o: src/data/data_spirals.c build2/config.h \
 include/nabla.h
build2/config.h:
include/nabla.h:
