#!/usr/bin/env bash
# End-to-end tests of `nabla train`: accuracy on spirals and Fashion-MNIST, the CSV log, the
# validation split, every optimiser, schedule, regulariser and epoch order, reproducibility
# from the seed, --init, and training from description files (a DAG with fan-out, Add, Max
# and Dropout; a log_softmax output; an explicit loss); label smoothing.
#
# Run from the repository root: bash tests/cli_train.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
FASHION=/usr/share/datasets/fashion-mnist
SPIRALS=spirals:200:3:0.2

cli_enter_scratch train

# json FILE EXPR: evaluates a Python expression over the JSON object d read from FILE.
json() { "$PY" -c 'import json, math, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# check FILE EXPR WHAT: fails unless the Python expression over d (the JSON in FILE) is true.
check() {
    local v
    v=$(json "$1" "$2") || fail "$3 (could not evaluate $2)" "$(cat "$1")"
    [ "$v" = True ] || fail "$3: expected $2" "$(cat "$1")"
}

[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"

# ---- spirals: a 64-unit ReLU net separates the three arms ---------------------------------
run train 2-64-3 --data "$SPIRALS" --epochs 60 --threads 1 --json -o spirals.safetensors
cp out.txt spirals.json
check spirals.json 'd["epochs"] == 60 and d["steps"] == 60 * 5' "60 epochs of 5 steps (600 samples, batch 128)"
check spirals.json 'd["train_accuracy"] >= 0.95' "training accuracy on spirals >= 95 %"
check spirals.json 'math.isfinite(d["train_loss"]) and d["train_loss"] < 0.3' "a low finite training loss"
check spirals.json 'd["model"] == "spirals.safetensors"' "the JSON summary names the model file"
grep -q 'training 2-64-3 on spirals:200:3:0.2: 600 samples, 387 parameters' err.txt ||
    fail "the banner to give 600 samples and 387 parameters" "$(cat err.txt)"
[ -s spirals.safetensors ] && [ -s spirals.safetensors.ckpt ] ||
    fail "the model and its default checkpoint OUTPUT.ckpt to exist" "$(ls -l)"
run eval spirals.safetensors --data "$SPIRALS" --json
check out.txt 'd["accuracy"] >= 0.95 and d["samples"] == 600' "eval to agree: accuracy >= 95 % on 600 samples"
ok "spirals 2-64-3 reaches $(json spirals.json 'round(100 * d["train_accuracy"], 2)') % training accuracy"

# ---- Fashion-MNIST: one epoch of 784-32-10 ------------------------------------------------
if [ -r "$FASHION/train-images-idx3-ubyte.gz" ]; then
    run train 784-32-10 --epochs 1 --threads 1 --test fashion-mnist-test --json -o fashion.safetensors
    cp out.txt fashion.json
    check fashion.json 'd["test_accuracy"] > 0.75' "test accuracy > 75 % after one epoch of 784-32-10"
    check fashion.json 'd["steps"] == 469' "469 steps (60000 samples, batch 128)"
    grep -q 'test accuracy' err.txt || fail "the test accuracy on stderr" "$(cat err.txt)"
    ok "fashion-mnist 784-32-10, 1 epoch: test accuracy $(json fashion.json 'round(100 * d["test_accuracy"], 2)') %"
else
    skip "Fashion-MNIST not installed in $FASHION (make deps)"
fi

# ---- the CSV log: a header and one row per epoch ------------------------------------------
run train 2-16-3 --data "$SPIRALS" --epochs 7 -q --log log.csv -o log.safetensors
"$PY" - log.csv <<'EOF' || fail "log.csv: the header and 7 rows of finite numbers, epochs 1..7" "$(cat log.csv)"
import csv, math, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["epoch", "step", "lr", "train_loss", "train_accuracy", "val_loss",
                   "val_accuracy", "seconds", "samples_per_second"], rows[0]
assert len(rows) == 8, len(rows)
for i, r in enumerate(rows[1:]):
    assert len(r) == 9 and int(r[0]) == i + 1 and int(r[1]) == 5 * (i + 1), r
    assert all(math.isfinite(float(v)) for v in r[2:5] + r[7:]), r
    assert math.isnan(float(r[5])) and math.isnan(float(r[6])), r  # no validation set
EOF
ok "--log writes a header and one row per epoch"

# ---- --val-split: a stratified hold-out, with its own numbers -----------------------------
run train 2-32-3 --data "$SPIRALS" --epochs 20 --val-split 0.25 --json --log val.csv -o val.safetensors
grep -q ': 450 samples' err.txt || fail "450 training samples after holding out 25 % of 600" "$(cat err.txt)"
grep -q 'val acc' err.txt || fail "val loss and accuracy in the progress lines" "$(cat err.txt)"
check out.txt '0 < d["val_accuracy"] <= 1 and 0 < d["val_loss"] < 5' "validation loss and accuracy in the summary"
"$PY" - val.csv <<'EOF' || fail "val.csv: finite val_loss, val_accuracy in [0, 1] on every row" "$(cat val.csv)"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 20
for r in rows:
    assert math.isfinite(float(r["val_loss"])) and 0 <= float(r["val_accuracy"]) <= 1, r
EOF
ok "--val-split holds out 150 samples and reports validation numbers"

# ---- every optimiser, schedule and regulariser runs, with a finite loss -------------------
n=0
while IFS= read -r opts; do
    [ -n "$opts" ] || continue
    n=$((n + 1))
    # shellcheck disable=SC2086 # word splitting of the option list is intended
    run train 2-32-3 --data "$SPIRALS" --epochs 8 --json --log "opt$n.csv" -o "opt$n.safetensors" $opts
    check out.txt 'math.isfinite(d["train_loss"]) and d["train_loss"] < 1.2 and d["epochs"] == 8' \
        "a finite loss (below 1.2; chance level is ln 3 ≈ 1.1) with $opts"
    "$PY" - "opt$n.csv" <<'EOF' || fail "$opts: a finite loss on every row of the log" "$(cat "opt$n.csv")"
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 8 and all(math.isfinite(float(r["train_loss"])) for r in rows)
EOF
done <<'EOF'
--optimizer sgd
--optimizer sgd --momentum 0
--optimizer sgd --nesterov
--optimizer sgd --momentum 0.5 --dampening 0.1
--optimizer adam
--optimizer adam --lr 0.01 --beta1 0.8 --beta2 0.99 --adam-eps 1e-6
--optimizer adamw --lr 0.01 --weight-decay 0.01
--schedule step --step-size 5 --gamma 0.5
--schedule exp --gamma 0.95
--schedule exp
--schedule cosine
--schedule cosine --min-lr 0.001 --warmup 10
--schedule step --step-size 3 --warmup 5
--warmup 20
--l1 1e-4
--l2 1e-4
--weight-decay 1e-3
--clip 0.5
--l1 1e-5 --l2 1e-5 --clip 1 --optimizer adam --lr 0.01
--order stratified
--order sequential
--order shuffle
--no-shuffle
--batch 0
--batch 16
--normalize none
--normalize global
--init-scheme torch
--init-scheme kaiming-normal
--init-scheme xavier-uniform
--init-scheme xavier-normal
EOF
ok "$n optimiser / schedule / regulariser / order / init settings train with a finite loss"

# The schedules move the rate as documented (the log holds the rate of each epoch's last
# step; 5 steps per epoch, so epoch e ends at step 5e - 1).
"$PY" - opt8.csv opt9.csv opt12.csv opt14.csv <<'EOF' || fail "the logged learning rates to follow the step, exp, cosine and warm-up schedules" "$(head -n 4 opt8.csv opt9.csv opt12.csv opt14.csv)"
import csv, math, sys
def lrs(path):
    return [float(r["lr"]) for r in csv.DictReader(open(path))]
close = lambda a, b: abs(a - b) <= 1e-6 * max(abs(a), abs(b))
step, exp, cos, warm = (lrs(p) for p in sys.argv[1:])
# step: 0.1 * 0.5^floor(t / 5)
assert all(close(step[e], 0.1 * 0.5 ** ((5 * e + 4) // 5)) for e in range(8)), step
# exp: 0.1 * 0.95^t
assert all(close(exp[e], 0.1 * 0.95 ** (5 * e + 4)) for e in range(8)), exp
# cosine with warm-up 10 of 40 steps: 0.1 (t + 1) / 10, then from 0.1 down towards 0.001
cosine = lambda t: 0.1 * (t + 1) / 10 if t < 10 else \
    0.001 + 0.099 * (1 + math.cos(math.pi * (t - 10) / 30)) / 2
assert all(close(cos[e], cosine(5 * e + 4)) for e in range(8)), cos
# warm-up 20 steps: 0.1 * (t + 1) / 20 until step 19, then constant
assert all(close(warm[e], 0.1 * min(5 * e + 5, 20) / 20) for e in range(8)), warm
EOF
ok "step, exp, cosine and warm-up rates follow their formulas"

# ---- reproducibility: same seed, same bits; another seed, other bits ----------------------
for s in a b; do
    run train 2-32-3 --data "$SPIRALS" --epochs 5 --seed 11 --threads 1 -q -o "seed11$s.safetensors"
done
cmp -s seed11a.safetensors seed11b.safetensors ||
    fail "two runs with --seed 11 to write bit-identical model files" "$(cmp seed11a.safetensors seed11b.safetensors)"
cmp -s seed11a.safetensors.ckpt seed11b.safetensors.ckpt ||
    fail "two runs with --seed 11 to write bit-identical checkpoints"
run train 2-32-3 --data "$SPIRALS" --epochs 5 --seed 12 --threads 1 -q -o seed12.safetensors
if cmp -s seed11a.safetensors seed12.safetensors; then
    fail "--seed 12 to give other weights than --seed 11"
fi
# a description with dropout: the seed fixes the dropout masks too
cat > drop.nb <<'EOF'
x = input(2)
h = linear(x, 32)
r = relu(h)
d = dropout(r, 0.3)
out = linear(d, 3)
EOF
for s in a b; do
    run train drop.nb --data "$SPIRALS" --epochs 5 --seed 4 --threads 1 -q -o "drop$s.safetensors"
done
cmp -s dropa.safetensors dropb.safetensors || fail "dropout runs with the same seed to be bit-identical"
ok "the same seed gives bit-identical files, another seed other files"

# ---- --init: start from given weights ----------------------------------------------------
run train 2-32-3 --data "$SPIRALS" --epochs 30 --threads 1 -q -o pre.safetensors
# zero epochs from pre's weights (same data, so the same normalisation): the same file
run train 2-32-3 --data "$SPIRALS" --epochs 0 --init pre.safetensors -q -o zero.safetensors
cmp -s pre.safetensors zero.safetensors ||
    fail "0 epochs with --init pre.safetensors to reproduce pre.safetensors bit for bit" "$(cmp pre.safetensors zero.safetensors)"
# and one epoch from there starts much lower than one epoch from scratch
run train 2-32-3 --data "$SPIRALS" --epochs 1 --init pre.safetensors --json -q -o warm.safetensors
cp out.txt warm.json
run train 2-32-3 --data "$SPIRALS" --epochs 1 --json -q -o cold.safetensors
cp out.txt cold.json
warm=$(json warm.json 'd["train_loss"]')
cold=$(json cold.json 'd["train_loss"]')
"$PY" -c "import sys; sys.exit(not ($warm < 0.8 * $cold))" ||
    fail "the first epoch from --init to have a lower loss than from scratch" "init $warm, scratch $cold"
# continuing from a model file as MODEL works as well
run train pre.safetensors --data "$SPIRALS" --epochs 1 --json -q -o cont.safetensors
check out.txt "d['train_loss'] < 0.8 * $cold" "training MODEL.safetensors to continue from its weights"
ok "--init starts from the given weights (0 epochs: identical file; 1 epoch: loss $warm vs $cold)"

# ---- description files --------------------------------------------------------------------
cat > dag.nb <<'EOF'
# a DAG for 2-D spirals: a1 fans out into the residual Add and the Max
x   = input(2)
h1  = linear(x, 48)
a1  = tanh(h1)
h2  = linear(a1, 48)
a2  = relu(h2)
res = add(a1, a2)          # residual connection
m   = max(a1, res)         # element-wise max of two branches
d   = dropout(m, 0.1)
out = linear(d, 3)
EOF
run train dag.nb --data "$SPIRALS" --epochs 60 --threads 1 --json -o dag.safetensors
check out.txt 'd["train_accuracy"] >= 0.9' "the DAG description to reach >= 90 % on spirals"
run eval dag.safetensors --data "$SPIRALS" --json
check out.txt 'd["accuracy"] >= 0.9' "the saved DAG model to evaluate at >= 90 % (dropout off)"
"$PY" - dag.safetensors <<'EOF' || fail "dag.safetensors to hold h1, h2, out weights and the description"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
h = json.loads(raw[8:8 + n])
meta = h.pop("__metadata__")
assert sorted(h) == ["h1.bias", "h1.weight", "h2.bias", "h2.weight", "out.bias", "out.weight"], sorted(h)
assert "m   = max(a1, res)" in meta["nabla.description"]
EOF
ok "a description with fan-out, Add, Max and Dropout trains to $(json out.txt 'round(100 * d["accuracy"], 2)') %"

cat > logsm.nb <<'EOF'
x  = input(2)
h  = linear(x, 64)
r  = relu(h)
z  = linear(r, 3)
lp = log_softmax(z)        # trained with NLL
EOF
cat > loss.nb <<'EOF'
x    = input(2)
y    = labels()
h    = linear(x, 64)
r    = sigmoid(h)
z    = linear(r, 3)
loss = cross_entropy(z, y) # an explicit loss: the model output is z
EOF
for f in logsm loss; do
    run train "$f.nb" --data "$SPIRALS" --epochs 40 --optimizer adam --lr 0.02 --json -o "$f.safetensors"
    check out.txt 'd["train_accuracy"] >= 0.8' "$f.nb to train to >= 80 %"
    run predict "$f.safetensors" --data "$SPIRALS" --limit 3
    [ "$(head -n 1 out.txt)" = "index,class,name,p0,p1,p2" ] ||
        fail "$f.nb: predict to give three class probabilities" "$(cat out.txt)"
done
ok "descriptions ending in log_softmax and in an explicit cross_entropy train"

# ---- --label-smoothing: the training loss is smoothed, validation and test are not -------
# With --lr 0 the weights never move, so both runs hold the same model: their validation
# and test losses (plain cross-entropy) must agree to the bit, their training losses not.
for e in 0 0.2; do
    run train 2-16-3 --data "$SPIRALS" --epochs 1 --lr 0 --batch 0 --val-split 0.25 \
        --test "$SPIRALS" --threads 1 --label-smoothing "$e" --json -o "ls$e.safetensors"
    cp out.txt "ls$e.json"
    cp err.txt "ls$e.err"
done
check ls0.2.json 'd["label_smoothing"] == 0.2' "the JSON summary to give label_smoothing 0.2"
check ls0.json 'd["label_smoothing"] == 0' "the JSON summary to give label_smoothing 0 by default"
grep -q 'batch 450, sgd, label smoothing 0.2, gemm' ls0.2.err ||
    fail "the banner to name the label smoothing" "$(cat ls0.2.err)"
! grep -q 'label smoothing' ls0.err || fail "no smoothing in the banner without it" "$(cat ls0.err)"
s=$(json ls0.2.json 'd["train_loss"]'); p=$(json ls0.json 'd["train_loss"]')
[ "$(json ls0.2.json 'd["val_loss"]')" = "$(json ls0.json 'd["val_loss"]')" ] &&
    [ "$(json ls0.2.json 'd["test_loss"]')" = "$(json ls0.json 'd["test_loss"]')" ] ||
    fail "validation and test losses to be the plain cross-entropy with --label-smoothing" \
        "$(cat ls0.2.json ls0.json)"
[ "$s" != "$p" ] || fail "the training loss to include the smoothing" "$(cat ls0.2.json ls0.json)"
cmp -s ls0.safetensors ls0.2.safetensors || fail "--lr 0 to leave the same weights"
# it trains, and a description's own label_smoothing= is used (and reported) without the option
run train 2-64-3 --data "$SPIRALS" --epochs 60 --threads 1 --label-smoothing 0.1 --json -o ls.safetensors
check out.txt 'd["train_accuracy"] >= 0.9' "spirals with --label-smoothing 0.1 to reach 90 %"
sed 's/cross_entropy(z, y)/cross_entropy(z, y, label_smoothing=0.05)/' loss.nb > lsdesc.nb
run train lsdesc.nb --data "$SPIRALS" --epochs 1 --json -q -o lsdesc.safetensors
check out.txt 'd["label_smoothing"] == 0.05' "the description's label_smoothing=0.05 to be in effect"
ok "--label-smoothing: smoothed training loss ($p -> $s at --lr 0), plain validation and test losses"

# a description file made for another input width is refused with both sizes
rc=0
"$NABLA" train "$ROOT/examples/mynet.nb" --data "$SPIRALS" --epochs 1 -q -o m.safetensors >out.txt 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && grep -q '2 features' err.txt && grep -q '600' err.txt ||
    fail "examples/mynet.nb on 2-D data: exit 1 naming 2 features and the model's 600" "exit $rc: $(cat err.txt)"
ok "examples/mynet.nb on spirals is refused (2 features vs 600)"

cli_finish cli_train
