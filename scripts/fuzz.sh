#!/usr/bin/env bash
# Fuzzes the loaders with libFuzzer: scripts/fuzz.sh [SECONDS] [HARNESS...]
#
# Builds fuzz/fuzz_*.c with clang (-fsanitize=fuzzer,address,undefined) against the library
# sources compiled with -fsanitize=address,undefined,fuzzer-no-link into build/fuzz/, writes
# the seed corpora (scripts/make-fuzz-seeds.py), then for each harness (all by default):
#   1. replays every file in tests/fuzz-regressions/<harness>/ — inputs that once crashed;
#   2. fuzzes for SECONDS (default 60) from build/fuzz/corpus/<harness>/ (kept between runs,
#      grown by the fuzzer) and the seeds, with a 2 GB RSS and malloc limit and 10 s per
#      input.
# A crash, leak, timeout or out-of-memory input is copied into tests/fuzz-regressions/
# <harness>/ (to be committed with the fix) and the script exits non-zero once every harness
# has run. Logs: build/fuzz/logs/<harness>.log.
#
# Needs clang and libclang-rt-14-dev (libFuzzer and the sanitizer runtimes). The matrix
# product falls back to the portable backend (no NB_HAVE_ONEDNN / NB_HAVE_OPENBLAS), which
# needs no extra libraries and keeps the sanitizers' view whole. Environment: CLANG (default
# clang), FUZZ_JOBS (parallel compiles, default: cores), FUZZ_ARGS (extra libFuzzer options).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-60}
shift || true
CLANG=${CLANG:-clang}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=build/fuzz
ALL_HARNESSES=(idx csv safetensors describe model checkpoint)
[ $# -gt 0 ] && HARNESSES=("$@") || HARNESSES=("${ALL_HARNESSES[@]}")

case $SECONDS_EACH in ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [HARNESS...]" >&2; exit 2 ;; esac
for h in "${HARNESSES[@]}"; do
    [ -f "fuzz/fuzz_$h.c" ] || { echo "fuzz.sh: no harness fuzz/fuzz_$h.c" >&2; exit 2; }
done
if ! command -v "$CLANG" >/dev/null; then
    echo "fuzz.sh: $CLANG not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 2
fi
if ! printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}\n' |
        "$CLANG" -x c - -fsanitize=fuzzer,address,undefined -o /dev/null 2>/dev/null; then
    echo "fuzz.sh: $CLANG cannot link -fsanitize=fuzzer (apt-get install libclang-rt-14-dev)" >&2
    exit 2
fi

# ---- build -----------------------------------------------------------------------------------
DEP_CFLAGS=$(pkg-config --cflags libcjson zlib 2>/dev/null || true)
DEP_LIBS="$(pkg-config --libs libcjson zlib 2>/dev/null || echo -lcjson -lz) -lm -lpthread"
# -fno-sanitize-recover: UndefinedBehaviorSanitizer aborts, so libFuzzer records the input.
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CFLAGS="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Iinclude -Isrc $DEP_CFLAGS"
mkdir -p "$OUT/obj" "$OUT/logs"

# Objects are rebuilt when their source, a header or this script is newer. An object is named
# after its source's path (src/core/plan.c → core-plan.o): two layers may hold files of the
# same name (core/plan.c and export/plan.c), whose objects must not overwrite each other.
object_of() { local p=${1#src/}; p=${p%.c}; printf '%s/obj/%s.o' "$OUT" "${p//\//-}"; }
newest_dep=$(ls -t include/nabla.h include/nabla/*.h src/*/*.h "$0" | head -n 1)
stale=()
for src in src/*/*.c; do
    obj=$(object_of "$src")
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_dep" -nt "$obj" ]; then
        stale+=("$src")
    fi
done
if [ ${#stale[@]} -gt 0 ]; then
    echo "fuzz.sh: compiling ${#stale[@]} library sources with $CLANG (address, undefined, fuzzer-no-link)"
    export CLANG CFLAGS SAN OUT
    for src in "${stale[@]}"; do printf '%s %s\n' "$src" "$(object_of "$src")"; done |
        xargs -P "${FUZZ_JOBS:-$(nproc)}" -n 2 sh -c \
        'c="$CLANG $CFLAGS $SAN -fsanitize=fuzzer-no-link -c $0 -o $1"
         $c || { echo "fuzz.sh: retrying $0 once" >&2; $c; } || exit 255'
fi
# The archive holds exactly the current sources' objects (not those of removed files); it is
# replaced only when that changes anything, so the harnesses relink only then.
objs=()
for src in src/*/*.c; do objs+=("$(object_of "$src")"); done
rm -f "$OUT/libnabla-fuzz.a.new"
ar rcs "$OUT/libnabla-fuzz.a.new" "${objs[@]}"
if [ ${#stale[@]} -gt 0 ] || ! cmp -s "$OUT/libnabla-fuzz.a.new" "$OUT/libnabla-fuzz.a"; then
    mv "$OUT/libnabla-fuzz.a.new" "$OUT/libnabla-fuzz.a"
else
    rm -f "$OUT/libnabla-fuzz.a.new"
fi
for h in "${HARNESSES[@]}"; do
    bin=$OUT/fuzz_$h
    if [ ! -x "$bin" ] || [ "fuzz/fuzz_$h.c" -nt "$bin" ] || [ fuzz/fuzz_file.h -nt "$bin" ] ||
            [ "$OUT/libnabla-fuzz.a" -nt "$bin" ]; then
        # shellcheck disable=SC2086
        "$CLANG" $CFLAGS $SAN -fsanitize=fuzzer "fuzz/fuzz_$h.c" "$OUT/libnabla-fuzz.a" \
            $DEP_LIBS -o "$bin"
    fi
done

# ---- seeds -----------------------------------------------------------------------------------
seed_args=()
[ -x build/nabla ] && seed_args=(--nabla build/nabla)
"$PYTHON" scripts/make-fuzz-seeds.py "${seed_args[@]}" "$OUT/seeds" >/dev/null

# ---- run -------------------------------------------------------------------------------------
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()

# Copies what libFuzzer left in the artifact directory into tests/fuzz-regressions/<h>/.
keep_artifacts() {  # harness
    local h=$1 kept=0 f
    mkdir -p "tests/fuzz-regressions/$h"
    for f in "$OUT/artifacts/$h"/crash-* "$OUT/artifacts/$h"/leak-* \
             "$OUT/artifacts/$h"/timeout-* "$OUT/artifacts/$h"/oom-*; do
        [ -f "$f" ] || continue
        cp "$f" "tests/fuzz-regressions/$h/"
        echo "      kept tests/fuzz-regressions/$h/$(basename "$f")"
        kept=1
    done
    return $kept
}

for h in "${HARNESSES[@]}"; do
    bin=$OUT/fuzz_$h log=$OUT/logs/$h.log
    rm -rf "$OUT/artifacts/$h"
    mkdir -p "$OUT/artifacts/$h" "$OUT/corpus/$h"

    regressions=()
    if [ -d "tests/fuzz-regressions/$h" ]; then
        for f in "tests/fuzz-regressions/$h"/*; do [ -f "$f" ] && regressions+=("$f"); done
    fi
    if [ ${#regressions[@]} -gt 0 ]; then
        # Each file once; a crash stops the replay (libFuzzer's rule), so the log names it.
        if ! "$bin" -rss_limit_mb=2048 -timeout=10 "${regressions[@]}" >"$log.replay" 2>&1; then
            echo "FAIL  fuzz_$h: a regression input fails again (log: $log.replay):"
            grep -E 'Running: |ERROR|runtime error|invariant failed|SUMMARY' "$log.replay" | tail -n 8 | sed 's/^/      /'
            failed+=("$h (regression)")
            continue
        fi
    fi

    status=0
    # shellcheck disable=SC2086
    "$bin" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$OUT/artifacts/$h/" -print_final_stats=1 ${FUZZ_ARGS:-} \
        "$OUT/corpus/$h" "$OUT/seeds/$h" >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)
    if [ $status -eq 0 ]; then
        printf 'PASS  fuzz_%-12s %4ss  %s runs, %s, %s regression inputs replayed\n' "$h" \
            "$SECONDS_EACH" "${runs:-?}" "${cov:-cov: ?}" "${#regressions[@]}"
    else
        echo "FAIL  fuzz_$h (exit $status; log: $log):"
        grep -E 'ERROR|runtime error|invariant failed|SUMMARY|Test unit written' "$log" | head -n 8 | sed 's/^/      /'
        keep_artifacts "$h" || true
        failed+=("$h")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: failures in: ${failed[*]}"
    echo "fuzz.sh: the inputs are in tests/fuzz-regressions/; replay one with build/fuzz/fuzz_<harness> FILE"
    exit 1
fi
