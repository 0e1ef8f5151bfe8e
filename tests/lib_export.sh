# Shared by tests/cli_export.sh and tests/cli_export_onnx.sh (sourced, not run): the models both
# exports are checked on, trained quickly, and a comparison of predictions with `nabla predict`.
# Needs lib_cli.sh sourced and the scratch directory entered.

FASHION=/usr/share/datasets/fashion-mnist

# A DAG of every module both exports support: flatten, linear (with and without bias), relu,
# tanh, max, sigmoid, mul, scale, add (residual), dropout, reshape, softmax over the last
# dimension, mean, sum, log_softmax output; per-channel normalisation of a 3×10×20 input.
write_dag() {
    cat > dag.nb <<'NB'
x  = input(3, 10, 20)
h  = flatten(x)
a  = linear(h, 48)
r  = relu(a)
b  = linear(h, 48, bias=false)
t  = tanh(b)
m  = max(r, t)
c  = linear(m, 48)
s  = sigmoid(c)
p  = mul(m, s)
q  = scale(p, 0.5)
u  = add(q, r)
d  = dropout(u, 0.2)
g  = reshape(d, 6, 8)
sm = softmax(g)
f  = flatten(sm)
mu = mean(f)
su = sum(h)
k  = add(mu, su)
e  = linear(k, 10)
z  = linear(u, 10)
o  = add(z, e)
out = log_softmax(o)
NB
}

# A small CNN with every image module both exports support: conv2d (padding same, groups,
# dilation, no bias), batch_norm over images and over features, max_pool2d, avg_pool2d
# (padding, count_include_pad=false), global_avg_pool.
write_cnn() {
    cat > cnn.nb <<'NB'
x  = input(1, 28, 28)
c1 = conv2d(x, 8, 3, padding=same)
b1 = batch_norm(c1)
r1 = relu(b1)
p1 = max_pool2d(r1, 2)
c2 = conv2d(p1, 16, 3, padding=1, groups=2)
r2 = relu(c2)
p2 = avg_pool2d(r2, 3, stride=2, padding=1, count_include_pad=false)
c3 = conv2d(p2, 16, 3, dilation=2, bias=false)
g  = global_avg_pool(c3)
f  = flatten(p2)
h  = linear(f, 32)
b2 = batch_norm(h)
r3 = relu(b2)
z1 = linear(r3, 10)
z2 = linear(g, 10)
z  = add(z1, z2)
NB
}

# IDX files of N random samples of the given shape whose label is learnable (the arg-max of the
# first 10 values, blurred by noise), written by Python: NAME-x.idx, NAME-y.idx.
write_idx() {  # NAME N DIMS...
    "$PY" - "$@" <<'PY'
import struct, sys
import numpy as np
name, n, dims = sys.argv[1], int(sys.argv[2]), [int(d) for d in sys.argv[3:]]
rng = np.random.default_rng(7)
x = rng.integers(0, 256, size=[n] + dims, dtype=np.uint8)
flat = x.reshape(n, -1).astype(np.int32)
y = flat[:, :10].argmax(1).astype(np.uint8)
with open(name + "-x.idx", "wb") as f:
    f.write(struct.pack(">BBBB", 0, 0, 8, 1 + len(dims)) + struct.pack(">" + "I" * (1 + len(dims)), n, *dims))
    f.write(x.tobytes())
with open(name + "-y.idx", "wb") as f:
    f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + y.tobytes())
PY
}

# The first N Fashion-MNIST training images: tr-x.idx, tr-y.idx.
# write_act: act.nb, a small network with leaky_relu, gelu and layer norms over a whole image
# sample and over a Linear's [N, D] output; act2.nb the same with the first layer norm over the
# last two dimensions of a sample (rows [N, R, D]).
write_act() {
    cat > act.nb <<'NB'
x  = input(1, 28, 28)
c  = conv2d(x, 4, 3, stride=2)
n1 = layer_norm(c)
a1 = leaky_relu(n1, 0.1)
f  = flatten(a1)
h  = linear(f, 32)
n2 = layer_norm(h, eps=1e-3)
g  = gelu(n2)
a2 = leaky_relu(g)
z  = linear(a2, 10)
NB
    sed 's/^n1 = layer_norm(c)$/n1 = layer_norm(c, dims=2)/' act.nb > act2.nb
}

write_fashion_subset() {
    "$PY" - "$1" "$FASHION" <<'PY'
import gzip, struct, sys
n, d = int(sys.argv[1]), sys.argv[2]
x = gzip.open(d + "/train-images-idx3-ubyte.gz").read()
y = gzip.open(d + "/train-labels-idx1-ubyte.gz").read()
open("tr-x.idx", "wb").write(x[:4] + struct.pack(">I", n) + x[8:16] + x[16:16 + n * 784])
open("tr-y.idx", "wb").write(y[:4] + struct.pack(">I", n) + y[8:8 + n])
PY
}

# The four models: the default MLP of the main job (784-256-128-10, one epoch on the 60,000
# Fashion-MNIST training images, about a second), examples/residual.nb (fan-out, Add, Max,
# Dropout) and the DAG above, each trained a few seconds on random data, and the CNN above,
# two epochs on 3,000 Fashion-MNIST images.
export_models() {
    gunzip -c "$FASHION/t10k-images-idx3-ubyte.gz" > t10k.idx
    gunzip -c "$FASHION/t10k-labels-idx1-ubyte.gz" > t10k-labels.idx
    run train 784-256-128-10 --data fashion-mnist --epochs 1 --batch 128 --optimizer sgd \
        --lr 0.05 --momentum 0.9 --normalize feature --seed 1 --threads 2 -q -o mlp.safetensors
    write_idx res 2000 64
    run train "$ROOT/examples/residual.nb" --data idx:res-x.idx,res-y.idx --epochs 8 \
        --normalize feature --seed 1 --threads 2 -q -o res.safetensors
    write_dag
    write_idx dag 2000 30 20   # IDX holds at most 3 dimensions: 30 "channels" of 20 values
    run train dag.nb --data idx:dag-x.idx,dag-y.idx --epochs 8 --optimizer adam --lr 0.002 \
        --normalize channel --seed 1 --threads 2 -q -o dag.safetensors
    write_cnn
    write_fashion_subset 3000
    run train cnn.nb --data idx:tr-x.idx,tr-y.idx --epochs 2 --normalize global --seed 1 \
        --threads 2 -q -o cnn.safetensors
    write_act
    for m in act act2; do
        run train $m.nb --data idx:tr-x.idx,tr-y.idx --epochs 1 --seed 1 --threads 2 -q \
            -o $m.safetensors
    done
}

# predict_json MODEL IMAGES [LIMIT]: nabla predict's classes and probabilities (of the first
# LIMIT inputs), as JSON in MODEL.json.
predict_json() {
    run predict "$1" --data "idx:$2" --format json ${3:+--limit "$3"}
    mv out.txt "${1%.safetensors}.json"
}

# agree WHAT REFERENCE.json CANDIDATE.csv: the same class on every input and probabilities within
# 1e-5 (CANDIDATE: index,class,name,p0,… as nabla predict's CSV). Prints the largest difference.
agree() {
    local msg
    msg=$("$PY" - "$2" "$3" <<'PY' 2>&1
import csv, json, sys
ref = json.load(open(sys.argv[1]))
got = list(csv.DictReader(open(sys.argv[2])))
assert len(ref) == len(got), f"{len(got)} rows, expected {len(ref)}"
worst, differ = 0.0, []
for r, g in zip(ref, got):
    if int(g["class"]) != r["class"]:
        differ.append(r["index"])
    for j, p in enumerate(r["probabilities"]):
        worst = max(worst, abs(float(g[f"p{j}"]) - p))
assert not differ, f"{len(differ)} inputs classified differently, e.g. {differ[:5]}"
assert worst <= 1e-5, f"probabilities differ by up to {worst:.3g} (limit 1e-5)"
print(f"{len(ref)} inputs, same class, probabilities within {worst:.2g}")
PY
) || fail "$1: the same predictions as nabla predict" "$msg"
    ok "$1: $msg"
}

# Two regression models of examples/houses.csv (area, rooms, age → price), trained with
# --loss mse and standardised targets as in the README: houses.safetensors (3-16-1, price)
# and houses2.safetensors (2-16-2: area, rooms → price and age, so the standardisation is
# undone per output). Their raw features, one row per line, in houses-x.txt and houses2-x.txt,
# and nabla predict's values in houses.json and houses2.json.
export_regression_models() {
    run train 3-16-1 --loss mse --data "csv:$ROOT/examples/houses.csv:price" --epochs 30 \
        --batch 16 --lr 0.05 --seed 1 --threads 1 -q -o houses.safetensors
    run train 2-16-2 --loss mse --data "csv:$ROOT/examples/houses.csv:price,age" --epochs 30 \
        --batch 16 --lr 0.05 --seed 1 --threads 1 -q -o houses2.safetensors
    for m in houses:price houses2:price,age; do
        run predict "${m%%:*}.safetensors" --data "csv:$ROOT/examples/houses.csv:${m#*:}" \
            --format json
        mv out.txt "${m%%:*}.json"
    done
    "$PY" - "$ROOT/examples/houses.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for name, cols in (("houses", ["area", "rooms", "age"]), ("houses2", ["area", "rooms"])):
    with open(name + "-x.txt", "w") as f:
        for r in rows:
            f.write(" ".join(r[c] for c in cols) + "\n")
PY
}

# agree_values WHAT REFERENCE.json CANDIDATE.txt: the candidate's rows (one line of values per
# input) equal nabla predict's values within 1e-4 relative (1e-4 absolute near zero).
agree_values() {
    local msg
    msg=$("$PY" - "$2" "$3" <<'PY' 2>&1
import json, sys
ref = json.load(open(sys.argv[1]))
got = [[float(v) for v in line.split()] for line in open(sys.argv[2])]
assert len(ref) == len(got), f"{len(got)} rows, expected {len(ref)}"
worst = 0.0
for r, g in zip(ref, got):
    want = list(r["values"].values())
    assert len(want) == len(g), f"{len(g)} values in a row, expected {len(want)}"
    for w, v in zip(want, g):
        worst = max(worst, abs(v - w) / max(abs(w), 1.0))
assert worst <= 1e-4, f"values differ by up to {worst:.3g} relative (limit 1e-4)"
names = ",".join(ref[0]["values"])
print(f"{len(ref)} inputs, {names} in the targets' units within {worst:.2g} relative")
PY
) || fail "$1: the same values as nabla predict" "$msg"
    ok "$1: $msg"
}
