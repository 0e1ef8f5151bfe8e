build2/obj/backend/bf16.o: src/backend/bf16.c build2/config.h \
 src/backend/bf16.h src/backend/linear.h include/nabla.h
build2/config.h:
src/backend/bf16.h:
src/backend/linear.h:
include/nabla.h:
