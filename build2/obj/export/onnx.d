build2/obj/export/onnx.o: src/export/onnx.c build2/config.h \
 src/export/plan.h include/nabla.h build2/gen/onnx.pb-c.h
build2/config.h:
src/export/plan.h:
include/nabla.h:
build2/gen/onnx.pb-c.h:
