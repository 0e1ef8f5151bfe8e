build2/obj/export/plan.o: src/export/plan.c build2/config.h \
 src/export/plan.h include/nabla.h src/core/graph.h src/ops/window.h \
 src/backend/conv.h
build2/config.h:
src/export/plan.h:
include/nabla.h:
src/core/graph.h:
src/ops/window.h:
src/backend/conv.h:
