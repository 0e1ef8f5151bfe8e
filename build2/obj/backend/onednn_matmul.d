build2/obj/backend/onednn_matmul.o: src/backend/onednn_matmul.c \
 build2/config.h src/backend/onednn_matmul.h
build2/config.h:
src/backend/onednn_matmul.h:
