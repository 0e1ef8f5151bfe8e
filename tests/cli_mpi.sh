#!/usr/bin/env bash
# End-to-end tests of distributed training: `mpirun -np N nabla train` on this machine.
#   - N = 1, 2, 3, 4 ranks give the weights of one plain process within 1e-5 (largest
#     difference relative to the tensor's largest weight; N = 1 bit for bit) and the same
#     test accuracy — SGD with momentum and Adam, on a smooth (tanh) net: see below for ReLU;
#   - rank 0 alone writes the model, checkpoint, log and JSON summary (the other ranks run in
#     directories of their own, which must stay as they were);
#   - a checkpoint written by 2 ranks resumes on 1 rank and on 4, ending where one process
#     ends;
#   - a rank killed with SIGKILL mid-run stops the others within seconds with a message
#     naming it, and the last checkpoint still loads and resumes;
#   - a NaN loss stops every rank at the same step; a batch too small for the ranks is refused.
# Skips (status 0) when mpirun is absent or nabla was built without MPI.
#
# Run from the repository root: bash tests/cli_mpi.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"

[ -x "$NABLA" ] || { echo "FAIL: an executable CLI at $NABLA (run make)" >&2; exit 1; }
if ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: mpirun not found (apt-get install openmpi-bin libopenmpi-dev, then rebuild)"
    exit 77
fi
if "$NABLA" train --help | grep -q 'unavailable'; then
    echo "SKIP: $NABLA was built without MPI (apt-get install libopenmpi-dev, then rebuild)"
    exit 77
fi

cli_mpirun_setup  # MPIRUN=(mpirun as root, oversubscribed, in containers: lib_cli.sh)

bg=""
kill_background() { if [ -n "$bg" ]; then kill -9 "$bg" 2>/dev/null || true; fi; }
cli_enter_scratch mpi kill_background

# Every rank but 0 starts in rank<r>/, so a file it wrote under a relative name would show
# there; pid.<r> records each rank's process id (for the kill test).
cat > rankdir.sh <<'EOF'
r=${OMPI_COMM_WORLD_RANK:-0}
echo $$ > "$RANKS_DIR/pid.$r"
[ "$r" = 0 ] || cd "$RANKS_DIR/rank$r"
exec "$@"
EOF
export RANKS_DIR=$tmp

plain() {  # nabla ARGS, must succeed; output in out.txt, err.txt
    local rc=0
    "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq 0 ] && sanitizer_clean err.txt ||
        fail "nabla $* to succeed (exit $rc)" "$(tail -n 30 err.txt)"
}
mpi() {  # N, nabla ARGS: must succeed within 120 s; output in out.txt, err.txt
    local n=$1 rc=0; shift
    timeout 120 "${MPIRUN[@]}" -np "$n" sh "$tmp/rankdir.sh" "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq 0 ] && sanitizer_clean err.txt ||
        fail "mpirun -np $n nabla $* to succeed (exit $rc)" "$(tail -n 30 err.txt)"
}

# close A B [TOL]: every tensor of B within TOL (default 1e-5) of A's, the difference taken
# relative to the tensor's largest weight (an element near zero has no relative precision
# of its own). Prints the worst.
close() {
    "$PY" - "$1" "$2" "${3:-1e-5}" <<'EOF'
import json, struct, sys
import numpy as np
def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    return {k: np.frombuffer(raw[8 + n + t["data_offsets"][0]:8 + n + t["data_offsets"][1]],
                             dtype="<f4").astype(np.float64) for k, t in header.items()}
a, b, tol = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
if sorted(a) != sorted(b):
    sys.exit("tensors differ: %s vs %s" % (sorted(a), sorted(b)))
worst, at = 0.0, ""
for k in a:
    d = float(np.max(np.abs(a[k] - b[k])) / max(float(np.max(np.abs(a[k]))), 1e-30))
    if d >= worst:
        worst, at = d, k
print("%.2g (%s)" % (worst, at))
sys.exit(0 if worst <= tol else 1)
EOF
}
json_field() { "$PY" -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1" < "$2"; }

mkdir rank1 rank2 rank3
empty_rank_dirs() {  # what; the directories of ranks 1-3 hold nothing but what was put there
    local d f
    for d in rank1 rank2 rank3; do
        for f in "$d"/* "$d"/.[!.]*; do
            [ -e "$f" ] || continue
            case $f in */seed.ckpt) cmp -s "$f" seed.ckpt || fail "$1: $f unchanged" ;;
            *) fail "$1: ranks other than 0 to write nothing" "$(ls -la "$d")" ;;
            esac
        done
    done
}

