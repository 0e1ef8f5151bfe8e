# nabla — build, test, install. `make` builds everything, `make run` installs what the main
# job needs and does it, `make test` installs the rest and runs the whole suite.
#
# Optional dependencies (oneDNN, OpenBLAS, cairo, Open MPI) are detected, not assumed:
# scripts/configure.sh writes $(BUILD)/config.h and $(BUILD)/config.mk from probes, each
# rewritten only when an answer changes, and every object depends on config.h. Force one off
# with e.g. `make HAVE_ONEDNN=0` (=1 makes it required); the next plain `make` detects again.

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
OPT     ?= -O2 -g
# -Wmissing-prototypes: every function that is not static has a prototype in scope where it
# is defined (its header), which catches a forgotten `static` and a definition that drifted
# from its declaration.
WARN    := -std=c11 -Wall -Wextra -pedantic -Wmissing-prototypes
PYTHON  ?= /usr/bin/python3

# Every core by default (the rules below state every ordering they need). Only the top-level
# make sets it: sub-makes share its job server. `make -j1` still wins.
ifeq ($(MAKELEVEL),0)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 1)
endif

ifeq ($(SAN),1)
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

# ---- configuration ---------------------------------------------------------------------------
# Goals that only install or delete, or that call make again once the packages are there
# (run, test, bench), do not configure: on a fresh machine the probes would find nothing yet.
NO_CONFIG_GOALS := deps deps-run deps-test run test bench fuzz clean
ifneq ($(filter-out $(NO_CONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
CONFIGURE := $(shell CC='$(CC)' HAVE_ONEDNN='$(HAVE_ONEDNN)' HAVE_OPENBLAS='$(HAVE_OPENBLAS)' \
	HAVE_CAIRO='$(HAVE_CAIRO)' HAVE_MPI='$(HAVE_MPI)' HAVE_ONNX='$(HAVE_ONNX)' scripts/configure.sh '$(BUILD)' >&2 || echo failed)
ifneq ($(CONFIGURE),)
$(error scripts/configure.sh failed (its message is above))
endif
include $(BUILD)/config.mk
endif
CONFIG_H := $(BUILD)/config.h
# The tool's own configuration (cairo): only the tool and the tests that draw depend on it.
TOOL_CONFIG_H := $(BUILD)/config-tool.h
TOOL_CFLAGS += -include $(TOOL_CONFIG_H)

# -O2 vectorises only loops that need no runtime checks; the element-wise kernels need the
# usual (-O3) cost model to vectorise at all. Not -Ofast: it breaks numerics.
VECTORIZE := $(if $(filter gcc cc,$(notdir $(CC))),-fvect-cost-model=dynamic,)
# -include: every source sees the NB_HAVE_* macros without naming the build folder; -MMD -MP:
# each object's header list (config.h included) is written next to it and read back below.
CFLAGS  += $(OPT) $(VECTORIZE) $(WARN) -fPIC -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc \
	-include $(CONFIG_H) -MMD -MP $(SAN_FLAGS) $(DEP_CFLAGS)
LDFLAGS += $(SAN_FLAGS)

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

# ---- ONNX export (optional; src/export/onnx.c) ---------------------------------------------
# Needs libprotobuf-c and protoc-c (configure.sh: HAVE_ONNX, NB_HAVE_ONNX). protoc-c compiles the
# vendored ONNX schema (src/export/onnx/onnx.proto) into $(BUILD)/gen/ at build time; generated
# code is never committed. Without them, `nabla export --format onnx` says why; --format c works.
ifeq ($(HAVE_ONNX),1)
CFLAGS  += -I$(BUILD)/gen
LIB_OBJ += $(BUILD)/obj/gen/onnx.pb-c.o
endif
# ---- end of ONNX export --------------------------------------------------------------------

STATIC := $(BUILD)/libnabla.a
SHARED := $(BUILD)/libnabla.so
NABLA  := $(BUILD)/nabla
# What `make run` builds: the library, the tool, and the example the quick start runs next.
RUN_BIN := $(STATIC) $(SHARED) $(NABLA) $(BUILD)/examples/classify

.PHONY: all tool deps deps-run deps-test test test-c run run-cnn bench bench-cnn fuzz install clean
all: $(STATIC) $(SHARED) $(NABLA) $(TEST_BIN) $(EX_BIN) $(BENCH_BIN)
tool: $(NABLA)

# ---- build rules ---------------------------------------------------------------------------
# Every compile also depends on config.h (config-tool.h for the tool and tests; through
# -include and the .d files) and on the Makefile (flag changes rebuild).
$(BUILD)/obj/%.o: src/%.c $(CONFIG_H) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/cli/%.o: cli/%.c $(CONFIG_H) $(TOOL_CONFIG_H) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TOOL_CFLAGS) -Icli -c $< -o $@
$(STATIC): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^
$(SHARED): $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(DEP_LIBS)
$(NABLA): $(CLI_OBJ) $(STATIC)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(DEP_LIBS) $(TOOL_LIBS)
$(BUILD)/tests/%: tests/%.c $(CONFIG_H) $(TOOL_CONFIG_H) Makefile $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TOOL_CFLAGS) -Itests $< -o $@ $(STATIC) $(DEP_LIBS) $(TOOL_LIBS) $(LDFLAGS)
$(BUILD)/examples/%: examples/%.c $(CONFIG_H) Makefile $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(STATIC) $(DEP_LIBS) $(LDFLAGS)
$(BUILD)/bench/%: bench/%.c $(CONFIG_H) Makefile $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(STATIC) $(DEP_LIBS) $(LDFLAGS)
# ONNX export: the schema compiled at build time (see "ONNX export" above).
$(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h &: src/export/onnx/onnx.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --proto_path=src/export/onnx --c_out=$(BUILD)/gen src/export/onnx/onnx.proto
$(BUILD)/obj/gen/onnx.pb-c.o: $(BUILD)/gen/onnx.pb-c.c $(BUILD)/gen/onnx.pb-c.h $(CONFIG_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/export/onnx.o $(BUILD)/obj/export/onnx_build.o: $(if $(filter 1,$(HAVE_ONNX)),$(BUILD)/gen/onnx.pb-c.h)

# ---- fault injection (tests/cli_failures.sh): an LD_PRELOAD shim, not a program ------------
FAILIO := $(BUILD)/tests/failio.so
all: $(FAILIO)
$(FAILIO): tests/shim_failio.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -fPIC -shared $< -o $@ -ldl

# The header lists that -MMD wrote (absent before the first build: nothing to rebuild then).
-include $(wildcard $(BUILD)/obj/*/*.d $(BUILD)/cli/*.d $(BUILD)/tests/*.d \
	$(BUILD)/examples/*.d $(BUILD)/bench/*.d)

# ---- installing packages, and the goals that need them -------------------------------------
# Each goal below installs first, then calls make again, so the build is configured with
# what was just installed (also under -j: the recursive make starts after deps-*).

# Everything: the main job's packages and the test suite's (PyTorch, clang, Graphviz, MPI).
deps: deps-test
deps-run:
	@scripts/deps.sh run
deps-test:
	@scripts/deps.sh test

# The main job: train the default classifier on Fashion-MNIST and report test accuracy.
run: deps-run
	@$(MAKE) --no-print-directory $(RUN_BIN)
	@scripts/main-job.sh $(NABLA)

# The second main job: the small CNN of examples/fashion-cnn.nb on Fashion-MNIST (several
# minutes; SEED=n and EPOCHS=n may be set). Not part of make test.
run-cnn: deps-run
	@$(MAKE) --no-print-directory $(RUN_BIN)
	@scripts/cnn-job.sh $(NABLA)

# The whole suite: unit tests, CLI tests, PyTorch comparisons, then the unit tests again
# under AddressSanitizer + UndefinedBehaviorSanitizer.
test: deps-test
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT="-O1 -g" build/asan/libnabla.a \
		$(TEST_BIN:$(BUILD)/%=build/asan/%) $(EX_BIN:$(BUILD)/%=build/asan/%) build/asan/nabla
	@scripts/run-tests.sh $(BUILD) build/asan

test-c: all
	@scripts/run-tests.sh $(BUILD)

# nabla against PyTorch (bench/bench.py; a few minutes). BENCH_ARGS, e.g. "--quick" or
# "--priority rt" (every measured process at real-time priority, on a shared machine).
BENCH_ARGS ?=
bench: deps-test
	@$(MAKE) --no-print-directory $(BENCH_BIN)
	@$(PYTHON) bench/bench.py --nabla $(BUILD)/bench/bench_mlp $(BENCH_ARGS)

# The CNN of examples/fashion-cnn.nb against PyTorch (bench/bench_cnn.py; a few minutes;
# BENCH_ARGS e.g. "--quick" or "--rounds 5 --steps 60"). Needs no apt-get: `make all` first.
bench-cnn:
	@$(MAKE) --no-print-directory $(BUILD)/bench/bench_cnn
	@$(PYTHON) bench/bench_cnn.py --nabla $(BUILD)/bench/bench_cnn $(BENCH_ARGS)

# libFuzzer harnesses (fuzz/*.c, built with clang by the script): FUZZ_SECONDS per loader.
FUZZ_SECONDS ?= 60
fuzz: deps-test
	@scripts/fuzz.sh $(FUZZ_SECONDS)

install: $(STATIC) $(SHARED) $(NABLA)
	install -d $(DESTDIR)$(PREFIX)/include/nabla $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/nabla.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 include/nabla/*.h $(DESTDIR)$(PREFIX)/include/nabla/
	install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(NABLA) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/#define NB_VERSION "\(.*\)"/\1/p' include/nabla/base.h)|' \
	    -e 's|@LIBS@|$(DEP_LIBS)|' nabla.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nabla.pc

clean:
	rm -rf build

# ---- further rules -------------------------------------------------------------------------
# Rules for generated sources and extra goals go here, one commented block each. Objects get
# config.h, header tracking and the parallel build from the rules above; a goal that needs
# packages installs them first and then calls $(MAKE), as `run` does.
