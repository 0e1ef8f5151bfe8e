#!/usr/bin/env bash
# `nabla export --format c`: the generated C99 file of each model (the default MLP, the residual
# DAG of examples/residual.nb, a DAG of every module, a CNN, and networks with leaky_relu, gelu
# and layer norms over whole and part samples) compiles without a warning under gcc and
# clang with -std=c99 -Wall -Wextra -pedantic, and, built into examples/embed/main.c, predicts
# what `nabla predict` does (same class on all 10,000 Fashion-MNIST test images; probabilities
# within 1e-5). Regression models of examples/houses.csv (one and two targets): NAME_regress
# gives nabla predict's values in the targets' units (within 1e-4 relative). Also: no global
# mutable state, -ffreestanding with a user's expf, the int8 files — weight-only, and
# calibrated on the training set (int8 inputs, int32 sums) — each about 4x smaller with test
# accuracy within 0.5 points of fp32, and the errors. About 40 seconds.
#
# Run from the repository root: bash tests/cli_export.sh ($NABLA as in lib_cli.sh).
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
. "$(dirname "$0")/lib_export.sh"
cli_enter_scratch export
[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"
WARN=(-std=c99 -Wall -Wextra -pedantic -Werror)
compilers=(gcc)
if command -v clang >/dev/null; then compilers+=(clang)
elif [ "${CI:-}" = true ]; then fail "clang installed (CI)"
else echo "note: clang not installed: gcc only"; fi

export_models

# build_embedded MODEL DIR [export options...]: exports MODEL to DIR/model.c and builds the
# embedding example against it with every compiler (DIR/run-gcc, DIR/run-clang).
build_embedded() {
    local model=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    run export "$model" --format c -o "$dir/model.c" "$@"
    [ -f "$dir/model.h" ] || fail "export to write $dir/model.h beside $dir/model.c"
    for cc in "${compilers[@]}"; do
        "$cc" "${WARN[@]}" -O2 -I"$dir" "$ROOT/examples/embed/main.c" "$dir/model.c" -lm \
            -o "$dir/run-$cc" 2>"$dir/cc.txt" || fail "$cc to compile $dir/model.c without a warning" "$(head -n 20 "$dir/cc.txt")"
    done
}

# the CNN on the first 2,000 test images: its direct convolution loops take ~2 ms an image
for m in mlp:t10k.idx: res:res-x.idx: dag:dag-x.idx: cnn:t10k.idx:2000; do
    IFS=: read -r name data limit <<<"$m"
    build_embedded "$name.safetensors" "c-$name"
    predict_json "$name.safetensors" "$data" "$limit"
    for cc in "${compilers[@]}"; do
        "c-$name/run-$cc" "$data" $limit > "c-$name/$cc.csv" || fail "c-$name/run-$cc to run"
        agree "$name ($cc)" "$name.json" "c-$name/$cc.csv"
    done
    # static const weights and code only: nothing writable at file scope
    gcc "${WARN[@]}" -O2 -c "c-$name/model.c" -o "c-$name/model.o"
    writable=$(nm "c-$name/model.o" | awk '$2 ~ /^[bBdDcC]$/' || true)
    [ -z "$writable" ] || fail "$name: no global mutable state in the generated object" "$writable"
done
ok "no writable data in the generated objects (nm shows no .data/.bss/common symbols)"

# ---- leaky_relu, gelu, layer_norm (act.nb; act2.nb normalises part of each sample) -------------
for name in act act2; do
    build_embedded "$name.safetensors" "c-$name"
    predict_json "$name.safetensors" t10k.idx 2000
    for cc in "${compilers[@]}"; do
        "c-$name/run-$cc" t10k.idx 2000 > "c-$name/$cc.csv" || fail "c-$name/run-$cc to run"
        agree "$name ($cc)" "$name.json" "c-$name/$cc.csv"
    done
done

# ---- freestanding: the user's expf, no <math.h>, no libc --------------------------------------
gcc "${WARN[@]}" -O2 -ffreestanding -DMODEL_EXPF=my_expf -DMODEL_LOGF=my_logf -DMODEL_TANHF=my_tanhf \
    -c c-dag/model.c -o free.o 2>cc.txt || fail "the DAG to compile with -ffreestanding" "$(cat cc.txt)"
undefined=$(nm -u free.o | awk '{print $2}' | grep -vxE 'my_expf|my_logf|my_tanhf|memset|memcpy' || true)
[ -z "$undefined" ] || fail "-ffreestanding: no symbols but the user's math functions (and memset/memcpy)" "$undefined"
cat > mymath.c <<'C'
#include <math.h>
float my_expf(float x) { return expf(x); }
float my_logf(float x) { return logf(x); }
float my_tanhf(float x) { return tanhf(x); }
C
gcc -O2 -Ic-dag "$ROOT/examples/embed/main.c" free.o mymath.c -lm -o free-run
./free-run dag-x.idx > free.csv
cmp -s free.csv c-dag/gcc.csv || fail "the freestanding build with the user's math to print what the hosted one does"
ok "-ffreestanding with user-supplied expf/logf/tanhf: only those (and memset/memcpy) undefined; same output"
gcc "${WARN[@]}" -O2 -ffreestanding -DMODEL_EXPF=my_expf -DMODEL_ERFF=my_erff -DMODEL_SQRTF=my_sqrtf \
    -c c-act/model.c -o free-act.o 2>cc.txt || fail "act to compile with -ffreestanding" "$(cat cc.txt)"
undefined=$(nm -u free-act.o | awk '{print $2}' | grep -vxE 'my_expf|my_erff|my_sqrtf|memset|memcpy' || true)
[ -z "$undefined" ] || fail "-ffreestanding (gelu, layer_norm): no symbols but the user's erff, sqrtf, expf" "$undefined"
ok "-ffreestanding with gelu and layer_norm: only the user's expf/erff/sqrtf (and memset/memcpy) undefined"

# ---- regression: NAME_regress in the targets' units ---------------------------------------------
export_regression_models
cat > regress.c <<'C'
/* Reads rows of raw features from stdin and prints model_regress's values, one row a line. */
#include "model.h"
#include <stdio.h>
int main(void)
{
    float x[MODEL_INPUT_FEATURES], v[MODEL_OUTPUTS];
    int j;
    for (;;) {
        for (j = 0; j < MODEL_INPUT_FEATURES; j++)
            if (scanf("%f", &x[j]) != 1)
                return j == 0 ? 0 : 1;
        model_regress(x, v);
        for (j = 0; j < MODEL_OUTPUTS; j++)
            printf("%s%.9g", j ? " " : "", v[j]);
        printf("\n");
    }
}
C
for name in houses houses2; do
    mkdir -p "c-$name"
    run export "$name.safetensors" --format c -o "c-$name/model.c"
    grep -q '^#define MODEL_REGRESSION 1' "c-$name/model.h" && ! grep -q 'model_predict(' "c-$name/model.h" ||
        fail "$name: a regression header (MODEL_REGRESSION, model_regress, no model_predict)"
    for cc in "${compilers[@]}"; do
        "$cc" "${WARN[@]}" -O2 -I"c-$name" regress.c "c-$name/model.c" -lm -o "c-$name/run-$cc" \
            2>"c-$name/cc.txt" || fail "$cc to compile c-$name/model.c without a warning" "$(head -n 20 "c-$name/cc.txt")"
        "c-$name/run-$cc" < "$name-x.txt" > "c-$name/$cc.txt" || fail "c-$name/run-$cc to run"
        agree_values "$name regression ($cc)" "$name.json" "c-$name/$cc.txt"
    done
done

# ---- int8 --------------------------------------------------------------------------------------
build_embedded mlp.safetensors c-q8 --quantize int8
grep -q 'static const signed char fc1_q\[200704\]' c-q8/model.c || fail "int8 weights as signed char arrays"
c-q8/run-gcc t10k.idx > c-q8/gcc.csv
gcc "${WARN[@]}" -O2 -c c-q8/model.c -o c-q8/model.o
# calibrated on the 60,000 training images: int8 inputs to every Linear, int32 sums
build_embedded mlp.safetensors c-i8 --quantize int8 --calibrate fashion-mnist
[ "$(grep -c 'linear_i8(scratch' c-i8/model.c)" = 3 ] && ! grep -q 'linear_q8' c-i8/model.c ||
    fail "the calibrated file to run all three Linear layers as linear_i8"
c-i8/run-gcc t10k.idx > c-i8/gcc.csv
gcc "${WARN[@]}" -O2 -c c-i8/model.c -o c-i8/model.o
msg=$("$PY" - <<'PY' 2>&1
import csv, subprocess
labels = open("t10k-labels.idx", "rb").read()[8:]
def accuracy(path):
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 10000
    return 100.0 * sum(int(r["class"]) == labels[i] for i, r in enumerate(rows)) / len(rows)
def rodata(obj):  # bytes of constant data: the weights
    out = subprocess.run(["size", "-A", obj], capture_output=True, text=True, check=True).stdout
    return sum(int(l.split()[1]) for l in out.splitlines() if l.startswith(".rodata"))
a32, s32 = accuracy("c-mlp/gcc.csv"), rodata("c-mlp/model.o")
for what, d in (("int8 weight-only", "c-q8"), ("int8 calibrated", "c-i8")):
    a8, s8 = accuracy(d + "/gcc.csv"), rodata(d + "/model.o")
    assert abs(a8 - a32) <= 0.5, f"{what} accuracy {a8:.2f} % vs fp32 {a32:.2f} %: more than 0.5 points apart"
    assert s32 / s8 >= 3.5, f"{what} constants {s8} bytes vs fp32 {s32}: only {s32 / s8:.2f}x smaller"
    print(f"{what} {a8:.2f} % vs fp32 {a32:.2f} % test accuracy ({a8 - a32:+.2f} points); constants {s8} vs {s32} bytes ({s32 / s8:.2f}x smaller)")
PY
) || fail "int8: accuracy within 0.5 points of fp32, about 4x smaller" "$msg"
while IFS= read -r line; do ok "$line"; done <<<"$msg"

# ---- errors ------------------------------------------------------------------------------------
expect_error() {  # WHAT PATTERN ARGS...
    local what=$1 pattern=$2 rc=0
    shift 2
    "$NABLA" export "$@" >out.txt 2>err.txt || rc=$?
    [ "$rc" -ne 0 ] && grep -qE "$pattern" err.txt && sanitizer_clean err.txt ||
        fail "$what (exit $rc, a message matching /$pattern/)" "$(cat err.txt)"
}
expect_error "-o must name a .c file" "name a file ending in .c" mlp.safetensors --format c -o model.txt
expect_error "--name must be a C identifier" "not a C identifier" mlp.safetensors --format c -o x.c --name 9lives
expect_error "--quantize takes int8" "expected int8" mlp.safetensors --format c -o x.c --quantize int4
expect_error "--calibrate needs --quantize int8" "calibrate applies to --quantize int8" mlp.safetensors --format c -o x.c --calibrate fashion-mnist
expect_error "--calibrate is for the C export" "calibrate applies to --format c" mlp.safetensors --format onnx -o x.onnx --calibrate fashion-mnist
expect_error "calibration data of the wrong size is named" "calibration.*784|784.*calibration" mlp.safetensors --format c -o x.c --quantize int8 --calibrate idx:res-x.idx,res-y.idx
expect_error "--format is required" "format onnx or --format c is required" mlp.safetensors -o x.c
expect_error "a missing model file is named" "no-such.safetensors" no-such.safetensors --format c -o x.c
expect_error "an unwritable output is reported" "no-such-dir/x\.[ch]" mlp.safetensors --format c -o no-such-dir/x.c
[ ! -e x.c ] && [ ! -e x.h ] || fail "nothing written by a failed export"
ok "errors: bad -o, --name, --quantize, --calibrate, missing --format, missing model, unwritable output"
