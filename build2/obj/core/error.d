build2/obj/core/error.o: src/core/error.c build2/config.h include/nabla.h
build2/config.h:
include/nabla.h:
