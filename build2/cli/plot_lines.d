build2/cli/plot_lines.o: cli/plot_lines.c build2/config.h \
 build2/config-tool.h cli/plot_draw.h cli/plot.h include/nabla.h \
 /usr/include/cairo/cairo.h /usr/include/cairo/cairo-version.h \
 /usr/include/cairo/cairo-features.h \
 /usr/include/cairo/cairo-deprecated.h
build2/config.h:
build2/config-tool.h:
cli/plot_draw.h:
cli/plot.h:
include/nabla.h:
/usr/include/cairo/cairo.h:
/usr/include/cairo/cairo-version.h:
/usr/include/cairo/cairo-features.h:
/usr/include/cairo/cairo-deprecated.h:
