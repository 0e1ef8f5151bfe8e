build2/obj/data/targets.o: src/data/targets.c build2/config.h \
 include/nabla.h
build2/config.h:
include/nabla.h:
