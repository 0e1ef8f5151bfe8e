build2/obj/core/precision.o: src/core/precision.c build2/config.h \
 src/backend/linear.h include/nabla.h src/core/graph.h
build2/config.h:
src/backend/linear.h:
include/nabla.h:
src/core/graph.h:
