build2/obj/data/data_csv.o: src/data/data_csv.c build2/config.h \
 src/data/csv_targets.h src/data/labels.h include/nabla.h
build2/config.h:
src/data/csv_targets.h:
src/data/labels.h:
include/nabla.h:
