build2/obj/data/csv_targets.o: src/data/csv_targets.c build2/config.h \
 src/data/csv_targets.h src/data/labels.h include/nabla.h
build2/config.h:
src/data/csv_targets.h:
src/data/labels.h:
include/nabla.h:
