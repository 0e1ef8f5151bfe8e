build2/obj/gen/onnx.pb-c.o: build2/gen/onnx.pb-c.c build2/config.h \
 build2/gen/onnx.pb-c.h
build2/config.h:
build2/gen/onnx.pb-c.h:
