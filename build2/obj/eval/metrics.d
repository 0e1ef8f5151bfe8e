build2/obj/eval/metrics.o: src/eval/metrics.c build2/config.h \
 src/core/graph.h include/nabla.h src/model/model.h
build2/config.h:
src/core/graph.h:
include/nabla.h:
src/model/model.h:
