# Shared by the CLI test scripts (sourced by tests/cli_*.sh, not run): which nabla to test, a scratch
# directory, and the fail/ok/run helpers. Scripts run from the repository root.

NABLA=${NABLA:-${NABLA_BUILD:-build}/nabla}
case $NABLA in /*) ;; *) NABLA=$PWD/$NABLA ;; esac
PY=/usr/bin/python3
ROOT=$PWD
# On a busy machine, OpenMP threads that spin while waiting make small runs ~40x slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# cli_enter_scratch NAME [HOOK]: cd into a fresh directory removed on exit, after running the
# function HOOK if given (e.g. to kill background runs). Every epoch fsyncs a checkpoint, so
# a RAM disk keeps that cheap.
cli_enter_scratch() {
    local scratch=${TMPDIR:-/tmp}
    if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch=/dev/shm; fi
    tmp=$(mktemp -d "$scratch/nabla-$1.XXXXXX")
    cli_exit_hook=${2:-}
    trap 'if [ -n "$cli_exit_hook" ]; then "$cli_exit_hook" || true; fi; rm -rf "$tmp"' EXIT
    cd "$tmp"
}

fail() {  # what was expected, then optionally the actual output
    printf 'FAIL: %s\n' "$1" >&2
    if [ $# -gt 1 ]; then printf '%s\n' "--- actual:" "$2" | sed 's/^/  /' >&2; fi
    exit 1
}
ok() { printf 'ok: %s\n' "$1"; }

# skip REASON: a part of the script cannot run here (the reason says what to install); the
# script goes on, and cli_finish then exits 77 (SKIP): a skipped part is not a passed one.
cli_skipped=0
skip() { printf 'SKIP: %s\n' "$1"; cli_skipped=1; }
# cli_finish NAME: the closing line; exit 77 if a part was skipped, else 0.
cli_finish() {
    if [ "$cli_skipped" = 1 ]; then
        echo "$1: every check that ran passed; some parts were skipped (SKIP above)"
        exit 77
    fi
    echo "$1: all passed"
    exit 0
}

sanitizer_clean() { ! grep -qE 'Sanitizer|runtime error:' "$1"; }

# Fails unless `nabla ARGS...` exits 0 without a sanitizer report; stdout in out.txt,
# stderr in err.txt.
run() {
    local rc=0
    "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
    if [ "$rc" -ne 0 ] || ! sanitizer_clean err.txt; then
        fail "nabla $* to succeed (exit status $rc)" "$(cat out.txt err.txt | tail -n 30)"
    fi
}

# expect_fail STATUS 'ERE'... :: ARGS...: `nabla ARGS` exits with STATUS (1: a failure, 2: a
# usage error) and a stderr message matching every pattern, that names no internal function
# (nb_...) and carries no sanitizer report. Output in out.txt, err.txt.
expect_fail() {
    local want=$1 patterns=() rc=0 p
    shift
    while [ "$1" != "::" ]; do patterns+=("$1"); shift; done
    shift
    "$NABLA" "$@" >out.txt 2>err.txt </dev/null || rc=$?
    [ "$rc" -eq "$want" ] || fail "nabla $*: exit status $want" "exit $rc: $(head -c 1500 err.txt)"
    sanitizer_clean err.txt || fail "nabla $*: no sanitizer report" "$(head -n 30 err.txt)"
    ! grep -qE '\bnb_[a-z_]+' err.txt || fail "nabla $*: no internal function named" "$(cat err.txt)"
    for p in "${patterns[@]}"; do
        grep -qE -- "$p" err.txt || fail "nabla $*: a message matching /$p/" "$(head -c 1500 err.txt)"
    done
}

# cli_mpirun_setup: MPIRUN=(...) runs mpirun as root and in containers: allows root, more ranks
# than cores, no ptrace-based single copy (often forbidden in containers), and ranks that
# yield while they wait. Under AddressSanitizer, ranks skip the leak check: Open MPI keeps
# allocations until exit in components it has unloaded by then (not suppressible by name).
cli_mpirun_setup() {
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
    export OMPI_MCA_mpi_yield_when_idle=1
    MPIRUN=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun)
    if [ "$(id -u)" -eq 0 ]; then MPIRUN+=(--allow-run-as-root); fi
    MPIRUN+=(--oversubscribe)
}

# Background runs a script starts: their ids in pids, killed on exit by passing kill_runs to
# cli_enter_scratch.
pids=()
kill_runs() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}

same() {  # file file what: the two files bit-identical
    cmp -s "$1" "$2" || fail "$3: $1 and $2 bit-identical" "$(cmp "$1" "$2" 2>&1)"
}
