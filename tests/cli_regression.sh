#!/usr/bin/env bash
# Regression and the evaluation figures from the command line, checked against numbers this
# script computes itself (plain Python formulas, no numpy or scikit-learn):
#   - a hand-written linear model file (known weights, with and without a target
#     standardisation in its metadata) on a 4-row CSV: eval's MSE, RMSE, MAE and R² equal the
#     exact values, and predict prints 2x + 1 (mapped back to the targets' units);
#   - `train --loss mse` on csv:FILE:y,z (two targets) and a description ending in mse(...)
#     learn y = 3a − 2b + 1 and z = a + b (R² > 0.999); the target statistics stored in the
#     model are the training targets' mean and population standard deviation; eval's figures
#     equal those computed from predict's output; --normalize-targets none works too; a run
#     resumed from its checkpoint saves the same bytes as one run straight through, and two
#     MPI ranks fit as one process does;
#   - class labels written as names (cat, dog, bird): the model's classes are the sorted
#     names, predict prints them, eval maps a test file's names through them, and an unknown
#     name is an error naming the file, line and value;
#   - eval's precision, recall, F1 (per class, macro, weighted) and top-k accuracy equal the
#     figures computed from predict's classes and probabilities;
#   - the README's regression commands (examples/linear.nb on examples/houses.csv) run as
#     written and fit the flats to the noise (RMSE < 7 for σ = 6, R² > 0.98).
# Run from the repository root: bash tests/cli_regression.sh.
set -euo pipefail
. "$(dirname "$0")/lib_cli.sh"
cli_enter_scratch regression

[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"
"$PY" -c 'import json, struct' || { echo "SKIP: $PY cannot run"; exit 77; }

# pycheck WHAT SCRIPT ARGS...: runs a Python check; its output is the failure's detail.
pycheck() {
    local what=$1 script=$2 msg
    shift 2
    msg=$("$PY" -c "$script" "$@" 2>&1) || fail "$what" "$msg"
}

# ---- exact metrics of a known model ----------------------------------------------------------
# ȳ = 2x + 1 on x = 0..3 against t = 1, 4, 5, 8: errors 0, −1, 0, −1, so MSE = 0.5,
# RMSE = √0.5, MAE = 0.5, and with mean t = 4.5, Σ(t − 4.5)² = 25: R² = 1 − 2/25 = 0.92.
# With the model's targets standardised by m = 10, σ = 2 the output means 2(2x + 1) + 10 =
# 12, 16, 20, 24; against t = 12, 15, 20, 26: errors 0, 1, 0, −2, MSE = 1.25, MAE = 0.75,
# mean t = 18.25, Σ(t − 18.25)² = 112.75, R² = 1 − 5/112.75.
"$PY" - <<'EOF'
import json, struct
def save(path, meta):
    w, b = struct.pack("<f", 2.0), struct.pack("<f", 1.0)
    h = {"__metadata__": meta,
         "y.weight": {"dtype": "F32", "shape": [1, 1], "data_offsets": [0, 4]},
         "y.bias": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
    text = json.dumps(h).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + w + b)
desc = "x = input(1)\ny = linear(x, 1)\nt = input(1)\nloss = mse(y, t)\n"
save("known.safetensors", {"format": "pt", "nabla.description": desc, "nabla.targets": "t"})
save("scaled.safetensors", {"format": "pt", "nabla.description": desc, "nabla.targets": "t",
     "nabla.target_norm": json.dumps({"mode": "feature", "eps": 0, "features": 1,
                                      "mean": [10], "std": [2]})})
open("known.csv", "w").write("x,t\n0,1\n1,4\n2,5\n3,8\n")
open("scaled.csv", "w").write("x,t\n0,12\n1,15\n2,20\n3,26\n")
EOF
run eval known.safetensors --data csv:known.csv:t --json
cp out.txt known.json
run eval scaled.safetensors --data csv:scaled.csv:t --json
cp out.txt scaled.json
pycheck "eval's MSE, RMSE, MAE and R² equal the exact values of the known model" '
import json, math, sys
for path, mse, mae, r2 in ((sys.argv[1], 0.5, 0.5, 0.92), (sys.argv[2], 1.25, 0.75, 1 - 5 / 112.75)):
    d = json.load(open(path))
    assert d["task"] == "regression" and d["samples"] == 4, d
    t = d["per_target"][0]
    assert t["target"] == "t", t
    for k, want in (("mse", mse), ("rmse", math.sqrt(mse)), ("mae", mae), ("r2", r2)):
        assert abs(t[k] - want) < 1e-6 and abs(d[k] - want) < 1e-6, (path, k, t[k], d[k], want)
' known.json scaled.json
run eval known.safetensors --data csv:known.csv:t
grep -qE '^t +0\.5 +0\.707107 +0\.5 +0\.920000$' out.txt ||
    fail "eval's text table: t 0.5 0.707107 0.5 0.920000" "$(cat out.txt)"
run predict scaled.safetensors --data csv:scaled.csv:t
[ "$(tr '\n' ' ' <out.txt)" = "index,t 0,12 1,16 2,20 3,24 " ] ||
    fail "predict to print 2(2x + 1) + 10 under the header index,t" "$(cat out.txt)"
ok "exact metrics: MSE 0.5, RMSE 0.7071, MAE 0.5, R² 0.92; the target standardisation undone"

# ---- training a regression from the command line ---------------------------------------------
"$PY" - <<'EOF'
import random
random.seed(1)
for name, n in (("train.csv", 400), ("test.csv", 100)):
    with open(name, "w") as f:
        f.write("a,b,y,z\n")
        for _ in range(n):
            a, b = random.uniform(-1, 1), random.uniform(-1, 1)
            f.write("%.6f,%.6f,%.6f,%.6f\n" % (a, b, 3 * a - 2 * b + 1, a + b))
for name in ("train", "test"):  # the same without z
    rows = [line.split(",")[:3] for line in open(name + ".csv").read().split()]
    open(name + "1.csv", "w").write("".join(",".join(r) + "\n" for r in rows))
EOF
run train 2-2 --loss mse --data csv:train.csv:y,z --test csv:test.csv:y,z --epochs 40 --batch 16 \
    --lr 0.05 --threads 1 -o two.safetensors --json
cp out.txt train.json
run eval two.safetensors --data csv:test.csv:y,z --json
cp out.txt two.json
run predict two.safetensors --data csv:test.csv:y,z
cp out.txt two.csv
pycheck "train --loss mse on two targets: R² > 0.999, the stored target statistics, and eval equal to the figures computed from predict" '
import csv, json, math, struct, sys
d, pred = json.load(open(sys.argv[1])), list(csv.DictReader(open(sys.argv[2])))
truth = list(csv.DictReader(open(sys.argv[3])))
assert [t["target"] for t in d["per_target"]] == ["y", "z"], d
assert list(pred[0].keys()) == ["index", "y", "z"], pred[0].keys()
assert len(pred) == len(truth) == 100
for k, t in zip(("y", "z"), d["per_target"]):
    ys = [float(r[k]) for r in truth]
    ps = [float(r[k]) for r in pred]
    n = len(ys)
    mean = sum(ys) / n
    sse = sum((p - y) ** 2 for p, y in zip(ps, ys))
    want = {"mse": sse / n, "rmse": math.sqrt(sse / n), "mae": sum(abs(p - y) for p, y in zip(ps, ys)) / n,
            "r2": 1 - sse / sum((y - mean) ** 2 for y in ys)}
    for m, v in want.items():
        assert abs(t[m] - v) <= 1e-4 * max(abs(v), 1e-3), (k, m, t[m], v)
    assert t["r2"] > 0.999, t
raw = open(sys.argv[4], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
meta = json.loads(raw[8:8 + n])["__metadata__"]
assert meta["nabla.loss"] == "mse" and meta["nabla.targets"] == "y,z", meta
tn = json.loads(meta["nabla.target_norm"])
train = list(csv.DictReader(open(sys.argv[5])))
for j, k in enumerate(("y", "z")):
    ys = [float(r[k]) for r in train]
    mean = sum(ys) / len(ys)
    std = math.sqrt(sum((y - mean) ** 2 for y in ys) / len(ys))
    assert abs(tn["mean"][j] - mean) < 1e-5 and abs(tn["std"][j] - std) < 1e-5, (tn, mean, std)
summary = json.load(open(sys.argv[6]))
assert math.isfinite(summary["train_loss"]) and "train_accuracy" not in summary, summary
assert summary["test_r2"] > 0.999 and abs(summary["test_rmse"] - d["rmse"]) < 1e-6 * max(d["rmse"], 1e-3), summary
' two.json two.csv test.csv two.safetensors train.csv train.json
r2=$("$PY" -c 'import json, sys; print("%.6f" % json.load(open(sys.argv[1]))["r2"])' two.json)

# a description ending in its own mse, one target, without target standardisation
printf 'x = input(2)\nh = linear(x, 1)\nt = input(1)\nloss = mse(h, t)\n' > lin.nb
run train lin.nb --data csv:train1.csv:y --epochs 40 --batch 16 --lr 0.05 --threads 1 \
    --normalize-targets none -q -o one.safetensors
run eval one.safetensors --data csv:test1.csv:y --json
pycheck "a description ending in mse, --normalize-targets none: R² > 0.999" '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["r2"] > 0.999 and [t["target"] for t in d["per_target"]] == ["y"], d
' out.txt
# a regression resumed from its checkpoint ends with the same file as one run straight through
run train 2-2 --loss mse --data csv:train.csv:y,z --epochs 4 --batch 32 --threads 1 -q -o full.safetensors
run train 2-2 --loss mse --data csv:train.csv:y,z --epochs 2 --batch 32 --threads 1 -q -o part.safetensors
run train 2-2 --loss mse --data csv:train.csv:y,z --epochs 4 --batch 32 --threads 1 -q -o part.safetensors --resume
cmp -s full.safetensors part.safetensors || fail "a resumed regression to save the same bytes as a straight run"
ok "train --loss mse (y, z: R² $r2) and a description ending in mse; eval agrees with predict; --resume exact"

# under mpirun the ranks share each batch's targets: the same fit as one process, up to the
# order of float sums (tests/cli_mpi.sh covers MPI itself, and its absence)
if command -v mpirun >/dev/null 2>&1 && ! "$NABLA" train --help | grep -q 'unavailable'; then
    cli_mpirun_setup
    timeout 120 "${MPIRUN[@]}" -np 2 "$NABLA" train 2-2 --loss mse --data csv:train.csv:y,z --epochs 4 \
        --batch 32 -q -o mpi.safetensors --checkpoint none >out.txt 2>err.txt ||
        fail "mpirun -np 2 nabla train --loss mse" "$(tail -n 20 err.txt)"
    run eval mpi.safetensors --data csv:test.csv:y,z --json
    cp out.txt mpi.json
    run eval full.safetensors --data csv:test.csv:y,z --json
    pycheck "2 ranks fit the regression as one process does (RMSE within 1e-4 relative)" '
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert abs(a["rmse"] - b["rmse"]) <= 1e-4 * b["rmse"] and abs(a["r2"] - b["r2"]) < 1e-6, (a, b)
' mpi.json out.txt
    ok "mpirun -np 2: RMSE $("$PY" -c 'import json, sys; print("%.6g" % json.load(open(sys.argv[1]))["rmse"])' mpi.json), as one process"
else
    echo "note: no MPI here; the distributed regression is not run (tests/cli_mpi.sh reports the skip)"
fi

# ---- class names from the data -------------------------------------------------------------
"$PY" - <<'EOF'
import random
random.seed(2)
centres = {"cat": (-1, 0), "dog": (1, 0), "bird": (0, 1.5)}
for name, n in (("pets.csv", 60), ("pets-test.csv", 30)):
    with open(name, "w") as f:
        f.write("u,v,animal\n")
        for i in range(n):
            k = ("cat", "dog", "bird")[i % 3]
            cx, cy = centres[k]
            f.write("%.4f,%.4f,%s\n" % (cx + random.gauss(0, 0.2), cy + random.gauss(0, 0.2), k))
EOF
run train 2-3 --data csv:pets.csv:animal --test csv:pets-test.csv:animal --epochs 30 --batch 10 \
    --threads 1 -q -o pets.safetensors
run predict pets.safetensors --data csv:pets-test.csv:animal --limit 3
[ "$(cut -d, -f2,3 out.txt | tr '\n' ' ')" = 'class,name 1,"cat" 2,"dog" 0,"bird" ' ] ||
    fail "predict to name the classes (rows cat, dog, bird: classes 1, 2, 0 of bird, cat, dog)" "$(cat out.txt)"
pycheck "the classes stored in the model are the sorted names" '
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
assert json.loads(raw[8:8 + n])["__metadata__"]["nabla.classes"] == "bird,cat,dog"
' pets.safetensors
run eval pets.safetensors --data csv:pets-test.csv:animal --json --top-k 2
cp out.txt pets.json
run predict pets.safetensors --data csv:pets-test.csv:animal --format json
cp out.txt pets-pred.json
pycheck "precision, recall, F1, macro and weighted averages and top-2 accuracy as computed from predict" '
import csv, json, sys
d, pred = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
names = ["bird", "cat", "dog"]
truth = [names.index(r["animal"]) for r in csv.DictReader(open(sys.argv[3]))]
guess = [p["class"] for p in pred]
assert [p["name"] for p in pred] == [names[g] for g in guess]
n = len(truth)
assert d["samples"] == n == 30 and d["top_k"] == 2
per = d["per_class"]
assert [p["class"] for p in per] == names, per
mp = mr = mf = wp = wr = wf = 0
for c in range(3):
    tp = sum(1 for t, g in zip(truth, guess) if t == c and g == c)
    pp, sup = guess.count(c), truth.count(c)
    p = tp / pp if pp else 0.0
    r = tp / sup if sup else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    e = per[c]
    assert e["support"] == sup and abs(e["precision"] - p) < 1e-12 and abs(e["recall"] - r) < 1e-12 \
        and abs(e["f1"] - f) < 1e-12, (e, p, r, f)
    mp, mr, mf = mp + p / 3, mr + r / 3, mf + f / 3
    wp, wr, wf = wp + p * sup / n, wr + r * sup / n, wf + f * sup / n
for k, v in (("precision", mp), ("recall", mr), ("f1", mf)):
    assert abs(d["macro_avg"][k] - v) < 1e-12, (k, d["macro_avg"], v)
for k, v in (("precision", wp), ("recall", wr), ("f1", wf)):
    assert abs(d["weighted_avg"][k] - v) < 1e-12, (k, d["weighted_avg"], v)
top2 = sum(1 for t, p in zip(truth, pred) if sorted(range(3), key=lambda j: -p["probabilities"][j]).index(t) < 2)
assert abs(d["top_k_accuracy"] - top2 / n) < 1e-12, (d["top_k_accuracy"], top2 / n)
assert abs(d["accuracy"] - sum(1 for t, g in zip(truth, guess) if t == g) / n) < 1e-12
' pets.json pets-pred.json pets-test.csv
run eval pets.safetensors --data csv:pets-test.csv:animal --top-k 2
grep -qE '^top-2 accuracy [0-9.]+%$' out.txt && grep -qE '^macro avg ' out.txt &&
    grep -qE '^cat +[01]\.[0-9]{4} ' out.txt || fail "eval's text: top-2 accuracy, a report row per class, macro avg" "$(cat out.txt)"
# a name the model does not know: the file, the line and the value
printf 'u,v,animal\n0,0,cat\n1,1,cow\n' > cow.csv
"$NABLA" eval pets.safetensors --data csv:cow.csv:animal >out.txt 2>err.txt && fail "eval to refuse the unknown class cow"
grep -qE 'cow\.csv: line 3, field 3 \("animal"\): class "cow" is not one of the model.s 3 classes \("bird", "cat", "dog"\)' err.txt ||
    fail "the unknown class's error to name the file, line, field and the model's classes" "$(cat err.txt)"
ok "class names: sorted from the data (bird, cat, dog), printed by predict, mapped by eval; precision/recall/F1/top-2 agree"

# ---- the README's regression commands ------------------------------------------------------
# The block marked for this test is run as written (build/nabla → the nabla under test, run
# from a copy of the repository's examples/), so the README cannot drift from what works.
"$PY" - "$ROOT/README.md" > readme.sh <<'EOF2'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
blocks = re.findall(r"<!-- tests/cli_regression\.sh runs this block -->\n```sh\n(.*?)```", text, re.S)
assert len(blocks) == 1, "README.md: expected one sh block marked for tests/cli_regression.sh, found %d" % len(blocks)
print(blocks[0].replace("build/nabla", '"$NABLA"'))
EOF2
[ -s readme.sh ] || fail "the README's marked regression block"
mkdir -p readme/examples readme/out
cp "$ROOT/examples/houses.csv" "$ROOT/examples/linear.nb" readme/examples/
(cd readme && NABLA=$NABLA bash -euo pipefail ../readme.sh >../readme.out 2>../readme.err) ||
    fail "the README's regression commands to run" "$(cat readme.err)"
pycheck "the README's commands: R² > 0.98 and RMSE < 7 on the flats (noise σ = 6), predict's header index,price, the MLP saved" '
import re, sys
out = open(sys.argv[1]).read()
m = re.search(r"^price +([0-9.e+-]+) +([0-9.e+-]+) +([0-9.e+-]+) +([0-9.]+)$", out, re.M)
assert m, out
mse, rmse, mae, r2 = map(float, m.groups())
assert r2 > 0.98 and rmse < 7 and abs(rmse * rmse - mse) < 1e-3 * mse, (mse, rmse, r2)
assert "\nindex,price\n0," in out, out
' readme.out
[ -s readme/out/houses-mlp.safetensors ] || fail "the README's MLP regression saved"
ok "the README's regression commands run: $(grep -E '^price ' readme.out | awk '{ print "RMSE " $3 ", R² " $5 }')"
