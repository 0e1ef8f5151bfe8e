#!/usr/bin/env bash
# The distributed training protocol belongs to the library: a C program that embeds the
# trainer (tests/tool_dist_embed.c, public API only) and runs under mpirun -np 2 gets it
# without writing any of it — generators forked per rank (also after --resume's load), a
# stop asked on one rank stopping both before the same step, a stop from epoch_end on rank 0
# alone ending both after the same epoch, equal replicas, rank 0 alone writing checkpoints.
# Exits 77 (SKIP) without mpirun or without MPI in the build.
#
# Run from the repository root: bash tests/cli_dist_embed.sh (NABLA_BUILD defaults to build).
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"

TOOL=${NABLA_BUILD:-build}/tests/tool_dist_embed
case $TOOL in /*) ;; *) TOOL=$PWD/$TOOL ;; esac
[ -x "$TOOL" ] || { echo "FAIL: the test program $TOOL (run make)" >&2; exit 1; }
if ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: mpirun not found (apt-get install openmpi-bin libopenmpi-dev, then rebuild)"
    exit 77
fi
cli_mpirun_setup
cli_enter_scratch dist-embed

rc=0
timeout 120 "${MPIRUN[@]}" -np 2 "$TOOL" "$tmp" >out.txt 2>err.txt || rc=$?
if [ "$rc" -eq 77 ] || grep -q 'exited with status 77\|Exit code: *77' err.txt; then
    echo "SKIP: nabla was built without MPI (apt-get install libopenmpi-dev, then rebuild)"
    exit 77
fi
[ "$rc" -eq 0 ] && sanitizer_clean err.txt ||
    fail "mpirun -np 2 tool_dist_embed to pass (exit $rc)" "$(cat out.txt; tail -n 20 err.txt)"
grep '^ok:' out.txt
cli_finish cli_dist_embed
