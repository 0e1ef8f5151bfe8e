build2/cli/main.o: cli/main.c build2/config.h build2/config-tool.h \
 cli/cli.h include/nabla.h cli/plot.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
cli/plot.h:
