#!/usr/bin/env bash
# End-to-end tests of --precision (issue 8): the refusal path (NABLA_DISABLE_BF16=1, on any
# machine): `--precision bf16` exits 1 naming the reason and the fallback option, and
# `--precision bf16-or-fp32` runs in fp32 and says so; an unknown precision is a usage error.
# Where bf16 is available: train / eval / predict / gradcheck in bf16 — gradcheck passes on
# the lecture's models, training on spirals learns, eval agrees with the fp32 evaluation of
# the same model within a few samples, --json names the precision and the kernels.
#
# Run from the repository root: bash tests/cli_bf16.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
SPIRALS=spirals:200:3:0.2

cli_enter_scratch bf16

# `nabla ARGS...` with its exit status in $rc, stdout in out.txt, stderr in err.txt.
run_rc() {
    rc=0
    "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
    if grep -qE 'Sanitizer|runtime error:' err.txt; then
        fail "nabla $*: no sanitizer report" "$(tail -n 30 err.txt)"
    fi
}
run() {
    run_rc "$@"
    [ "$rc" -eq 0 ] || fail "nabla $* to succeed (exit status $rc)" "$(cat out.txt err.txt | tail -n 30)"
}

# ---- refusal, on any machine -------------------------------------------------------------
run train 2-16-3 --data "$SPIRALS" --epochs 2 -q -o fp32.safetensors
for cmd in "train 2-16-3 --data $SPIRALS --epochs 1 -q -o x.safetensors" \
           "eval fp32.safetensors --data $SPIRALS" "predict fp32.safetensors --data $SPIRALS" \
           "gradcheck 8-16-4"; do
    # shellcheck disable=SC2086
    NABLA_DISABLE_BF16=1 run_rc $cmd --precision bf16
    [ "$rc" -eq 1 ] && grep -q 'bf16 precision is unavailable: bf16 is disabled by NABLA_DISABLE_BF16' err.txt &&
        grep -q 'bf16-or-fp32' err.txt ||
        fail "${cmd%% *} --precision bf16 refused (exit 1) with the reason and the fallback" "exit $rc: $(cat err.txt)"
    # shellcheck disable=SC2086
    NABLA_DISABLE_BF16=1 run_rc $cmd --precision bf16-or-fp32
    [ "$rc" -eq 0 ] && grep -q 'running in fp32 (--precision bf16-or-fp32)' err.txt ||
        fail "${cmd%% *} --precision bf16-or-fp32 falls back to fp32 and says so" "exit $rc: $(cat err.txt)"
done
run_rc train 2-16-3 --data "$SPIRALS" --precision fp16
[ "$rc" -eq 2 ] && grep -q -- '--precision: expected fp32, bf16 or bf16-or-fp32' err.txt ||
    fail "--precision fp16 is a usage error" "exit $rc: $(cat err.txt)"
NABLA_DISABLE_BF16=1 run train 2-16-3 --data "$SPIRALS" --epochs 1 -q --json --precision bf16-or-fp32 -o y.safetensors
grep -q '"precision":"fp32"' out.txt || fail "--json after the fallback says fp32" "$(cat out.txt)"
ok "--precision bf16 refused with the reason where unavailable (NABLA_DISABLE_BF16=1); bf16-or-fp32 falls back and says so"

# ---- bf16, where the machine has it ------------------------------------------------------
# A CPU without bf16 instructions runs the same path emulated (NABLA_BF16_EMULATE: fp32
# products of the bf16-rounded operands), so that everything but oneDNN's bf16 kernels is
# tested on any machine with oneDNN.
run_rc gradcheck 8-16-4 --precision bf16
if [ "$rc" -ne 0 ]; then
    grep -q 'bf16 precision is unavailable' err.txt || fail "gradcheck --precision bf16" "$(cat err.txt)"
    export NABLA_BF16_EMULATE=1
    run_rc gradcheck 8-16-4 --precision bf16
    if [ "$rc" -ne 0 ]; then
        skip "bf16 runs: $(cat err.txt)"
        cli_finish cli_bf16
    fi
    echo "note: no bf16 instructions here: the bf16 runs below are emulated (NABLA_BF16_EMULATE=1)"
fi

cat > ce.nb <<'EOF'
x    = input(5)
h    = linear(x, 7)
a    = sigmoid(h)
z    = linear(a, 4)
y    = labels()
loss = cross_entropy(z, y)
EOF
for model in 8-16-4 8-16-4:tanh 8-16-4:sigmoid "$ROOT/examples/mynet.nb" "$ROOT/examples/residual.nb" ce.nb; do
    run gradcheck "$model" --precision bf16
    grep -qE ": [0-9]+ tensors, tolerance [0-9.e+-]+: ok$" out.txt && ! grep -q FAIL out.txt ||
        fail "gradcheck $model --precision bf16 passes" "$(cat out.txt)"
done
run gradcheck "$ROOT/examples/residual.nb" --precision bf16 --training --seed 2
run gradcheck 8-16-4 --precision bf16
grep -q 'tolerance 6.2e-02: ok' out.txt || fail "bf16 tolerance 8u·L = 6.2e-2 for two layers" "$(cat out.txt)"
# and it can fail: fp32's own tolerance is below bf16's rounding
run_rc gradcheck "$ROOT/examples/mynet.nb" --precision bf16 --tol 1e-4
[ "$rc" -eq 1 ] && grep -q FAILED out.txt || fail "gradcheck --precision bf16 --tol 1e-4 fails" "exit $rc: $(cat out.txt)"
ok "gradcheck --precision bf16 passes on 8-16-4 (relu, tanh, sigmoid), mynet.nb, residual.nb, ce.nb; fails at 1e-4"

run train 2-32-32-3 --data "$SPIRALS" --epochs 30 --batch 16 --precision bf16 -q --json -o bf16.safetensors
$PY - out.txt <<'EOF' || fail "train --precision bf16 learns spirals and reports the kernels" "$(cat out.txt)"
import json, sys
j = json.loads(open(sys.argv[1]).read())
assert j["precision"] == "bf16", j
assert j["train_accuracy"] > 0.8, j
assert "fwd " in j["kernels"] and "dW " in j["kernels"], j
EOF
run eval bf16.safetensors --data "$SPIRALS" --json
fp32=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' out.txt)
run eval bf16.safetensors --data "$SPIRALS" --json --precision bf16
bf16=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["accuracy"])' out.txt)
$PY -c "import sys; sys.exit(abs($fp32 - $bf16) * 600 > 3)" ||
    fail "eval in bf16 and fp32 agree within 3 of 600 samples ($bf16 vs $fp32)"
run predict bf16.safetensors --data "$SPIRALS" --precision bf16 --limit 5
[ "$(wc -l < out.txt)" -eq 6 ] || fail "predict --precision bf16 prints 5 rows" "$(cat out.txt)"
ok "train / eval / predict --precision bf16 (spirals: fp32 $fp32, bf16 $bf16 accuracy)"

cli_finish cli_bf16
