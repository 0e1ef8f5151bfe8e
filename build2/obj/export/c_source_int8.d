build2/obj/export/c_source_int8.o: src/export/c_source_int8.c \
 build2/config.h src/export/c_file.h src/export/plan.h include/nabla.h \
 src/model/model.h
build2/config.h:
src/export/c_file.h:
src/export/plan.h:
include/nabla.h:
src/model/model.h:
