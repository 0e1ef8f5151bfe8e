build2/obj/core/rng.o: src/core/rng.c build2/config.h include/nabla.h
build2/config.h:
include/nabla.h:
