build2/obj/backend/conv.o: src/backend/conv.c build2/config.h \
 src/backend/conv.h include/nabla.h
build2/config.h:
src/backend/conv.h:
include/nabla.h:
