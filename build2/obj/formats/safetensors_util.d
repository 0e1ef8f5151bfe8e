build2/obj/formats/safetensors_util.o: src/formats/safetensors_util.c \
 build2/config.h src/formats/safetensors.h include/nabla.h
build2/config.h:
src/formats/safetensors.h:
include/nabla.h:
