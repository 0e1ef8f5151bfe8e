build2/obj/model/predict.o: src/model/predict.c build2/config.h \
 src/model/model.h include/nabla.h
build2/config.h:
src/model/model.h:
include/nabla.h:
