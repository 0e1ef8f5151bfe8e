build2/cli/outputs.o: cli/outputs.c build2/config.h build2/config-tool.h \
 cli/cli.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
