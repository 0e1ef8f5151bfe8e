#!/usr/bin/env bash
# End-to-end tests of checkpoints and faults in `nabla train`:
#   - a run interrupted after k epochs and continued with --resume ends bit-identical to an
#     uninterrupted run (plain SGD with momentum; Adam on a description with Dropout);
#   - SIGKILL at random moments never leaves a corrupt checkpoint or a temporary file that
#     looks like a final file, and resuming still ends bit-identical;
#   - SIGINT stops with status 130 after writing a checkpoint that --resume accepts;
#   - an unwritable output is reported before training, naming the path;
#   - a diverging run (huge learning rate) stops with a message about the NaN/inf loss and
#     leaves a model file with finite weights.
#
# Run from the repository root: bash tests/cli_resume.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
cli_enter_scratch resume kill_runs


# finite FILE: every tensor of a safetensors file holds finite float32 values.
finite() {
    "$PY" - "$1" <<'EOF'
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
header.pop("__metadata__", None)
bad = []
for name, t in header.items():
    a, b = t["data_offsets"]
    x = np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4")
    if not np.all(np.isfinite(x)):
        bad.append("%s (%d of %d not finite)" % (name, int(np.sum(~np.isfinite(x))), x.size))
if bad or not header:
    print("non-finite tensors: " + ", ".join(bad) if bad else "no tensors")
    sys.exit(1)
EOF
}

# ckpt_epoch FILE: the epoch a checkpoint holds.
ckpt_epoch() {
    "$PY" -c '
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
print(json.loads(json.loads(raw[8:8 + n])["__metadata__"]["nabla.checkpoint"])["epoch"])' "$1"
}

# fraction R D: R (0..32767, from $RANDOM drawn in the calling shell) / 32767 of D seconds.
fraction() { awk -v r="$1" -v d="$2" 'BEGIN { printf "%.3f", r / 32767 * d }'; }

now() { date +%s.%N; }

[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"

cat > drop.nb <<'EOF'
x   = input(2)
h1  = linear(x, 32)
a1  = relu(h1)
h2  = linear(a1, 32)
res = add(h1, h2)
d   = dropout(res, 0.2)
out = linear(d, 3)
EOF

# ---- resume after k of N epochs: bit-identical to the uninterrupted run -------------------
D=spirals:300:3:0.2
for setting in "2-64-3 --optimizer sgd" "drop.nb --optimizer adam" "2-32-3 --optimizer adamw --schedule step --step-size 7 --order stratified"; do
    # shellcheck disable=SC2086 # the setting is a model and options
    set -- $setting
    model=$1; shift
    run train "$model" "$@" --data $D --epochs 12 --threads 1 -q -o full.safetensors --checkpoint full.ckpt --log full.csv
    run train "$model" "$@" --data $D --epochs 5 --threads 1 -q -o part.safetensors --checkpoint part.ckpt --log part.csv
    run info part.ckpt
    grep -q 'parameters' out.txt || fail "nabla info on a checkpoint to list its parameters" "$(cat out.txt)"
    run train "$model" "$@" --data $D --epochs 12 --threads 1 -o part.safetensors --checkpoint part.ckpt --log part.csv --resume
    grep -q 'resuming from part.ckpt after epoch 5' err.txt ||
        fail "$setting: 'resuming from part.ckpt after epoch 5'" "$(cat err.txt)"
    [ "$(grep -c '^epoch ' err.txt)" -eq 7 ] || fail "$setting: epochs 6 to 12 after resuming" "$(cat err.txt)"
    same full.safetensors part.safetensors "$setting: models of the resumed and the uninterrupted run"
    same full.ckpt part.ckpt "$setting: checkpoints of the resumed and the uninterrupted run"
    # the log continues: one header, epochs 1..12, the same losses
    "$PY" - full.csv part.csv <<'EOF' || fail "$setting: the resumed log to continue the first one" "$(cat part.csv)"
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:])
assert [int(r["epoch"]) for r in b] == list(range(1, 13)), [r["epoch"] for r in b]
assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]
EOF
done
ok "resuming after 5 of 12 epochs is bit-identical (sgd; adam with dropout; adamw, step schedule, stratified)"

# ---- the --log file: a new run starts it afresh, --resume cuts it back to the checkpoint -----
L=(2-16-3 --data $D --threads 1 -q)
run train "${L[@]}" --epochs 4 -o lref.safetensors --log lref.csv
run train "${L[@]}" --epochs 4 -o lnew.safetensors --log lnew.csv
run train "${L[@]}" --epochs 4 -o lnew.safetensors --log lnew.csv  # again: replaces, not appends
cmp -s <(cut -d, -f1-5 lref.csv) <(cut -d, -f1-5 lnew.csv) ||
    fail "a new run over an old log: one header and epochs 1-4 (the old rows gone)" "$(cat lnew.csv)"
# a log ahead of its checkpoint (a run killed between logging epoch 3 and checkpointing it, or
# resumed from an older checkpoint), ending in a row cut short: --resume keeps epochs 1-2 only
run train "${L[@]}" --epochs 2 -o lres.safetensors --log lres.csv
cp lres.safetensors.ckpt epoch2.ckpt
run train "${L[@]}" --epochs 3 -o lres.safetensors --log lres.csv --resume
cp epoch2.ckpt lres.safetensors.ckpt
printf '4,40,0.1' >> lres.csv
run train "${L[@]}" --epochs 4 -o lres.safetensors --log lres.csv --resume
cmp -s <(cut -d, -f1-5 lref.csv) <(cut -d, -f1-5 lres.csv) ||
    fail "--resume from epoch 2 with a log of epochs 1-3 and a cut row: epochs 1-4 once each" \
        "$(diff <(cut -d, -f1-5 lref.csv) <(cut -d, -f1-5 lres.csv))"
# a file that is not a training log is refused, not overwritten
printf 'a,b\n1,2\n' > notlog.csv
cp notlog.csv notlog.before
cp epoch2.ckpt lres.safetensors.ckpt
rc=0
"$NABLA" train "${L[@]}" --epochs 4 -o lres.safetensors --log notlog.csv --resume 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && grep -q -- '--log notlog\.csv: not a training log' err.txt ||
    fail "--resume with --log naming another CSV: exit 1, naming it" "exit $rc: $(cat err.txt)"
cmp -s notlog.csv notlog.before || fail "the CSV that is not a log left as it was"
ok "--log: a new run replaces the old log; --resume drops rows past the checkpoint (and a cut row); another CSV refused"

# resuming refuses a checkpoint that does not fit, naming it
expect_error() {  # what, then the command; exit 1 or 2, the message matches $PATTERN
    local what=$1 rc=0; shift
    "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
    { [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ]; } && grep -qE "$PATTERN" err.txt && sanitizer_clean err.txt ||
        fail "$what: exit status 1 or 2 and a message matching /$PATTERN/" "exit $rc: $(cat err.txt)"
}
PATTERN='missing\.ckpt' expect_error "--resume without a checkpoint" \
    train 2-64-3 --data $D --epochs 3 -q -o x.safetensors --checkpoint missing.ckpt --resume
PATTERN='full\.ckpt.*optimi' expect_error "--resume with another optimiser" \
    train 2-32-3 --data $D --epochs 3 -q --optimizer sgd -o x.safetensors --checkpoint full.ckpt --resume
PATTERN='full\.ckpt' expect_error "--resume into another architecture" \
    train 2-16-3 --data $D --epochs 3 -q --optimizer adamw -o x.safetensors --checkpoint full.ckpt --resume
head -c 2000 full.ckpt > trunc.ckpt
PATTERN='trunc\.ckpt' expect_error "--resume from a truncated checkpoint" \
    train 2-32-3 --data $D --epochs 3 -q --optimizer adamw -o x.safetensors --checkpoint trunc.ckpt --resume
PATTERN='full\.safetensors.*(checkpoint|nabla\.checkpoint)' expect_error "--resume from a model file (no training state)" \
    train 2-32-3 --data $D --epochs 3 -q --optimizer adamw -o x.safetensors --checkpoint full.safetensors --resume
ok "--resume refuses a missing, truncated or foreign checkpoint, another optimiser and another architecture"

# ---- SIGKILL at random moments -----------------------------------------------------------
K=(2-128-3 --data spirals:20000:3:0.2 --epochs 30 --threads 1 -q)
start=$(now)
run train "${K[@]}" -o ref.safetensors --checkpoint ref.ckpt
duration=$("$PY" -c "print(round(max(0.2, $(now) - $start), 2))")
mkdir kill
cd kill
kills=""
for _ in 1 2 3 4 5; do
    resume=()
    [ -e k.ckpt ] && resume=(--resume)
    "$NABLA" train "${K[@]}" -o k.safetensors --checkpoint k.ckpt "${resume[@]}" >/dev/null 2>run.err &
    pid=$!
    pids+=("$pid")
    # somewhere in what is left of the run (30 epochs from the checkpoint's), or just after
    left=30
    [ -e k.ckpt ] && left=$((30 - $(ckpt_epoch k.ckpt)))
    r=$RANDOM
    t=$(fraction "$r" "$("$PY" -c "print($duration * ($left + 1) / 30)")")
    sleep "$t"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pids=()
    sanitizer_clean run.err || fail "no sanitizer report before the kill" "$(cat run.err)"
    if [ -e k.ckpt ]; then
        "$NABLA" info k.ckpt >info.txt 2>&1 ||
            fail "after kill -9 at ${t}s: the checkpoint loads with nabla info" "$(cat info.txt)"
        "$NABLA" eval k.ckpt --data spirals:20 >info.txt 2>&1 ||
            fail "after kill -9 at ${t}s: the checkpoint loads with nabla eval" "$(cat info.txt)"
        e=$(ckpt_epoch k.ckpt) || fail "after kill -9 at ${t}s: a nabla.checkpoint entry in k.ckpt"
        kills="$kills ${t}s (epoch $e)"
    else
        kills="$kills ${t}s (none)"
    fi
    if [ -e k.safetensors ]; then
        "$NABLA" eval k.safetensors --data spirals:20 >info.txt 2>&1 ||
            fail "after kill -9 at ${t}s: the model file is complete" "$(cat info.txt)"
    fi
    for f in *; do
        case $f in
        k.ckpt | k.safetensors | run.err | info.txt) ;;
        *.ckpt | *.safetensors) fail "after kill -9 at ${t}s: no stray file named like a final file" "$(ls -la)" ;;
        esac
    done
done
resume=()
[ -e k.ckpt ] && resume=(--resume)
run train "${K[@]}" -o k.safetensors --checkpoint k.ckpt "${resume[@]}"
same ../ref.safetensors k.safetensors "after kill -9 at${kills} and resuming: the final model"
same ../ref.ckpt k.ckpt "after kill -9 at${kills} and resuming: the final checkpoint"
leftovers=$(find . -name '*.tmp.*' | wc -l)
cd ..
ok "kill -9 at${kills} (of ${duration}s): checkpoints always loadable, resumed run bit-identical ($leftovers temporary files left by the kills)"

# ---- SIGINT: status 130, a checkpoint, and --resume continues -----------------------------
# three epochs: after the signal, at least one more epoch of margin before the run would end
I=(2-128-3 --data spirals:100000:3:0.2 --epochs 3 --batch 16 --threads 1)
run train "${I[@]}" -q -o iref.safetensors --checkpoint iref.ckpt --log iref.csv

# interrupt_after PATTERN NAME: starts a run, sends SIGINT once stderr matches PATTERN, checks
# status 130 and the message, then resumes to the end and compares with the reference.
interrupt_after() {
    local pattern=$1 name=$2 rc=0
    rm -f "$name.ckpt" "$name.safetensors" "$name.csv"
    "$NABLA" train "${I[@]}" -o "$name.safetensors" --checkpoint "$name.ckpt" --log "$name.csv" >/dev/null 2>"$name.err" &
    local pid=$!
    pids+=("$pid")
    local waited=0
    until grep -q "$pattern" "$name.err"; do
        sleep 0.01
        waited=$((waited + 1))
        [ "$waited" -lt 3000 ] || fail "stderr to show /$pattern/ within 30 s" "$(cat "$name.err")"
    done
    sleep 0.05
    kill -INT "$pid"
    wait "$pid" || rc=$?
    pids=()
    [ "$rc" -eq 130 ] && grep -q 'interrupted' "$name.err" && sanitizer_clean "$name.err" ||
        fail "SIGINT ($name): exit status 130 and an 'interrupted' message" "exit $rc: $(cat "$name.err")"
    [ -s "$name.ckpt" ] ||
        fail "SIGINT ($name): a checkpoint $name.ckpt written before exiting" "$(cat "$name.err"; ls -l "$name".*)"
    run train "${I[@]}" -q -o "$name.safetensors" --checkpoint "$name.ckpt" --log "$name.csv" --resume
    where=$(grep -o 'interrupted in epoch [0-9]* after [0-9]* of [0-9]* samples' "$name.err" || true)
    same iref.safetensors "$name.safetensors" "SIGINT ($name), then --resume: the final model"
    # the log reads as if the run had never stopped (same steps, rates, losses, accuracies)
    cmp -s <(cut -d, -f1-5 iref.csv) <(cut -d, -f1-5 "$name.csv") ||
        fail "SIGINT ($name), then --resume: the log's epoch,step,lr,loss,accuracy as without the stop" \
            "$(diff <(cut -d, -f1-5 iref.csv) <(cut -d, -f1-5 "$name.csv"))"
}
interrupt_after '^epoch 1/3' sigint-epoch2
ok "SIGINT after the first epoch ($where): status 130, checkpoint, --resume ends bit-identical with the same log"

# ---- unwritable outputs are reported at once ----------------------------------------------
# a run of several seconds: an error found only after training would show an epoch line
LONG=(2-256-256-3 --data spirals:100000:3:0.2 --epochs 1 --threads 1)
unwritable() {  # what, pattern, options
    local what=$1 pattern=$2 rc=0; shift 2
    local t0; t0=$(now)
    timeout 60 "$NABLA" train "${LONG[@]}" "$@" >out.txt 2>err.txt || rc=$?
    local secs; secs=$("$PY" -c "print(round($(now) - $t0, 2))")
    { [ "$rc" -eq 1 ] || [ "$rc" -eq 2 ]; } && grep -qF "$pattern" err.txt && sanitizer_clean err.txt ||
        fail "$what: exit status 1 or 2 and a message naming $pattern" "exit $rc after ${secs}s: $(cat err.txt)"
    ! grep -q '^epoch' err.txt && "$PY" -c "import sys; sys.exit($secs > 10)" ||
        fail "$what: reported before training starts" "${secs}s: $(cat err.txt)"
}
unwritable "-o in a missing directory" /nonexistent/dir/m.safetensors -o /nonexistent/dir/m.safetensors
unwritable "-o under /proc" /proc/m.safetensors -o /proc/m.safetensors
unwritable "--checkpoint in a missing directory" /nonexistent/c.ckpt -o ok.safetensors --checkpoint /nonexistent/c.ckpt
unwritable "--log in a missing directory" /nonexistent/log.csv -o ok.safetensors --log /nonexistent/log.csv
[ ! -e ok.safetensors ] || fail "no model written when an output is unwritable"
ok "unwritable -o, --checkpoint and --log are reported before training, naming the path"

# ---- a diverging run keeps the last good weights ------------------------------------------
diverge() {  # name, options
    local name=$1 rc=0; shift
    "$NABLA" train 2-64-3 --data spirals:200:3:0.2 --optimizer sgd --lr 1e30 --epochs 5 -q \
        -o "$name.safetensors" "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq 1 ] && grep -qiE 'loss.*(nan|inf)' err.txt && sanitizer_clean err.txt ||
        fail "--lr 1e30 $*: exit status 1 and a message that the loss became nan/inf" "exit $rc: $(cat err.txt)"
    [ -s "$name.safetensors" ] || fail "--lr 1e30 $*: the last good weights saved to $name.safetensors" "$(cat err.txt)"
    local msg
    msg=$(finite "$name.safetensors") || fail "--lr 1e30 $*: finite weights in $name.safetensors" "$msg"
    run eval "$name.safetensors" --data spirals:200:3:0.2 --json
    local loss
    loss=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["loss"])' out.txt)
    "$PY" -c "import math, sys; sys.exit(not math.isfinite(float('$loss')))" 2>/dev/null ||
        fail "--lr 1e30 $*: the saved model evaluates to a finite loss" "nabla eval: loss $loss"
    if [ -e "$name.safetensors.ckpt" ]; then
        msg=$(finite "$name.safetensors.ckpt") || fail "--lr 1e30 $*: finite weights in the checkpoint" "$msg"
    fi
}
diverge nan-minibatch
ok "--lr 1e30 (minibatches): stops with a nan/inf message, finite weights saved"

# ---- SIGINT before the first epoch's checkpoint ---------------------------------------------------
interrupt_after '^training ' sigint-epoch1
ok "SIGINT right after the start ($where): status 130, checkpoint, --resume ends bit-identical with the same log"

# ---- divergence at the last step of an epoch (full batch: every step is the last) ---------
diverge nan-fullbatch --batch 0
ok "--lr 1e30 --batch 0: stops with a nan/inf message, finite weights saved"

# The checkpoint of that run holds the weights after the diverging step (finite, but their
# loss is not). Resuming from it must fail the same way without replacing the good model.
cp nan-fullbatch.safetensors good.safetensors
diverge nan-fullbatch --batch 0 --resume
cmp -s good.safetensors nan-fullbatch.safetensors ||
    ok "(resuming wrote other weights, which still evaluate to a finite loss)"
ok "resuming a diverged run stops again and keeps weights with a finite loss"

# ---- an output path that is a directory ---------------------------------------------------
mkdir outdir
unwritable "-o naming a directory" outdir -o outdir
ok "-o naming a directory is reported before training"

# ---- --augment is recorded in the checkpoint: resuming without it, or with another
# --augment-pad, is noted in one line like any other changed setting ----------------------
"$PY" - >img.csv <<'EOF'
import random
random.seed(1)
print(",".join(["p%d" % i for i in range(16)] + ["label"]))
for r in range(64):
    print(",".join("%.3f" % (random.random() + r % 2) for _ in range(16)) + ",%d" % (r % 2))
EOF
printf 'x = input(1, 4, 4)\nf = flatten(x)\nout = linear(f, 2)\n' >img.nb
IMG=(img.nb --data csv:img.csv:label -q -o aug.safetensors)
run train "${IMG[@]}" --epochs 1 --augment
run train "${IMG[@]}" --epochs 2 --resume
[ "$(grep -c 'note: --resume with other settings' err.txt)" -eq 1 ] &&
    grep -q "augment 0 (the checkpoint's: 1), augment-pad 0 (the checkpoint's: 2)" err.txt ||
    fail "--resume without --augment: a one-line note" "$(cat err.txt)"
run train "${IMG[@]}" --epochs 3 --resume --augment --augment-pad 1
grep -q "augment 1 (the checkpoint's: 0), augment-pad 1 (the checkpoint's: 0)" err.txt ||
    fail "--resume with --augment --augment-pad 1: noted" "$(cat err.txt)"
run train "${IMG[@]}" --epochs 4 --resume --augment --augment-pad 1
! grep -q 'note:' err.txt || fail "--resume with the checkpoint's augmentation: no note" "$(cat err.txt)"
ok "--augment and --augment-pad changed on --resume are noted, the same ones are not"

# ---- --label-smoothing is recorded too -------------------------------------------------------
LS=(img.nb --data csv:img.csv:label -q -o ls.safetensors)
run train "${LS[@]}" --epochs 1 --label-smoothing 0.1
run train "${LS[@]}" --epochs 2 --resume
[ "$(grep -c 'note: --resume with other settings' err.txt)" -eq 1 ] &&
    grep -q "label-smoothing 0 (the checkpoint's: 0.1)" err.txt ||
    fail "--resume without --label-smoothing: a one-line note" "$(cat err.txt)"
run train "${LS[@]}" --epochs 3 --resume --label-smoothing 0.2
grep -q "label-smoothing 0.2 (the checkpoint's: 0)" err.txt ||
    fail "--resume with --label-smoothing 0.2: noted" "$(cat err.txt)"
run train "${LS[@]}" --epochs 4 --resume --label-smoothing 0.2
! grep -q 'note:' err.txt || fail "--resume with the checkpoint's label smoothing: no note" "$(cat err.txt)"
ok "--label-smoothing changed on --resume is noted, the same one is not"

echo "cli_resume: all passed"
