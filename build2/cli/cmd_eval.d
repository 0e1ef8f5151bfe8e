build2/cli/cmd_eval.o: cli/cmd_eval.c build2/config.h \
 build2/config-tool.h cli/cli.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
