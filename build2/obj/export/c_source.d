build2/obj/export/c_source.o: src/export/c_source.c build2/config.h \
 src/export/c_file.h src/export/plan.h include/nabla.h \
 src/export/c_kernels.h
build2/config.h:
src/export/c_file.h:
src/export/plan.h:
include/nabla.h:
src/export/c_kernels.h:
