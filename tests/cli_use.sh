#!/usr/bin/env bash
# End-to-end tests of using models: `nabla eval` (accuracy, per-class accuracy, a confusion
# matrix that adds up), `nabla predict` (CSV and JSON, one row per input, probabilities that
# sum to 1, consistent with eval), `nabla info` (parameter counts, Jacobian sizes) and
# `nabla gradcheck` (shorthands, the examples, and a description using every module).
#
# Run from the repository root: bash tests/cli_use.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
FASHION=/usr/share/datasets/fashion-mnist
SPIRALS=spirals:150:3:0.2

cli_enter_scratch use

# pycheck WHAT SCRIPT ARGS...: runs a Python check (assertions) on files; fails with WHAT.
pycheck() {
    local what=$1 script=$2 msg
    shift 2
    msg=$("$PY" -c "$script" "$@" 2>&1) || fail "$what" "$msg"
}

[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"

run train 2-32-3 --data "$SPIRALS" --epochs 40 --threads 1 -q -o m.safetensors

# ---- eval -----------------------------------------------------------------------------------
run eval m.safetensors --data "$SPIRALS"
cp out.txt eval.txt
run eval m.safetensors --data "$SPIRALS" --json
cp out.txt eval.json
pycheck "eval --json: accuracy, per-class accuracy and a confusion matrix that adds up to 450 samples" '
import json, sys
d = json.load(open(sys.argv[1]))
cm, per = d["confusion"], d["per_class"]
n = d["samples"]
assert n == 450, n
assert len(cm) == 3 and all(len(r) == 3 for r in cm), cm
assert sum(map(sum, cm)) == n, (sum(map(sum, cm)), n)
assert all(sum(r) == 150 for r in cm), cm                   # 150 points per spiral arm
assert abs(d["accuracy"] - sum(cm[i][i] for i in range(3)) / n) < 1e-12, d["accuracy"]
assert d["accuracy"] > 0.8, d["accuracy"]
assert 0 < d["loss"] < 1, d["loss"]
assert [p["class"] for p in per] == ["0", "1", "2"], per
for i, p in enumerate(per):
    assert p["samples"] == sum(cm[i]), (p, cm[i])
    assert abs(p["accuracy"] - cm[i][i] / sum(cm[i])) < 1e-12, (p, cm[i])
' eval.json
pycheck "eval's text output to agree with --json (accuracy, per class, the matrix)" '
import json, re, sys
text, d = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
assert "450 samples" in text, text
acc = float(re.search(r"^accuracy ([0-9.]+)%$", text, re.M).group(1))
assert abs(acc - 100 * d["accuracy"]) < 0.006, (acc, d["accuracy"])
loss = float(re.search(r"^loss ([0-9.]+)$", text, re.M).group(1))
assert abs(loss - d["loss"]) < 6e-5, (loss, d["loss"])
per = re.findall(r"^  (\S+) +([0-9.]+)%  \((\d+) samples\)$", text, re.M)
assert [(c, int(n)) for c, _, n in per] == [(p["class"], p["samples"]) for p in d["per_class"]], per
assert all(abs(float(a) - 100 * p["accuracy"]) < 0.006 for (_, a, _), p in zip(per, d["per_class"]))
rows = text.split("confusion matrix")[1].strip().split("\n")[2:]
cm = [[int(v) for v in r.split()[1:]] for r in rows]
assert cm == d["confusion"], (cm, d["confusion"])
' eval.txt eval.json
run eval m.safetensors --data "$SPIRALS" --json
cmp -s out.txt eval.json || fail "eval to be deterministic" "$(diff out.txt eval.json)"
ok "eval: accuracy $(grep '^accuracy' eval.txt | cut -d' ' -f2), per class, confusion matrix summing to 450"

# ---- predict --------------------------------------------------------------------------------
run predict m.safetensors --data "$SPIRALS" --limit 5
cp out.txt p5.csv
pycheck "predict --limit 5: a CSV header and 5 rows whose probabilities sum to 1" '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["index", "class", "name", "p0", "p1", "p2"], rows[0]
assert len(rows) == 6, len(rows)
for i, r in enumerate(rows[1:]):
    p = [float(v) for v in r[3:]]
    assert int(r[0]) == i and len(p) == 3, r
    assert abs(sum(p) - 1) < 1e-4 and min(p) >= 0, r
    assert int(r[1]) == p.index(max(p)) and r[2] == r[1], r
' p5.csv
run predict m.safetensors --data "$SPIRALS"
cp out.txt all.csv
run predict m.safetensors --data "$SPIRALS" --format json
cp out.txt all.json
run predict m.safetensors --data "$SPIRALS" --limit 100000 --format json
cmp -s out.txt all.json || fail "--limit beyond the data to give every row"
pycheck "predict: one row per input (450), JSON and CSV agreeing, probabilities summing to 1, the predicted-class counts equal to the confusion matrix's columns" '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
js = json.load(open(sys.argv[2]))
cm = json.load(open(sys.argv[3]))["confusion"]
assert len(rows) == 450 and len(js) == 450, (len(rows), len(js))
for i, (r, j) in enumerate(zip(rows, js)):
    p = j["probabilities"]
    assert j["index"] == i and int(r["index"]) == i
    assert len(p) == 3 and abs(sum(p) - 1) < 1e-5 and min(p) >= 0, j
    assert j["class"] == p.index(max(p)) == int(r["class"]), (r, j)
    assert j["name"] == str(j["class"]), j
    assert all(abs(float(r["p%d" % k]) - p[k]) <= 1e-5 for k in range(3)), (r, j)
counts = [sum(1 for j in js if j["class"] == k) for k in range(3)]
columns = [sum(row[k] for row in cm) for k in range(3)]
assert counts == columns, (counts, columns)
' all.csv all.json eval.json
ok "predict: CSV header, --limit 5 gives 5 rows, JSON parses, probabilities sum to 1, agrees with eval"

# class names travel in the model file (Fashion-MNIST), and labels are not needed to predict
if [ -r "$FASHION/t10k-images-idx3-ubyte.gz" ]; then
    run train 784-32-10 --epochs 1 --threads 1 -q -o fashion.safetensors
    run eval fashion.safetensors --data fashion-mnist-test --json
    cp out.txt fashion.json
    pycheck "fashion eval: 10000 samples, named classes, matrix adding up, accuracy > 75 %" '
import json, sys
d = json.load(open(sys.argv[1]))
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
assert d["samples"] == 10000 and d["accuracy"] > 0.75, d["accuracy"]
assert [p["class"] for p in d["per_class"]] == names, d["per_class"]
assert sum(map(sum, d["confusion"])) == 10000
assert all(p["samples"] == 1000 for p in d["per_class"])
' fashion.json
    run eval fashion.safetensors
    grep -q 'Ankle boot' out.txt && grep -q 'fashion-mnist-test: 10000 samples' out.txt ||
        fail "eval's default data set to be fashion-mnist-test, with class names" "$(head -n 20 out.txt)"
    run predict fashion.safetensors --limit 3
    [ "$(wc -l < out.txt)" -eq 4 ] && head -n 1 out.txt | grep -q '^index,class,name,p0,p1,p2,p3,p4,p5,p6,p7,p8,p9$' ||
        fail "predict on Fashion-MNIST: a header with p0..p9 and 3 rows" "$(cat out.txt)"
    acc=$("$PY" -c 'import json, sys; print(round(100 * json.load(open(sys.argv[1]))["accuracy"], 2))' fashion.json)
    ok "Fashion-MNIST: eval with class names ($acc %), predict with p0..p9"
    # test-time augmentation: an image model's eval and predict with --tta flip (the
    # arithmetic is checked in tests/test_tta.c); an MLP on flat vectors is refused
    printf 'x = input(1, 28, 28)\nf = flatten(x)\nz = linear(f, 10)\n' > image.nb
    run train image.nb --epochs 1 --threads 1 --augment --augment-pad 0 -q -o image.safetensors
    run eval image.safetensors --json
    cp out.txt plain.json
    run eval image.safetensors --json --tta flip
    cp out.txt tta.json
    run predict image.safetensors --limit 50 --tta flip
    cp out.txt tta.csv
    run predict image.safetensors --limit 50
    pycheck "eval --tta flip: JSON says so, accuracy near the plain one's; predict --tta flip: probabilities sum to 1 and differ from plain predict" '
import csv, json, sys
plain, tta = (json.load(open(f)) for f in sys.argv[1:3])
assert plain["tta"] == "none" and tta["tta"] == "flip", (plain["tta"], tta["tta"])
assert abs(plain["accuracy"] - tta["accuracy"]) < 0.05 and tta["accuracy"] > 0.7, (plain["accuracy"], tta["accuracy"])
assert plain["loss"] != tta["loss"]
rows = [list(csv.reader(open(f)))[1:] for f in sys.argv[3:5]]
assert len(rows[0]) == len(rows[1]) == 50
for r in rows[0]:
    assert abs(sum(map(float, r[3:])) - 1) < 1e-4, r
assert any(a[3:] != b[3:] for a, b in zip(*rows))
' plain.json tta.json tta.csv out.txt
    run eval image.safetensors --tta flip
    grep -q 'test-time augmentation: each image and its mirror' out.txt ||
        fail "eval --tta flip to say so in its report" "$(head -n 3 out.txt)"
    expect_fail 1 'test-time augmentation' 'images' :: eval fashion.safetensors --tta flip
    ok "--tta flip: eval and predict of an image model, refused for flat vectors"
else
    skip "Fashion-MNIST not installed in $FASHION (make deps)"
fi

# ---- info -----------------------------------------------------------------------------------
run info 784-256-128-10
grep -q '^784-256-128-10: 235146 parameters in 6 tensors' out.txt ||
    fail "info 784-256-128-10: 235146 parameters in 6 tensors" "$(head -n 3 out.txt)"
pycheck "info 784-256-128-10: every module with its shape and Jacobian sizes for a batch of 1" '
import re, sys
t = open(sys.argv[1]).read()
def line(name):
    m = re.search(r"^" + re.escape(name) + r" .*$", t, re.M)
    assert m, name
    return m.group(0)
assert "[N,256]" in line("fc1") and "[256×784] ; [256×200704] ; [256×256]" in line("fc1"), line("fc1")
assert "[256×256]" in line("relu1"), line("relu1")
assert "[128×256] ; [128×32768] ; [128×128]" in line("fc2"), line("fc2")
assert "[10×128] ; [10×1280] ; [10×10]" in line("fc3"), line("fc3")
assert "[1×10]" in line("__loss__"), line("__loss__")
for name, shape, n in [("fc1.weight", "[256,784]", 200704), ("fc1.bias", "[256]", 256),
                       ("fc2.weight", "[128,256]", 32768), ("fc2.bias", "[128]", 128),
                       ("fc3.weight", "[10,128]", 1280), ("fc3.bias", "[10]", 10)]:
    assert re.search(r"^  " + re.escape(name) + r" +" + re.escape(shape) + r" +%d$" % n, t, re.M), name
' out.txt
run info 784-256-128-10 --batch 32
grep -qE '^fc1 .*\[8192×25088\] ; \[8192×200704\] ; \[8192×256\]' out.txt ||
    fail "info --batch 32: fc1's Jacobians [8192×25088] ; [8192×200704] ; [8192×256]" "$(grep '^fc1' out.txt)"
run info "$ROOT/examples/mynet.nb"
grep -qE ': 38910 parameters in 6 tensors' out.txt && grep -qE '^x +input +\[N,3,10,20\]' out.txt ||
    fail "info examples/mynet.nb: 38910 parameters, input [N,3,10,20]" "$(head -n 5 out.txt)"
run info "$ROOT/examples/residual.nb"
grep -qE ': 8970 parameters in 6 tensors' out.txt && grep -qE '^res +add +x,h2 ' out.txt ||
    fail "info examples/residual.nb: 8970 parameters, res = add(x, h2)" "$(head -n 12 out.txt)"
run info m.safetensors
grep -q '^m.safetensors: 195 parameters' out.txt || fail "info on a model file: 195 parameters" "$(head -n 3 out.txt)"
ok "info: 235146 parameters for 784-256-128-10, Jacobian sizes per batch, description and model files"

# ---- gradcheck ------------------------------------------------------------------------------
cat > every.nb <<'EOF'
# every differentiable module in one DAG
x    = input(2, 6)
f    = flatten(x)
h    = linear(f, 12)
a    = relu(h)
t    = tanh(h)
s    = sigmoid(h)
u    = add(a, t)
m    = max(u, s)
p    = mul(m, t)
k    = scale(p, 0.5)
d    = dropout(k, 0.25)
r    = reshape(d, 3, 4)
sm   = softmax(r)          # over the last dimension
sf   = flatten(sm)
g    = linear(sf, 3, bias=false)
tot  = sum(h)
avg  = mean(a)
c    = add(tot, avg)
gc   = linear(c, 3)
z    = add(g, gc)
lp   = log_softmax(z)
y    = labels()
loss = nll(lp, y)
EOF
cat > ce.nb <<'EOF'
x    = input(5)
h    = linear(x, 7)
a    = sigmoid(h)
z    = linear(a, 4)
y    = labels()
loss = cross_entropy(z, y)
EOF
cat > mse.nb <<'EOF'
x    = input(5)
t    = input(3)
h    = linear(x, 6)
a    = tanh(h)
z    = linear(a, 3)
loss = mse(z, t, reduction=sum)
EOF
cat > norm.nb <<'EOF'
# leaky_relu (its kink at 0 is skipped like ReLU's), gelu and layer norms
x    = input(2, 4, 4)
c    = conv2d(x, 3, 3, padding=1)
n1   = layer_norm(c)
a1   = leaky_relu(n1, 0.2)
n2   = layer_norm(a1, dims=2)  # rows of 16: over 4 values the default step 1e-2 is too coarse
f    = flatten(n2)
h    = linear(f, 8)
n3   = layer_norm(h, eps=1e-3)
g    = gelu(n3)
a2   = leaky_relu(g, slope=-0.5)
z    = linear(a2, 3)
EOF
gradcheck_ok() {  # MODEL [options]: exit 0, "MODEL: N tensors ...: ok", no FAIL line
    local label=$1
    run gradcheck "$@"
    grep -qE "^$(printf '%s' "$label" | sed 's/[.[\*^$/]/\\&/g'): [0-9]+ tensors, tolerance .*: ok$" out.txt &&
        ! grep -q 'FAIL' out.txt || fail "gradcheck $*: every tensor within tolerance" "$(cat out.txt)"
}
gradcheck_ok 8-16-4
grep -qE '^fc1\.weight +\[16,8\]' out.txt && grep -qE '^x +\[N,8\]' out.txt ||
    fail "gradcheck 8-16-4 to check the input and fc1.weight" "$(cat out.txt)"
gradcheck_ok 8-16-4:tanh --seed 3
gradcheck_ok 8-16-4:sigmoid --batch 5
gradcheck_ok "$ROOT/examples/mynet.nb"
gradcheck_ok "$ROOT/examples/residual.nb"
gradcheck_ok "$ROOT/examples/residual.nb" --training --seed 2
gradcheck_ok every.nb
for name in x h.weight h.bias g.weight gc.weight gc.bias; do
    grep -qE "^$(printf '%s' "$name" | sed 's/\./\\./g') " out.txt || fail "gradcheck every.nb to check $name" "$(cat out.txt)"
done
gradcheck_ok every.nb --training
gradcheck_ok every.nb --seed 7 --batch 4
gradcheck_ok ce.nb
gradcheck_ok mse.nb
grep -qE '^t +\[N,3\]' out.txt || fail "gradcheck mse.nb to check the target input t too" "$(cat out.txt)"
gradcheck_ok norm.nb
gradcheck_ok norm.nb --seed 9
gradcheck_ok norm.nb --training --seed 5
grep -qE '^n2\.weight +\[4,4\] ' out.txt && grep -qE '^n1\.weight +\[3,4,4\] ' out.txt ||
    fail "gradcheck norm.nb to check the layer norms' weights" "$(cat out.txt)"
# and it can fail: an impossible tolerance
rc=0
"$NABLA" gradcheck every.nb --tol 1e-12 >out.txt 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && grep -q 'FAILED' out.txt || fail "gradcheck --tol 1e-12: exit 1 and FAILED" "exit $rc: $(cat out.txt err.txt)"
ok "gradcheck passes on 8-16-4 (relu, tanh, sigmoid), mynet.nb, residual.nb, every module, cross_entropy, mse, leaky_relu/gelu/layer_norm; fails at --tol 1e-12"

cli_finish cli_use
