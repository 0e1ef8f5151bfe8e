build2/obj/formats/safetensors_read.o: src/formats/safetensors_read.c \
 build2/config.h src/formats/safetensors.h include/nabla.h
build2/config.h:
src/formats/safetensors.h:
include/nabla.h:
