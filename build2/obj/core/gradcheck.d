build2/obj/core/gradcheck.o: src/core/gradcheck.c build2/config.h \
 src/core/graph.h include/nabla.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
