build2/obj/data/data_idx.o: src/data/data_idx.c build2/config.h \
 include/nabla.h
build2/config.h:
include/nabla.h:
