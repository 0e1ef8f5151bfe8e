#!/usr/bin/env bash
# Runs the whole suite: every C test program, every CLI test script and every PyTorch
# comparison, for the normal build and (if given) the sanitizer build. Prints one line per
# test and a closing "N passed, N failed"; exits non-zero if anything failed.
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/usr/bin/python3}
passed=0; failed=0; failed_names=()

run_one() {  # name, command...
    local name=$1; shift
    local log; log=$(mktemp)
    local start=$SECONDS
    if "$@" >"$log" 2>&1; then
        passed=$((passed + 1)); printf 'PASS  %-40s %3ds\n' "$name" $((SECONDS - start))
    else
        failed=$((failed + 1)); failed_names+=("$name")
        printf 'FAIL  %-40s %3ds\n' "$name" $((SECONDS - start)); sed 's/^/      /' "$log" | tail -n 40
    fi
    rm -f "$log"
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
    if [ -z "$tag" ]; then
        if "$PYTHON" -c 'import torch' 2>/dev/null; then
            for t in tests/torch_*.py; do
                [ -f "$t" ] || continue
                run_one "$(basename "$t")" "$PYTHON" "$t"
            done
        else
            echo "SKIP  PyTorch comparisons: $PYTHON cannot import torch (apt-get install python3-torch)"
        fi
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || { printf 'failed: %s\n' "${failed_names[@]}"; exit 1; }
