build2/cli/plot.o: cli/plot.c build2/config.h build2/config-tool.h \
 cli/csv_table.h include/nabla.h cli/plot_draw.h cli/plot.h \
 /usr/include/cairo/cairo.h /usr/include/cairo/cairo-version.h \
 /usr/include/cairo/cairo-features.h \
 /usr/include/cairo/cairo-deprecated.h
build2/config.h:
build2/config-tool.h:
cli/csv_table.h:
include/nabla.h:
cli/plot_draw.h:
cli/plot.h:
/usr/include/cairo/cairo.h:
/usr/include/cairo/cairo-version.h:
/usr/include/cairo/cairo-features.h:
/usr/include/cairo/cairo-deprecated.h:
