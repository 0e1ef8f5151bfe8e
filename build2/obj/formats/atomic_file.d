build2/obj/formats/atomic_file.o: src/formats/atomic_file.c \
 build2/config.h include/nabla.h
build2/config.h:
include/nabla.h:
