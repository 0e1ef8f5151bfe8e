build2/obj/core/graph.o: src/core/graph.c build2/config.h \
 src/backend/linear.h include/nabla.h src/core/graph.h
build2/config.h:
src/backend/linear.h:
include/nabla.h:
src/core/graph.h:
