build2/cli/cmd_plot.o: cli/cmd_plot.c build2/config.h \
 build2/config-tool.h cli/cli.h include/nabla.h cli/csv_table.h \
 cli/plot.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
cli/csv_table.h:
cli/plot.h:
