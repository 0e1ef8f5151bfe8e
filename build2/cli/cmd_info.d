build2/cli/cmd_info.o: cli/cmd_info.c build2/config.h \
 build2/config-tool.h cli/cli.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
