build2/obj/model/describe.o: src/model/describe.c build2/config.h \
 src/model/describe.h include/nabla.h src/core/graph.h
build2/config.h:
src/model/describe.h:
include/nabla.h:
src/core/graph.h:
