build2/obj/formats/safetensors_dtype.o: src/formats/safetensors_dtype.c \
 build2/config.h src/formats/safetensors.h include/nabla.h
build2/config.h:
src/formats/safetensors.h:
include/nabla.h:
