#!/usr/bin/env bash
# `nabla import WEIGHTS --model DESC -o MODEL`: what it accepts and every way it refuses.
# (tests/torch_import.py checks the imported models' outputs against PyTorch.)
#   - weights named as the description (fc1.weight, ...) import as they are; nn.Sequential's
#     (0.weight, 2.weight, ...) with --names sequential, ten modules ordered numerically;
#   - no normalisation unless one is named; each --normalize form stores what it names;
#   - wrong names, shapes, module counts, members, dtypes, options, data and paths are
#     refused with a message naming the file, tensor or option and what was expected, and no
#     model file is written.
# Weight files are written here with Python's standard library.
#
# Run from the repository root: bash tests/cli_import.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"

[ -x "$NABLA" ] || { echo "FAIL: an executable CLI at $NABLA (run make)" >&2; exit 1; }
cli_enter_scratch import

# weights OUT NAME:D1xD2[:DTYPE] ...: a safetensors file of float tensors filled with 0.01·i.
weights() {
    "$PY" - "$@" <<'EOF'
import json, struct, sys
out, header, data = sys.argv[1], {}, b""
for spec in sys.argv[2:]:
    name, shape, *dtype = spec.split(":")
    dims = [int(d) for d in shape.split("x")]
    n = 1
    for d in dims:
        n *= d
    code, tag = {"F32": ("f", "F32"), "F64": ("d", "F64"), "I32": ("i", "I32")}[dtype[0] if dtype else "F32"]
    values = [0.01 * (i % 50) for i in range(n)] if code != "i" else list(range(n))
    blob = struct.pack("<%d%s" % (n, code), *values)
    header[name] = {"dtype": tag, "shape": dims, "data_offsets": [len(data), len(data) + len(blob)]}
    data += blob
text = json.dumps(header).encode()
open(out, "wb").write(struct.pack("<Q", len(text)) + text + data)
EOF
}

norm_of() {  # MODEL: its nabla.norm metadata
    "$PY" - "$1" <<'EOF'
import json, struct, sys
f = open(sys.argv[1], "rb")
(n,) = struct.unpack("<Q", f.read(8))
print(json.loads(f.read(n))["__metadata__"]["nabla.norm"])
EOF
}

printf 'x0,x1,label\n0.5,1.5,0\n-1,2,1\n2.5,-0.5,2\n1,1,1\n' > data.csv
printf 'a,b,c,label\n1,2,3,0\n' > three.csv

# ---- what it accepts -------------------------------------------------------------------------
weights fc.safetensors fc1.weight:4x2 fc1.bias:4 fc2.weight:3x4 fc2.bias:3
run import fc.safetensors --model 2-4-3 -o fc-model.safetensors
grep -q "wrote fc-model.safetensors: 4 tensors, 27 parameters, normalisation none" err.txt ||
    fail "a summary of the import" "$(cat err.txt)"
[ "$(norm_of fc-model.safetensors | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["mode"])')" = none ] ||
    fail "no normalisation without --normalize" "$(norm_of fc-model.safetensors)"
run predict fc-model.safetensors --data csv:data.csv:label
ok "fc-named weights import as they are, with no normalisation"

# a description file: the lecture's mynet (input 3x10x20, fc1 600 -> 60, fc2, fc3)
weights mynet-w.safetensors fc1.weight:60x600 fc1.bias:60 fc2.weight:40x60 fc2.bias:40 fc3.weight:10x40 fc3.bias:10
run import mynet-w.safetensors --model "$ROOT/examples/mynet.nb" -o mynet.safetensors
run info mynet.safetensors
grep -q "fc1" out.txt || fail "nabla info of the imported mynet" "$(cat out.txt)"
ok "weights for a description file (examples/mynet.nb) import"

# nn.Sequential with ten Linear layers: 0, 2, ..., 18 ordered as numbers, not as text (10 < 2)
args=()
for i in $(seq 0 9); do args+=("$((2 * i)).weight:2x2" "$((2 * i)).bias:2"); done
weights seq10.safetensors "${args[@]}"
run import seq10.safetensors --model 2-2-2-2-2-2-2-2-2-2-2 --names sequential -o seq10-model.safetensors
grep -q '^  2.weight *-> fc2.weight \[2,2\]$' err.txt && grep -q '^  18.bias *-> fc10.bias \[2\]$' err.txt ||
    fail "--names sequential: 2 -> fc2 and 18 -> fc10 (numeric order)" "$(cat err.txt)"
run import seq10.safetensors --model 2-2-2-2-2-2-2-2-2-2-2 --names sequential -q -o seq10-model.safetensors
[ ! -s err.txt ] || fail "-q: nothing on stderr" "$(cat err.txt)"
ok "--names sequential maps 0, 2, ..., 18 to fc1 ... fc10 in numeric order"

# each --normalize form
run import fc.safetensors --model 2-4-3 -o n.safetensors --normalize feature:csv:data.csv:label
norm_of n.safetensors | grep -q '"mode":"feature".*"mean":\[0.75,1\]' ||
    fail "--normalize feature:SPEC: the data's means 0.75 and 1" "$(norm_of n.safetensors)"
run import fc.safetensors --model 2-4-3 -o n.safetensors --normalize global:csv:data.csv:label
norm_of n.safetensors | grep -q '"mode":"global".*"mean":\[0.875\]' ||
    fail "--normalize global:SPEC: the overall mean 0.875" "$(norm_of n.safetensors)"
run import fc.safetensors --model 2-4-3 -o n.safetensors --normalize mean-std:72.94,90.02
norm_of n.safetensors | grep -q '"mode":"global","eps":0,.*"mean":\[72.94' ||
    fail "--normalize mean-std:72.94,90.02" "$(norm_of n.safetensors)"
run import fc.safetensors --model 2-4-3 -o n2.safetensors --normalize from:n.safetensors
[ "$(norm_of n.safetensors)" = "$(norm_of n2.safetensors)" ] || fail "--normalize from:MODEL copies it"
run import fc.safetensors --model 2-4-3 -o n.safetensors --classes cat,dog,bird
run predict n.safetensors --data csv:data.csv:label
grep -q ',"bird",' out.txt || fail "--classes: names in predict's output" "$(cat out.txt)"
ok "--normalize feature:, global:, mean-std:, from: and --classes store what they name"

# ---- what it refuses ---------------------------------------------------------------------------
weights seq.safetensors 0.weight:4x2 0.bias:4 2.weight:3x4 2.bias:3
weights f64.safetensors fc1.weight:4x2:F64 fc1.bias:4 fc2.weight:3x4 fc2.bias:3
weights i32.safetensors fc1.weight:4x2:I32 fc1.bias:4 fc2.weight:3x4 fc2.bias:3
weights shape.safetensors fc1.weight:4x3 fc1.bias:4 fc2.weight:3x4 fc2.bias:3
weights extra.safetensors fc1.weight:4x2 fc1.bias:4 fc2.weight:3x4 fc2.bias:3 fc3.weight:1x1
weights seq3.safetensors 0.weight:4x2 0.bias:4 2.weight:3x4 2.bias:3 4.weight:3x3 4.bias:3
weights seqshape.safetensors 0.weight:4x2 0.bias:4 2.weight:4x4 2.bias:4
weights seqbn.safetensors 0.weight:4x2 0.bias:4 0.running_mean:4 2.weight:3x4 2.bias:3
weights seqnobias.safetensors 0.weight:4x2 0.bias:4 2.weight:3x4
weights nodot.safetensors w:4x2
touch model.pt
run import f64.safetensors --model 2-4-3 -q -o ok.safetensors   # F64 reads as float32

rm -f out.safetensors
expect_fail 2 "--model DESC is required" :: import fc.safetensors -o out.safetensors
expect_fail 2 "-o MODEL.safetensors is required" :: import fc.safetensors --model 2-4-3
expect_fail 2 "expected one WEIGHTS.safetensors argument" :: import --model 2-4-3 -o out.safetensors
expect_fail 2 "model.pt: PyTorch's pickle files are not read" "save_file\(model.state_dict\(\)" :: \
    import model.pt --model 2-4-3 -o out.safetensors
expect_fail 2 "--names: expected exact or sequential" :: import fc.safetensors --model 2-4-3 --names auto -o out.safetensors
expect_fail 1 "absent.safetensors: cannot open" :: import absent.safetensors --model 2-4-3 -o out.safetensors
expect_fail 1 "absent.nb" :: import fc.safetensors --model absent.nb -o out.safetensors
expect_fail 1 "i32.safetensors: tensor 'fc1.weight': dtype: expected F32, F16, BF16, F64 or I64, found I32" :: \
    import i32.safetensors --model 2-4-3 -o out.safetensors
expect_fail 1 "seq.safetensors: tensor 'fc1.weight' \[4,2\] is missing" \
    "names like '0.weight' are nn.Sequential's: add --names sequential" :: \
    import seq.safetensors --model 2-4-3 -o out.safetensors
expect_fail 1 "shape.safetensors: tensor 'fc1.weight' has shape \[4,3\], the model expects \[4,2\]" :: \
    import shape.safetensors --model 2-4-3 -o out.safetensors
expect_fail 1 "extra.safetensors: tensor 'fc3.weight' is not a parameter or buffer of the model" :: \
    import extra.safetensors --model 2-4-3 -o out.safetensors
expect_fail 1 "seq3.safetensors: 3 modules with parameters \(0 ... 4\), the description has 2 \(fc1 ... fc2\)" :: \
    import seq3.safetensors --model 2-4-3 --names sequential -o out.safetensors
expect_fail 1 "seqshape.safetensors: tensor '2.weight' \[4,4\] does not fit 'fc2.weight' \[3,4\]" :: \
    import seqshape.safetensors --model 2-4-3 --names sequential -o out.safetensors
expect_fail 1 "seqbn.safetensors: module 1 '0' has 3 tensors, the description's 'fc1' has 2" :: \
    import seqbn.safetensors --model 2-4-3 --names sequential -o out.safetensors
expect_fail 1 "seqnobias.safetensors: module 2 '2' has 1 tensors, the description's 'fc2' has 2" :: \
    import seqnobias.safetensors --model 2-4-3 --names sequential -o out.safetensors
expect_fail 1 "nodot.safetensors: tensor 'w' belongs to no module" :: \
    import nodot.safetensors --model 2-4-3 --names sequential -o out.safetensors
expect_fail 1 "--normalize standard: expected none, feature:SPEC, channel:SPEC, global:SPEC, mean-std:M,S or from:MODEL" :: \
    import fc.safetensors --model 2-4-3 --normalize standard -o out.safetensors
for bad in mean-std:1 mean-std:1,0 mean-std:x,1 mean-std:1,2,3 mean-std:1e39,1; do
    expect_fail 1 "--normalize $bad: expected mean-std:M,S with a finite mean M and a standard deviation S > 0" :: \
        import fc.safetensors --model 2-4-3 --normalize "$bad" -o out.safetensors
done
expect_fail 1 "--normalize feature:csv:three.csv:label: samples have 3 features, the model's input has 2" :: \
    import fc.safetensors --model 2-4-3 --normalize feature:csv:three.csv:label -o out.safetensors
expect_fail 1 "missing.csv" :: import fc.safetensors --model 2-4-3 --normalize feature:csv:missing.csv -o out.safetensors
expect_fail 1 "absent.safetensors: cannot open" :: import fc.safetensors --model 2-4-3 --normalize from:absent.safetensors -o out.safetensors
expect_fail 1 "--normalize from:fc-model.safetensors: that model takes 2 features, this one 3" :: \
    import shape.safetensors --model 3-4-3 --normalize from:fc-model.safetensors -o out.safetensors
expect_fail 1 "/nonexistent/dir/out.safetensors" :: import fc.safetensors --model 2-4-3 -o /nonexistent/dir/out.safetensors
[ ! -e out.safetensors ] || fail "no model file written by a refused import"
ok "bad options, names, shapes, module counts, members, dtypes, data and paths refused"
echo "cli_import: all passed"
