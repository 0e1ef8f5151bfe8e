#!/usr/bin/env bash
# Runs the whole suite: every C test program, every CLI test script and every PyTorch
# comparison, for the normal build and (if given) the sanitizer build, and once the build
# tests (tests/build_*.sh: the Makefile's configuration).
#   scripts/run-tests.sh BUILD [SANITIZER-BUILD]
# Each test ends PASS (exit 0), SKIP (exit 77: something it needs is missing; it says what)
# or FAIL (anything else). Prints one line per test and a closing "N passed, N failed,
# N skipped"; exits 1 if anything failed. Under CI=true (.ci/run, which installs every
# dependency first) a skip is a failure: there, a missing dependency is a broken set-up.
# (The bf16 tests run emulated on a CPU without bf16 instructions, so they skip only
# without oneDNN.)
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
SKIP=77
passed=0; failed=0; skipped=0; failed_names=(); skipped_names=()
ci=0; [ "${CI:-}" = true ] && ci=1

record_fail() {  # name, seconds, log
    failed=$((failed + 1)); failed_names+=("$1")
    printf 'FAIL  %-40s %3ds\n' "$1" "$2"; sed 's/^/      /' "$3" | tail -n 40
}

# Runs one test: run_one NAME COMMAND...
run_one() {
    local name=$1; shift
    local log; log=$(mktemp)
    local start=$SECONDS status=0
    "$@" >"$log" 2>&1 || status=$?
    local took=$((SECONDS - start))
    if [ "$status" -eq 0 ]; then
        passed=$((passed + 1)); printf 'PASS  %-40s %3ds\n' "$name" "$took"
    elif [ "$status" -eq "$SKIP" ]; then
        if [ "$ci" = 1 ]; then
            echo "(skipped, and under CI=true a skip is a failure)" >>"$log"
            record_fail "$name" "$took" "$log"
        else
            skipped=$((skipped + 1)); skipped_names+=("$name")
            printf 'SKIP  %-40s %3ds\n' "$name" "$took"
            grep -i 'skip' "$log" | head -n 5 | sed 's/^/      /'
        fi
    else
        echo "(exit $status)" >>"$log"
        record_fail "$name" "$took" "$log"
    fi
    rm -f "$log"
}

# A test that cannot start at all: SKIP_TEST NAME REASON (a SKIP, or under CI=true a FAIL).
skip_test() {
    run_one "$1" sh -c 'echo "SKIP: $1"; exit 77' sh "$2"
}

for build in "$@"; do
    tag=""; [ "$build" != "$1" ] && tag=" [$(basename "$build")]"
    export NABLA_BUILD=$build NABLA=$build/nabla
    if [ -n "$tag" ]; then
        export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
    fi
    for t in "$build"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "$(basename "$t")$tag" "$t"
    done
    for t in tests/cli_*.sh; do
        [ -f "$t" ] || continue
        run_one "$(basename "$t")$tag" bash "$t"
    done
    [ -n "$tag" ] && continue
    # Once: the comparisons with PyTorch, and the build tests (they build for themselves).
    have_torch=1
    "$PYTHON" -c 'import torch' 2>/dev/null || have_torch=0
    for t in tests/torch_*.py; do
        [ -f "$t" ] || continue
        if [ "$have_torch" = 1 ]; then
            run_one "$(basename "$t")" "$PYTHON" "$t"
        else
            skip_test "$(basename "$t")" \
                "$PYTHON cannot import torch (apt-get install python3-torch, or make deps)"
        fi
    done
    for t in tests/build_*.sh; do
        [ -f "$t" ] || continue
        run_one "$(basename "$t")" bash "$t"
    done
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$skipped" -eq 0 ] || printf 'skipped: %s\n' "${skipped_names[@]}"
[ "$failed" -eq 0 ] || { printf 'failed: %s\n' "${failed_names[@]}"; exit 1; }
