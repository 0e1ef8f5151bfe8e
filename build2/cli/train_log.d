build2/cli/train_log.o: cli/train_log.c build2/config.h \
 build2/config-tool.h cli/cli.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
