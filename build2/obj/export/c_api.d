build2/obj/export/c_api.o: src/export/c_api.c build2/config.h \
 src/export/c_file.h src/export/plan.h include/nabla.h
build2/config.h:
src/export/c_file.h:
src/export/plan.h:
include/nabla.h:
