#!/usr/bin/env bash
# `nabla export --format onnx`: for the default MLP, the residual DAG of examples/residual.nb, a
# DAG of every module, a CNN (Conv, BatchNormalization, MaxPool, AveragePool,
# GlobalAveragePool) and a network with leaky_relu, gelu and layer_norm (LeakyRelu, Erf, the
# layer norm as MatMul rows or LayerNormalization), python3-onnx's checker accepts the file (at
# opsets 13 and 17), and
# OpenCV's DNN module (cv2.dnn.readNetFromONNX) runs it on raw inputs and agrees with
# `nabla predict`: the same class on every input (all 10,000 Fashion-MNIST test images for the
# MLP and the CNN), probabilities within 1e-5. Regression models of examples/houses.csv (one and
# two targets): the output "values" equals nabla predict's values in the targets' units (within
# 1e-4 relative). Class and target names in the metadata; nearest neighbour refused.
#
# Exits 77 (skipped) without python3-onnx or python3-opencv, or when nabla was built without
# libprotobuf-c. Run from the repository root: bash tests/cli_export_onnx.sh.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
. "$(dirname "$0")/lib_export.sh"
[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"
if ! "$PY" -c 'import onnx, cv2' 2>/dev/null; then
    echo "SKIP: $PY cannot import onnx and cv2 (apt-get install python3-onnx python3-opencv)"
    exit 77
fi
cli_enter_scratch export-onnx
"$NABLA" export /dev/null --format onnx -o x.onnx 2>err.txt || true
if grep -q "not built in" err.txt; then
    echo "SKIP: $(cat err.txt)"
    exit 77
fi

export_models

# onnx_agree NAME IMAGES OPSET: exports NAME.safetensors, checks it, runs it in OpenCV on the raw
# images, and compares with nabla predict.
onnx_agree() {
    local name=$1 data=$2 opset=$3 msg
    run export "$name.safetensors" --format onnx -o "$name-$opset.onnx" --opset "$opset"
    msg=$("$PY" - "$name-$opset.onnx" "$data" "$name.safetensors" 2>&1 > "$name-$opset.csv" <<'PY'
import struct, sys
import cv2, numpy as np, onnx
path, images, model = sys.argv[1:4]
m = onnx.load(path)
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}
assert "nabla.description" in meta, meta
assert [o.name for o in m.graph.output][-1] == "probabilities", m.graph.output
if path.startswith("mlp"):  # trained on fashion-mnist, which names its classes
    assert meta.get("nabla.classes", "").startswith("T-shirt/top,Trouser"), meta
raw = open(images, "rb").read()
ndim = raw[3]
dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
x = np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).astype(np.float32)
shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim[1:]]
x = x.reshape([dims[0]] + shape)
net = cv2.dnn.readNetFromONNX(path)
probs = []
for start in range(0, len(x), 1000):
    net.setInput(x[start:start + 1000])
    probs.append(net.forward("probabilities").reshape(len(x[start:start + 1000]), -1))
p = np.concatenate(probs)
print("index,class,name," + ",".join(f"p{j}" for j in range(p.shape[1])))
for i, row in enumerate(p):
    print(f"{i},{int(row.argmax())},\"\"," + ",".join(f"{v:.9g}" for v in row))
PY
) || fail "$name: the ONNX checker to accept it and OpenCV to run it (opset $opset)" "$msg"
    agree "$name (ONNX opset $opset, OpenCV $("$PY" -c 'import cv2; print(cv2.__version__)'))" \
        "$name.json" "$name-$opset.csv"
}

for m in mlp:t10k.idx res:res-x.idx dag:dag-x.idx cnn:t10k.idx; do
    name=${m%%:*} data=${m#*:}
    predict_json "$name.safetensors" "$data"
    onnx_agree "$name" "$data" 13
done
onnx_agree dag dag-x.idx 17

# leaky_relu (LeakyRelu), gelu (its erf form: ONNX's Gelu needs opset 20) and layer_norm
# (opset 13: MatMul/Sub/Sqrt/Div rows; opset 17: LayerNormalization) through OpenCV at opset 13,
# with layer norms over a whole image sample and over a Linear's [N, D] output (act.nb)
predict_json act.safetensors t10k.idx
onnx_agree act t10k.idx 13
# opset 17, and a layer norm over the last two dimensions of a sample (act2.nb: [N, R, D]
# rows): what OpenCV 4.6 cannot run (no LayerNormalization; it mis-sizes [N, R, D] MatMuls),
# so the checker's full check (shape inference) and the graph's nodes are what is tested there
for opset in 13 17; do
    for m in act act2; do
        run export "$m.safetensors" --format onnx -o "$m-$opset.onnx" --opset "$opset"
        msg=$("$PY" - "$m-$opset.onnx" "$opset" "$m" <<'PY' 2>&1
import sys, onnx
path, opset, m = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model = onnx.load(path)
onnx.checker.check_model(model, full_check=True)
ops = [n.op_type for n in model.graph.node]
assert "LeakyRelu" in ops and "Erf" in ops and "Gelu" not in ops, ops
ln = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
if opset >= 17:
    axes = sorted({a.i for n in ln for a in n.attribute if a.name == "axis"})
    assert len(ln) == 2 and axes == ([-3, -1] if m == "act" else [-2, -1]), (len(ln), axes)
else:
    assert not ln and ops.count("Sqrt") == 2, ops
PY
) || fail "$m at opset $opset: LeakyRelu, Erf and the layer norms, accepted by the checker" "$msg"
    done
done
ok "leaky_relu, gelu, layer_norm: OpenCV agrees at opset 13; the checker accepts opsets 13 and 17 (LayerNormalization with axis -K at 17)"

# regression: "values" = output · σ + μ, in the targets' units
export_regression_models
for name in houses houses2; do
    run export "$name.safetensors" --format onnx -o "$name.onnx"
    msg=$("$PY" - "$name.onnx" "$name-x.txt" 2>&1 > "$name-onnx.txt" <<'PY'
import sys
import cv2, numpy as np, onnx
path, features = sys.argv[1:3]
m = onnx.load(path)
onnx.checker.check_model(m, full_check=True)
meta = {p.key: p.value for p in m.metadata_props}
outputs = [o.name for o in m.graph.output]
assert outputs[-1] == "values" and "probabilities" not in outputs, outputs
assert meta.get("nabla.targets") in ("price", "price,age"), meta
x = np.loadtxt(features, dtype=np.float32, ndmin=2)
net = cv2.dnn.readNetFromONNX(path)
net.setInput(x)
for row in net.forward("values").reshape(len(x), -1):
    print(" ".join(f"{v:.9g}" for v in row))
PY
) || fail "$name: the ONNX checker to accept it and OpenCV to run it" "$msg"
    agree_values "$name regression (ONNX, OpenCV)" "$name.json" "$name-onnx.txt"
done

# the normalisation is in the graph: the first nodes subtract the mean and multiply
"$PY" - mlp-13.onnx <<'PY' || fail "the ONNX graph to begin with the input normalisation (Sub, Mul)"
import sys, onnx
g = onnx.load(sys.argv[1]).graph
assert [n.op_type for n in g.node[:2]] == ["Sub", "Mul"], [n.op_type for n in g.node[:3]]
assert g.node[0].input[0] == "input" and g.input[0].name == "input"
PY
ok "the ONNX graph starts with the normalisation (Sub, Mul on 'input')"

# a nearest-neighbour model has no ONNX equivalent: refused, naming the node
"$PY" - <<'PY'
import json, struct
header = {"k.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
          "__metadata__": {"format": "pt", "nabla.description": "x = input(4)\nk = nearest(x, 3)\n"}}
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open("nn.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<12f", *range(12)))
PY
rc=0
"$NABLA" export nn.safetensors --format onnx -o nn.onnx >out.txt 2>err.txt || rc=$?
[ "$rc" -ne 0 ] && grep -q "node 'k' is nearest, which has no ONNX equivalent" err.txt && [ ! -e nn.onnx ] ||
    fail "a nearest-neighbour model refused with the reason, nothing written" "$(cat err.txt)"
run export nn.safetensors --format c -o nn.c
ok "nearest: refused by the ONNX export with the reason; the C export takes it"
