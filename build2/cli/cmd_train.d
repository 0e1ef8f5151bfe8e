build2/cli/cmd_train.o: cli/cmd_train.c build2/config.h \
 build2/config-tool.h cli/cli.h include/nabla.h cli/plot.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
cli/plot.h:
