build2/cli/cmd_gradcheck.o: cli/cmd_gradcheck.c build2/config.h \
 build2/config-tool.h cli/cli.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
