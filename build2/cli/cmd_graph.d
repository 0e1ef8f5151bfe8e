build2/cli/cmd_graph.o: cli/cmd_graph.c build2/config.h \
 build2/config-tool.h cli/cli.h include/nabla.h
build2/config.h:
build2/config-tool.h:
cli/cli.h:
include/nabla.h:
