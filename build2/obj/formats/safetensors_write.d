build2/obj/formats/safetensors_write.o: src/formats/safetensors_write.c \
 build2/config.h src/formats/safetensors.h include/nabla.h
build2/config.h:
src/formats/safetensors.h:
include/nabla.h:
