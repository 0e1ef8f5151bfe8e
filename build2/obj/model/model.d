build2/obj/model/model.o: src/model/model.c build2/config.h \
 src/model/describe.h include/nabla.h src/core/graph.h src/model/model.h
build2/config.h:
src/model/describe.h:
include/nabla.h:
src/core/graph.h:
src/model/model.h:
