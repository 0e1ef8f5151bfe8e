# nabla — build, test, install. `make` builds, `make test` tests, `make run` does the main job.
# Optional dependencies (oneDNN, OpenBLAS, cairo, Open MPI) are detected, not assumed.

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
OPT     ?= -O2 -g
WARN    := -std=c11 -Wall -Wextra -pedantic
# -O2 vectorises only loops that need no runtime checks; the element-wise kernels need the
# usual (-O3) cost model to vectorise at all. Not -Ofast: it breaks numerics.
VECTORIZE := $(if $(filter gcc cc,$(notdir $(CC))),-fvect-cost-model=dynamic,)
CFLAGS  += $(OPT) $(VECTORIZE) $(WARN) -fPIC -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc $(SAN_FLAGS)
LDFLAGS += $(SAN_FLAGS)
PYTHON  ?= /usr/bin/python3

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

# ---- dependency detection ------------------------------------------------------------------
probe = $(shell printf '#include <$(1)>\nint main(void){return 0;}\n' | $(CC) -x c - $(2) -o /dev/null >/dev/null 2>&1 && echo 1)

HAVE_ONEDNN   ?= $(call probe,dnnl.h,-ldnnl)
HAVE_OPENBLAS ?= $(shell pkg-config --exists openblas 2>/dev/null && echo 1)
HAVE_CAIRO    ?= $(shell pkg-config --exists cairo 2>/dev/null && echo 1)
HAVE_MPI      ?= $(shell pkg-config --exists ompi-c 2>/dev/null && echo 1)

DEP_CFLAGS := $(shell pkg-config --cflags libcjson zlib 2>/dev/null)
DEP_LIBS   := $(shell pkg-config --libs libcjson zlib 2>/dev/null || echo -lcjson -lz) -lm -lpthread
ifeq ($(HAVE_ONEDNN),1)
DEP_CFLAGS += -DNB_HAVE_ONEDNN
DEP_LIBS   += -ldnnl
endif
ifeq ($(HAVE_OPENBLAS),1)
DEP_CFLAGS += -DNB_HAVE_OPENBLAS $(shell pkg-config --cflags openblas)
DEP_LIBS   += $(shell pkg-config --libs openblas)
endif
# Distributed training (mpirun -np N nabla train): every MPI call is in src/dist/dist.c.
ifeq ($(HAVE_MPI),1)
DEP_CFLAGS += -DNB_HAVE_MPI $(shell pkg-config --cflags ompi-c)
DEP_LIBS   += $(shell pkg-config --libs ompi-c)
endif
# Pictures (nabla train --plot, nabla plot-regions) are drawn by the tool, not the library.
ifeq ($(HAVE_CAIRO),1)
TOOL_CFLAGS := -DNB_HAVE_CAIRO $(shell pkg-config --cflags cairo)
TOOL_LIBS   := $(shell pkg-config --libs cairo)
endif
CFLAGS += $(DEP_CFLAGS)

# ---- sources -------------------------------------------------------------------------------
LIB_SRC   := $(sort $(wildcard src/*/*.c))
LIB_OBJ   := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
CLI_SRC   := $(sort $(wildcard cli/*.c))
CLI_OBJ   := $(CLI_SRC:cli/%.c=$(BUILD)/cli/%.o)
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# tests/tool_*.c: helper programs that the Python comparison scripts drive (not run alone).
TOOL_SRC  := $(sort $(wildcard tests/tool_*.c))
TEST_BIN  += $(TOOL_SRC:tests/%.c=$(BUILD)/tests/%)
EX_SRC    := $(sort $(wildcard examples/*.c))
EX_BIN    := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

STATIC := $(BUILD)/libnabla.a
SHARED := $(BUILD)/libnabla.so
NABLA  := $(BUILD)/nabla

.PHONY: all deps test test-c test-asan run bench fuzz install clean
all: $(STATIC) $(SHARED) $(NABLA) $(TEST_BIN) $(EX_BIN) $(BENCH_BIN)

$(BUILD)/obj/%.o: src/%.c include/nabla.h $(wildcard src/*/*.h) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/cli/%.o: cli/%.c include/nabla.h $(wildcard cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TOOL_CFLAGS) -Icli -c $< -o $@
$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^
$(SHARED): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(DEP_LIBS)
$(NABLA): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(DEP_LIBS) $(TOOL_LIBS)
$(BUILD)/tests/%: tests/%.c tests/check.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TOOL_CFLAGS) -Itests $< -o $@ $(STATIC) $(DEP_LIBS) $(TOOL_LIBS) $(LDFLAGS)
$(BUILD)/examples/%: examples/%.c $(wildcard examples/*.h) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(STATIC) $(DEP_LIBS) $(LDFLAGS)
$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(STATIC) $(DEP_LIBS) $(LDFLAGS)

# Installs missing Debian packages (build and test dependencies, the data set).
deps:
	@scripts/deps.sh

# The whole suite: unit tests, CLI tests, PyTorch comparisons, then the unit tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer.
test: deps all
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT="-O1 -g" build/asan/libnabla.a \
		$(TEST_BIN:$(BUILD)/%=build/asan/%) $(EX_BIN:$(BUILD)/%=build/asan/%) build/asan/nabla
	@scripts/run-tests.sh $(BUILD) build/asan

test-c: all
	@scripts/run-tests.sh $(BUILD)

# The main job: train the default classifier on Fashion-MNIST and report test accuracy.
run: deps all
	@scripts/main-job.sh $(NABLA)

# nabla against PyTorch (bench/bench.py; a few minutes). BENCH_ARGS, e.g. "--quick" or
# "--priority rt" (every measured process at real-time priority, on a shared machine).
BENCH_ARGS ?=
bench: deps all
	@$(PYTHON) bench/bench.py --nabla $(BUILD)/bench/bench_mlp $(BENCH_ARGS)

# libFuzzer harnesses (fuzz/*.c, built with clang): FUZZ_SECONDS per loader.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

install: $(STATIC) $(SHARED) $(NABLA)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/nabla.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(NABLA) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/#define NB_VERSION "\(.*\)"/\1/p' include/nabla.h)|' \
	    -e 's|@LIBS@|$(DEP_LIBS)|' nabla.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nabla.pc

clean:
	rm -rf build