# ---- N ranks = one process ---------------------------------------------------------------
# A smooth net: with ReLU, a pre-activation within rounding of zero can fall on either side
# of the kink, and the gradient then differs by a whole term (see the README).
D=(--data spirals:200:3:0.2 --test spirals:200:3:0.2:2 --batch 40 --epochs 20 -q --json)
M=2-32-32-3:tanh
msg=""
for opt in "sgd" "adam"; do
    plain train $M "${D[@]}" --optimizer $opt --threads 1 -o one.safetensors --checkpoint one.ckpt
    acc1=$(json_field test_accuracy out.txt)
    for n in 1 2 3 4; do
        mpi $n train $M "${D[@]}" --optimizer $opt -o n$n.safetensors --checkpoint n$n.ckpt --log n$n.csv
        [ "$(grep -c . out.txt)" -eq 1 ] || fail "$opt, $n ranks: one JSON summary (rank 0's)" "$(cat out.txt)"
        [ "$(json_field ranks out.txt)" = "$n" ] || fail "$opt, $n ranks: \"ranks\": $n in the summary" "$(cat out.txt)"
        acc=$(json_field test_accuracy out.txt)
        [ "$acc" = "$acc1" ] || fail "$opt, $n ranks: test accuracy $acc1 as one process" "$acc"
        worst=$(close one.safetensors n$n.safetensors) ||
            fail "$opt, $n ranks: weights within 1e-5 of one process's" "$worst"
        [ "$(grep -c '^[0-9]' n$n.csv)" -eq 20 ] || fail "$opt, $n ranks: a 20-epoch log" "$(cat n$n.csv)"
        empty_rank_dirs "$opt, $n ranks"
        msg="$msg $n:$worst"
        [ $n -eq 1 ] && { cmp -s one.safetensors n1.safetensors || fail "$opt: 1 rank bit-identical to no MPI"; }
    done
    ok "$opt: 1-4 ranks match one process (test accuracy $acc1; worst relative difference$msg)"
    msg=""
done

# ReLU for a few steps (before any pre-activation has come near a kink): also within 1e-5.
R=(2-64-64-3 --data spirals:200:3:0.2 --batch 40 --epochs 2 -q)
plain train "${R[@]}" --threads 1 -o relu1.safetensors --checkpoint relu1.ckpt
mpi 4 train "${R[@]}" -o relu4.safetensors --checkpoint relu4.ckpt
worst=$(close relu1.safetensors relu4.safetensors) || fail "ReLU, 4 ranks, 2 epochs: within 1e-5" "$worst"
ok "ReLU net, 30 steps on 4 ranks: within $worst of one process"

# ---- resume across rank counts ------------------------------------------------------------
E=(--data spirals:200:3:0.2 --batch 40)
plain train $M "${E[@]}" --epochs 12 --threads 1 -o full.safetensors --checkpoint full.ckpt
mpi 2 train $M "${E[@]}" --epochs 6 -o half.safetensors --checkpoint seed.ckpt
for n in 1 4; do
    cp seed.ckpt r$n.ckpt
    for d in rank1 rank2 rank3; do cp seed.ckpt "$d/"; done
    if [ $n -eq 1 ]; then
        plain train $M "${E[@]}" --epochs 12 --threads 1 -o r1.safetensors --checkpoint r1.ckpt --resume
    else
        for d in rank1 rank2 rank3; do cp seed.ckpt "$d/r$n.ckpt"; done
        mpi $n train $M "${E[@]}" --epochs 12 -o r$n.safetensors --checkpoint r$n.ckpt --resume
        grep -q 'resuming from r4.ckpt after epoch 6' err.txt || fail "4 ranks: 'resuming ... after epoch 6'" "$(cat err.txt)"
        for d in rank1 rank2 rank3; do
            cmp -s seed.ckpt "$d/r$n.ckpt" || fail "4 ranks: rank ${d#rank} reads the checkpoint and never writes it"
            rm "$d/r$n.ckpt"
        done
    fi
    worst=$(close full.safetensors r$n.safetensors) ||
        fail "2 ranks then $n: the model of one uninterrupted process within 1e-5" "$worst"
    msg="$msg on $n: $worst;"
done
empty_rank_dirs "resume"
rm -f rank*/seed.ckpt
ok "a 2-rank checkpoint (epoch 6 of 12) resumes$msg"

# ---- a rank that dies ---------------------------------------------------------------------
K=(2-64-64-3:tanh --data spirals:20000:3:0.2 --batch 64)
rm -f pid.*
start=$(date +%s)
timeout 120 "${MPIRUN[@]}" -np 2 sh "$tmp/rankdir.sh" "$NABLA" train "${K[@]}" --epochs 200 \
    -o k.safetensors --checkpoint k.ckpt >kill.out 2>kill.err &
bg=$!
for _ in $(seq 600); do [ -e k.ckpt ] && break; sleep 0.1; done
[ -e k.ckpt ] && [ -e pid.1 ] || fail "a checkpoint from the 2-rank run within 60 s" "$(cat kill.err)"
sleep 0.3
kill -9 "$(cat pid.1)"
killed=$(date +%s)
rc=0
wait "$bg" || rc=$?
bg=""
took=$(($(date +%s) - killed))
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "mpirun to fail by itself, not by timeout (exit $rc)" "$(cat kill.err)"
[ "$took" -le 30 ] || fail "the surviving rank to stop within 30 s of the kill (took ${took}s)"
grep -qiE 'rank 1.*(signal 9|killed)' kill.err || fail "a message naming rank 1 and its signal" "$(cat kill.err)"
plain eval k.ckpt --data spirals:50:3:0.2
e=$("$PY" -c '
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
print(json.loads(json.loads(raw[8:8 + n])["__metadata__"]["nabla.checkpoint"])["epoch"])' k.ckpt)
plain train "${K[@]}" --epochs $((e + 1)) --threads 1 -q -o k.safetensors --checkpoint k.ckpt --resume
ok "rank 1 killed (SIGKILL): mpirun stopped in ${took}s (exit $rc); the epoch-$e checkpoint loads and resumes"

# ---- agreed stops and refusals --------------------------------------------------------------
rc=0
timeout 120 "${MPIRUN[@]}" -np 2 "$NABLA" train 2-8-3 --data spirals:100:3 --batch 30 --lr 1e30 \
    -o nan.safetensors >out.txt 2>err.txt || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q 'the loss became' err.txt && sanitizer_clean err.txt ||
    fail "a NaN loss under 2 ranks: every rank stops, exit non-zero" "exit $rc: $(cat err.txt)"
"$PY" - nan.safetensors <<'EOF' || fail "the last good weights saved by rank 0 are finite"
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
sys.exit(0 if np.all(np.isfinite(np.frombuffer(raw[8 + n:], dtype="<f4"))) else 1)
EOF
rc=0
timeout 120 "${MPIRUN[@]}" -np 4 "$NABLA" train 2-8-3 --data spirals:10:3 --batch 3 -o x.safetensors \
    >out.txt 2>err.txt || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q 'every rank needs rows in every batch' err.txt ||
    fail "--batch 3 on 4 ranks refused with a message" "exit $rc: $(cat err.txt)"
ok "a NaN loss stops both ranks (last good weights saved); a batch smaller than the ranks is refused"
