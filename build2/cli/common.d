build2/cli/common.o: cli/common.c build2/config.h build2/config-tool.h \
 cli/cli.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
