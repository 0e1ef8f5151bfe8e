build2/cli/csv_table.o: cli/csv_table.c build2/config.h \
 build2/config-tool.h cli/csv_table.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/csv_table.h:
include/nabla.h:
