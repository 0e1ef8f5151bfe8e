build2/obj/export/c_kernels.o: src/export/c_kernels.c build2/config.h \
 src/export/c_kernels.h include/nabla.h
build2/config.h:
src/export/c_kernels.h:
include/nabla.h:
