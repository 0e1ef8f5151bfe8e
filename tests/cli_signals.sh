#!/usr/bin/env bash
# Signals stop training cleanly (issue 12): SIGTERM (what schedulers send before they kill)
# and SIGINT (Ctrl-C) stop `nabla train` between two steps, write the checkpoint at that exact
# position within the epoch and exit with the signal's conventional status (143, 130); a
# second signal ends the process at once. Signals are sent at random moments of real runs,
# and every resumed run ends bit-identical (cmp) to an uninterrupted one:
#   - one process: SIGTERM three times at random moments, SIGINT once, each followed by
#     --resume; a second signal during the stop;
#   - mpirun -np 2: one chain of runs stopped by SIGINT to mpirun (Ctrl-C), SIGTERM to mpirun,
#     SIGTERM to rank 1 alone and SIGINT to mpirun again, each resumed by the next (the ranks
#     agree to stop before the same step; rank 0 writes the checkpoint, at the position its
#     message gives, and names the signal any rank got);
#   - under mpirun, errors (an option, data missing on every rank or on one, a checkpoint that
#     cannot be written) print once, without MPI_ABORT noise; eval runs once, in rank 0.
#
# Run from the repository root: bash tests/cli_signals.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
bg=""
kill_background() { if [ -n "$bg" ]; then kill -9 "$bg" 2>/dev/null || true; fi; }
cli_enter_scratch signals kill_background
[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"

# wait_for FILE PATTERN: until FILE shows PATTERN (30 s at most)
wait_for() {
    local i
    for i in $(seq 3000); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
    fail "$1 to show /$2/ within 30 s" "$(cat "$1")"
}
# pause R MAX: sleeps R/32767 of MAX seconds (R drawn from $RANDOM by the caller)
pause() { sleep "$(awk -v r="$1" -v d="$2" 'BEGIN { printf "%.3f", r / 32767 * d }')"; }

# ---- one process ---------------------------------------------------------------------------
A=(2-64-3 --data spirals:20000:3:0.2 --batch 16 --epochs 4 --threads 1)
run train "${A[@]}" -q -o ref.safetensors --checkpoint ref.ckpt
stops=""
for sig in TERM INT TERM TERM; do
    resume=()
    [ -e s.ckpt ] && resume=(--resume)
    rm -f s.err
    log=s-$sig-${#stops}.csv
    "$NABLA" train "${A[@]}" -o s.safetensors --checkpoint s.ckpt --log "$log" "${resume[@]}" >/dev/null 2>s.err &
    bg=$!
    # an epoch takes ~0.1 s on an idle machine and seconds on a busy one: the signal comes at
    # a random moment after the run's log gained an epoch
    for i in $(seq 6000); do [ "$(wc -l 2>/dev/null < "$log" || echo 0)" -ge 2 ] && break; sleep 0.005; done
    r=$RANDOM
    pause "$r" 0.05
    kill -"$sig" "$bg" 2>/dev/null || true
    rc=0
    wait "$bg" || rc=$?
    bg=""
    sanitizer_clean s.err || fail "no sanitizer report" "$(cat s.err)"
    if grep -q '^saved s\.safetensors' s.err; then  # trained and saved before the signal came
        stops="$stops $sig:finished"
        break
    fi
    want=143
    [ "$sig" = INT ] && want=130
    [ "$rc" -eq "$want" ] || fail "SIG$sig: exit status $want" "exit $rc: $(cat s.err)"
    grep -qE "^nabla train: SIG$sig: interrupted in epoch [0-9]+ after [0-9]+ of 60000 samples; saved the checkpoint s\.ckpt" s.err ||
        fail "SIG$sig: a message with the position and the checkpoint" "$(cat s.err)"
    where=$(grep -oE 'epoch [0-9]+ after [0-9]+' s.err)
    stops="$stops $sig:${where// /_}"
done
[ ! -e s.ckpt ] || resume=(--resume)
run train "${A[@]}" -q -o s.safetensors --checkpoint s.ckpt "${resume[@]}"
case "$stops" in " TERM:epoch_"*) ;; *) fail "the first SIGTERM stopped the run mid-way" "$stops";; esac
same ref.safetensors s.safetensors "stopped at${stops} and resumed: the final model"
same ref.ckpt s.ckpt "stopped at${stops} and resumed: the final checkpoint"
ok "SIGTERM/SIGINT at random moments ($stops): status 143/130, checkpoint, resumed run bit-identical"

# a second signal while the first is being handled ends the process at once: no checkpoint
cp s.ckpt before.ckpt
"$NABLA" train "${A[@]}" -o d.safetensors --checkpoint d.ckpt >/dev/null 2>d.err &
bg=$!
wait_for d.err '^training '
kill -INT "$bg"
kill -TERM "$bg"
rc=0
wait "$bg" || rc=$?
bg=""
# (the kernel may deliver them in either order: the second one handled kills)
{ [ "$rc" -eq 143 ] || [ "$rc" -eq 130 ]; } && ! grep -q 'interrupted' d.err ||
    fail "SIGINT and SIGTERM at once: the process ends by the second (130 or 143) without stopping cleanly" "exit $rc: $(cat d.err)"
[ ! -e d.ckpt ] || "$NABLA" info d.ckpt >/dev/null || fail "a checkpoint from before the signals still loads"
ok "a second signal ends the run at once (exit $rc)"

# --checkpoint none: the stop is clean, and says that nothing was saved
"$NABLA" train "${A[@]}" -o n.safetensors --checkpoint none >/dev/null 2>n.err &
bg=$!
wait_for n.err '^training '
kill -TERM "$bg"
rc=0
wait "$bg" || rc=$?
bg=""
[ "$rc" -eq 143 ] && grep -q 'no checkpoint written (--checkpoint none)' n.err ||
    fail "SIGTERM with --checkpoint none: 143 and 'no checkpoint written'" "exit $rc: $(cat n.err)"
ok "SIGTERM with --checkpoint none: exit 143, 'no checkpoint written'"

# ---- mpirun -np 2 ----------------------------------------------------------------------------
if ! command -v mpirun >/dev/null 2>&1 || "$NABLA" train --help | grep -q 'is unavailable'; then
    echo "SKIP: mpirun or nabla's MPI support missing: the distributed half is not tested"
    exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_mpi_yield_when_idle=1
MPIRUN=(env "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" mpirun --oversubscribe)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
# pid.<rank> records each rank's process id
cat > rankpid.sh <<'EOS'
echo $$ > "$RANKS_DIR/pid.${OMPI_COMM_WORLD_RANK:-0}"
exec "$@"
EOS
export RANKS_DIR=$tmp
# How mpirun (Open MPI 4.1) passes a signal on: SIGUSR1/2, SIGTSTP, SIGCONT… go to every rank
# as they are, but SIGINT (Ctrl-C) and SIGTERM to mpirun mean "end the job": it sends every
# rank SIGCONT, waits odls_base_sigkill_timeout (1 s), sends SIGTERM, waits 1 s more and sends
# SIGKILL. nabla's ranks stop at their next step after that SIGTERM, and rank 0 writes the
# checkpoint within the second left. So a run must still be training more than a second after
# the signal: the number of epochs follows this machine's speed now (an epoch of 15,000
# samples takes ~0.02 s on an idle machine, ~0.5 s on a busy one), for ~8 s of training.
M=(2-32-3:tanh --data spirals:5000:3:0.2 --batch 16)
timeout 120 "${MPIRUN[@]}" -np 2 "$NABLA" train "${M[@]}" --epochs 2 -q -o cal.safetensors \
    --checkpoint none --log cal.csv >/dev/null 2>err.txt || fail "a 2-epoch 2-rank run" "$(cat err.txt)"
epochs=$(awk -F, 'NR > 1 && $8 > s { s = $8 } END { e = int(8 / (s > 0 ? s : 0.01)) + 1;
                  print (e < 10 ? 10 : e > 1000 ? 1000 : e) }' cal.csv)
M+=(--epochs "$epochs")
timeout 300 "${MPIRUN[@]}" -np 2 "$NABLA" train "${M[@]}" -q -o mref.safetensors --checkpoint mref.ckpt >/dev/null 2>err.txt ||
    fail "the uninterrupted 2-rank run" "$(cat err.txt)"
# position CKPT: the checkpoint's "epoch E after P samples" (P 0: written at an epoch's end)
position() {
    "$PY" - "$1" <<'PYEOF'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
c = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["nabla.checkpoint"])
print("epoch %d after %d" % (c["epoch"] + 1, c["position"]))
PYEOF
}
# One chain of runs, each stopped by a signal at a random moment of its second epoch or later
# and resumed by the next: SIGINT and SIGTERM to mpirun itself (Ctrl-C, a scheduler that
# signals the launcher), SIGTERM to rank 1 alone (a scheduler that signals the processes).
# The last stop may come after the end if the machine has sped up since the calibration.
stops=""
targets=(mpirun:INT mpirun:TERM rank1:TERM mpirun:INT)
for k in "${!targets[@]}"; do
    target=${targets[$k]%%:*} sig=${targets[$k]#*:}
    resume=()
    [ -e m.ckpt ] && resume=(--resume)
    rm -f m.err pid.*
    log=m-$k.csv
    timeout 300 "${MPIRUN[@]}" -np 2 sh rankpid.sh "$NABLA" train "${M[@]}" -o m.safetensors --checkpoint m.ckpt --log "$log" "${resume[@]}" >/dev/null 2>m.err &
    bg=$!
    # rank 0's own log file, not mpirun's forwarded output (which may arrive in one piece at the
    # end), says that this run trained an epoch; the signal comes at a random moment after
    for i in $(seq 6000); do [ "$(wc -l 2>/dev/null < "$log" || echo 0)" -ge 2 ] && break; sleep 0.005; done
    [ -s pid.1 ] || fail "both ranks started and one epoch logged within 30 s" "$(cat m.err)"
    pause "$RANDOM" 0.05
    if [ "$target" = mpirun ]; then
        kill -"$sig" "$(pgrep -P "$bg")" 2>/dev/null || true  # timeout's child: mpirun
    else
        kill -"$sig" "$(cat pid.1)" 2>/dev/null || true
    fi
    rc=0
    wait "$bg" || rc=$?
    bg=""
    what="2 ranks, SIG$sig to $target (stop $((k + 1)) of ${#targets[@]})"
    sanitizer_clean m.err || fail "$what: no sanitizer report" "$(cat m.err)"
    if grep -q '^saved m\.safetensors' m.err; then  # trained and saved before the signal came
        [ "$k" -eq $((${#targets[@]} - 1)) ] ||
            fail "$what: the run stopped mid-way (it finished first: $epochs epochs too few?)" "$(cat m.err)"
        stops="$stops $target:$sig:finished"
        break
    fi
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "$what: a non-zero exit, not a timeout" "exit $rc: $(cat m.err)"
    # mpirun passes Ctrl-C (SIGINT) on as SIGTERM: the ranks see SIGTERM either way
    [ "$(grep -cE "^nabla train: SIG($sig|TERM): interrupted in epoch" m.err)" -eq 1 ] ||
        fail "$what: one message (rank 0's) with the signal and the position" "$(cat m.err)"
    ! grep -qE 'MPI_ABORT|ORTE_ERROR_LOG' m.err || fail "$what: no abort noise" "$(cat m.err)"
    where=$(grep -oE 'epoch [0-9]+ after [0-9]+' m.err)
    [ "$(position m.ckpt)" = "$where" ] ||
        fail "$what: the checkpoint at the position the message gives ($where)" "$(position m.ckpt)"
    stops="$stops $target:$sig:${where// /_}"
done
resume=()
[ -e m.ckpt ] && resume=(--resume)
timeout 300 "${MPIRUN[@]}" -np 2 "$NABLA" train "${M[@]}" -q -o m.safetensors --checkpoint m.ckpt "${resume[@]}" >/dev/null 2>err.txt ||
    fail "the resumed 2-rank run" "$(cat err.txt)"
same mref.safetensors m.safetensors "2 ranks stopped at${stops} and resumed: the final model"
same mref.ckpt m.ckpt "2 ranks stopped at${stops} and resumed: the final checkpoint"
# a checkpoint slower to write than half of mpirun's grace between SIGTERM and SIGKILL gets a
# note, once (a grace of 1 ns here: mpirun reads it as 0, which only a signal would use)
! grep -q 'note: writing the checkpoint' err.txt || fail "no note on a checkpoint written in time" "$(cat err.txt)"
OMPI_MCA_odls_base_sigkill_timeout=0.000000001 timeout 300 "${MPIRUN[@]}" -np 2 "$NABLA" train 2-8-3 \
    --data spirals:300 --epochs 3 -q -o g.safetensors >/dev/null 2>err.txt || fail "a run with a short grace" "$(cat err.txt)"
[ "$(grep -c 'note: writing the checkpoint g\.safetensors\.ckpt took .* leaves the ranks 1e-09 s .* --mca odls_base_sigkill_timeout [0-9]' err.txt)" -eq 1 ] ||
    fail "one note on a checkpoint slower than mpirun's grace, with the option to give" "$(cat err.txt)"
ok "mpirun -np 2 ($epochs epochs), SIGINT/SIGTERM to mpirun and SIGTERM to rank 1 at random moments ($stops): every rank stops, rank 0 writes the checkpoint, resumed run bit-identical"

# ---- under mpirun, errors print once, without MPI_ABORT noise --------------------------------
# once PATTERN FILE: PATTERN on exactly one line of FILE, and no abort noise
once() {
    [ "$(grep -cE "$1" "$2")" -eq 1 ] || fail "/$1/ printed once" "$(cat "$2")"
    ! grep -qE 'MPI_ABORT|ORTE_ERROR_LOG|MPI_Abort' "$2" || fail "no MPI_ABORT noise" "$(cat "$2")"
}
mpi_fails() {  # nabla ARGS under 2 ranks: exits non-zero by itself; stderr in err.txt
    local rc=0
    timeout 120 "${MPIRUN[@]}" -np 2 sh rankdir.sh "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "mpirun -np 2 nabla $*: a non-zero exit, not a timeout" "exit $rc: $(cat err.txt)"
    sanitizer_clean err.txt || fail "no sanitizer report" "$(cat err.txt)"
}
# rank 1 runs in rank1/, where a file of rank 0's directory may be missing
mkdir rank1
cat > rankdir.sh <<'EOS'
[ "${OMPI_COMM_WORLD_RANK:-0}" = 0 ] || cd "$RANKS_DIR/rank1"
exec "$@"
EOS
printf 'x0,x1,c\n0,1,0\n1,0,1\n1,1,2\n0,0,0\n' > d.csv
mpi_fails train 2-8-3 --data spirals:100 --bogus
once "unknown option '--bogus'" err.txt
mpi_fails train 2-8-3 --data csv:missing.csv -o x.safetensors
once 'missing\.csv' err.txt
mpi_fails train 2-8-3 --data csv:d.csv:c --batch 4 -o x.safetensors
once '^nabla train \[rank 1 of 2\]: d\.csv: ' err.txt
mkdir sub
timeout 120 "${MPIRUN[@]}" -np 2 "$NABLA" train 2-8-3:tanh --data spirals:2000:3:0.2 --batch 16 --epochs 500 -q \
    -o y.safetensors --checkpoint sub/c.ckpt >out.txt 2>err.txt &
bg=$!
for _ in $(seq 300); do [ -e sub/c.ckpt ] && break; sleep 0.05; done
rm -rf sub
rc=0
wait "$bg" || rc=$?
bg=""
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "2 ranks, checkpoint directory removed: a non-zero exit" "exit $rc: $(cat err.txt)"
once 'sub/c\.ckpt: .*training stopped at the end of epoch' err.txt
[ ! -e y.safetensors ] || fail "2 ranks, checkpoint failed: no model saved as if finished"
timeout 120 "${MPIRUN[@]}" -np 2 "$NABLA" eval mref.safetensors --data spirals:50:3:0.2 >out.txt 2>err.txt ||
    fail "mpirun -np 2 nabla eval" "$(cat err.txt)"
[ "$(grep -c '^accuracy' out.txt)" -eq 1 ] || fail "mpirun -np 2 nabla eval: the result printed once" "$(cat out.txt)"
grep -q 'runs once, in rank 0' err.txt || fail "mpirun -np 2 nabla eval: a note that rank 0 alone runs it" "$(cat err.txt)"
ok "under mpirun: a bad option, missing data (on all ranks, on rank 1 alone), a checkpoint that cannot be written: one message, no MPI_ABORT; eval runs once"

echo "cli_signals: all passed"
