#!/usr/bin/env bash
# Bad input gets a clear error, never a crash: every case below must exit with status 1
# (a failure) or 2 (a usage error) — never 0, never a signal (>= 128) — print nothing on
# stdout, no sanitizer report, and a message on stderr that names the file, line, option or
# node at fault and what was expected. Also: --help on every subcommand, and --version.
#
# Run from the repository root: bash tests/cli_errors.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

NABLA=${NABLA:-${NABLA_BUILD:-build}/nabla}
case $NABLA in /*) ;; *) NABLA=$PWD/$NABLA ;; esac
PY=/usr/bin/python3
# On a busy machine, OpenMP threads that spin while waiting make small runs ~40x slower.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

# every epoch fsyncs a checkpoint: a RAM disk keeps that cheap
scratch=${TMPDIR:-/tmp}
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch=/dev/shm; fi
tmp=$(mktemp -d "$scratch/nabla-cli-errors.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

fail() {  # what was expected, then optionally the actual output
    printf 'FAIL: %s\n' "$1" >&2
    if [ $# -gt 1 ]; then printf '%s\n' "--- actual:" "$2" | sed 's/^/  /' >&2; fi
    exit 1
}

cases=0
# expect STATUS 'ERE' ['ERE' ...] :: ARGS...: `nabla ARGS` exits with STATUS, prints nothing
# on stdout and a stderr message matching every pattern (grep -E), without a sanitizer report.
expect() {
    local want=$1 patterns=() rc=0 p
    shift
    while [ "$1" != "::" ]; do patterns+=("$1"); shift; done
    shift
    "$NABLA" "$@" >out.txt 2>err.txt </dev/null || rc=$?
    local what="nabla $*"
    if [ "$rc" -ne "$want" ]; then
        fail "$what: exit status $want (expected a clean error$([ "$rc" -ge 128 ] && echo ', got a crash'))" \
            "exit status $rc; stderr: $(head -c 1500 err.txt)"
    fi
    if grep -qE 'Sanitizer|runtime error:' err.txt; then
        fail "$what: no sanitizer report" "$(head -n 30 err.txt)"
    fi
    [ ! -s out.txt ] || fail "$what: nothing on stdout (errors go to stderr)" "$(head -c 500 out.txt)"
    [ -s err.txt ] || fail "$what: a message on stderr" "(empty)"
    for p in "${patterns[@]}"; do
        grep -qE -- "$p" err.txt || fail "$what: a message matching /$p/" "$(head -c 1500 err.txt)"
    done
    cases=$((cases + 1))
}

[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"

# ---- help and version ---------------------------------------------------------------------
# every command that `nabla --help` lists, and at least the five of the lecture
commands=$("$NABLA" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
for cmd in train eval predict info gradcheck; do
    printf '%s\n' $commands | grep -qx "$cmd" || fail "nabla --help to list the command $cmd" "$commands"
done
for cmd in $commands; do
    rc=0
    "$NABLA" "$cmd" --help >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq 0 ] && head -n 1 out.txt | grep -q "^Usage: nabla $cmd" ||
        fail "nabla $cmd --help: exit 0 and 'Usage: nabla $cmd' on stdout" "exit $rc: $(head -n 3 out.txt err.txt)"
    rc=0
    "$NABLA" "$cmd" -h >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq 0 ] && grep -q "^Usage: nabla $cmd" out.txt || fail "nabla $cmd -h: exit 0 and the usage" "exit $rc"
done
grep -q -- '--data SPEC' <("$NABLA" train --help) || fail "train --help to document --data SPEC"
grep -q 'spirals' <("$NABLA" train --help) || fail "train --help to list the data sets"
for h in --help -h; do
    rc=0
    "$NABLA" $h >out.txt 2>err.txt || rc=$?
    [ "$rc" -eq 0 ] && grep -q '^Usage: nabla COMMAND' out.txt && grep -q 'gradcheck' out.txt ||
        fail "nabla $h: exit 0 and the usage listing the commands" "exit $rc: $(cat out.txt err.txt)"
done
"$NABLA" --version >out.txt 2>&1 || fail "nabla --version to exit 0" "$(cat out.txt)"
grep -qE '^nabla [0-9]+\.[0-9]+\.[0-9]+ .*gemm: .*(onednn|openblas|portable)' out.txt ||
    fail "nabla --version to give the version and name the gemm backend" "$(cat out.txt)"
echo "ok: --help on every subcommand ($(echo $commands)), --version names the gemm backend ($(cat out.txt))"

# ---- the command line itself: status 2 ----------------------------------------------------
expect 2 'Usage' :: 
expect 2 "unknown command 'bogus'" 'Usage' :: bogus
expect 2 "'--frobnicate'" :: train 2-8-3 --frobnicate
expect 2 "'--frobnicate'" :: eval m.safetensors --frobnicate
expect 2 "'--frobnicate'" :: predict m.safetensors --frobnicate
expect 2 "'--frobnicate'" :: info 2-8-3 --frobnicate
expect 2 "'--frobnicate'" :: gradcheck 2-8-3 --frobnicate
expect 2 'MODEL' :: train --data spirals
expect 2 'MODEL' :: train 2-8-3 4-8-3 --data spirals
expect 2 'MODEL' :: eval
expect 2 'MODEL' :: predict
expect 2 'MODEL' :: info
expect 2 'MODEL' :: gradcheck
expect 2 "epochs" 'requires an argument' :: train 2-8-3 --epochs
expect 2 "'--data'|data" :: train 2-8-3 --data
expect 2 "'--limit'|limit" :: predict m.safetensors --limit
expect 2 '--epochs' "'abc'" 'integer' :: train 2-8-3 --epochs abc
expect 2 '--epochs' "'-3'" 'integer' :: train 2-8-3 --epochs -3
expect 2 '--epochs' "'2x'" 'integer' :: train 2-8-3 --epochs 2x
expect 2 '--batch' "'-1'" 'integer' :: train 2-8-3 --batch -1
expect 2 'seed' "'one'" 'integer' :: train 2-8-3 --seed one
expect 2 'threads' "'many'" 'integer' :: train 2-8-3 --threads many
expect 2 'lr' "'x'" 'number' :: train 2-8-3 --lr x
expect 2 'lr' "'nan'" 'number' :: train 2-8-3 --lr nan
expect 2 'momentum' "'fast'" 'number' :: train 2-8-3 --momentum fast
expect 2 'clip' "'0.5.1'" 'number' :: train 2-8-3 --clip 0.5.1
expect 2 'val-split' '0 <= F < 1' :: train 2-8-3 --val-split 1.5
expect 2 '--label-smoothing' '0 <= F < 1' "'-0.1'" :: train 2-8-3 --label-smoothing -0.1
expect 2 '--label-smoothing' '0 <= F < 1' "'1'" :: train 2-8-3 --label-smoothing 1
expect 2 '--label-smoothing' '0 <= F < 1' "'abc'" :: train 2-8-3 --label-smoothing abc
expect 2 '--label-smoothing' '0 <= F < 1' "'nan'" :: train 2-8-3 --label-smoothing nan
expect 2 "'--label-smoothing'" 'requires an argument' :: train 2-8-3 --label-smoothing
expect 2 '--optimizer' 'sgd, adam or adamw' :: train 2-8-3 --optimizer rmsprop
expect 2 '--schedule' 'constant, step, exp or cosine' :: train 2-8-3 --schedule linear
expect 2 '--schedule step' '--step-size' :: train 2-8-3 --schedule step
expect 2 '--order' 'shuffle, sequential or stratified' :: train 2-8-3 --order random
expect 2 '--normalize' 'none, feature, channel or global' :: train 2-8-3 --normalize minmax
expect 2 '--init-scheme' 'kaiming' :: train 2-8-3 --init-scheme he
expect 2 '--format' 'csv or json' :: predict m.safetensors --format xml
expect 2 'limit' "'-1'" :: predict m.safetensors --limit -1
expect 2 'batch' "'0'" :: info 2-8-3 --batch 0
expect 2 'batch' "'x'" :: gradcheck 2-8-3 --batch x
expect 2 'seed' "'-1'" :: gradcheck 2-8-3 --seed -1
echo "ok: usage errors (unknown command and options, missing arguments, bad numbers and choices) exit 2 naming the option"

# ---- model descriptions -------------------------------------------------------------------
printf 'x = input(2)\nh = linear(x 8)\n' > syntax.nb
printf 'x = input(2)\nh = linear(x, 8)\nr = relu(h\n' > paren.nb
printf 'x = input(2)\nh = linear(x, 8)\nr = relu(hidden)\n' > undefined.nb
printf 'x = input(2)\na = linear(x, 8)\nb = linear(x, 4)\nc = add(a, b)\nout = linear(c, 3)\n' > shape.nb
printf 'x = input(2)\nh = softplus(x)\n' > module.nb
printf 'x = input(2)\nh = linear(x, 3)\nh = relu(h)\n' > twice.nb
printf 'x = input(2)\nh = linear(x, zero)\n' > width.nb
printf 'x = input(2)\nh = reshape(x, 3)\n' > reshape.nb
printf 'x = input(2)\nh = dropout(x, 1.5)\n' > dropout.nb
printf '# only a comment\n' > noinput.nb
printf 'x = input(2)\0\n' > binary.nb
: > empty.nb
printf 'x = input(3, 8, 8)\nc = conv2d(x, 4, 3, groups=2)\n' > groups.nb
printf 'x = input(1, 8, 8)\nc = conv2d(x, 4, 3, stride=0)\n' > stride.nb
printf 'x = input(1, 8, 8)\nc = conv2d(x, 4, 99999)\n' > kernel.nb
printf 'x = input(1, 32768, 32768)\nc = conv2d(x, 1073741824, 1)\n' > huge.nb
printf 'x = input(1, 8, 8)\np = max_pool2d(x, 2, padding=2)\n' > pool.nb
printf 'x = input(4)\nh = leaky_relu(x, slope=nan)\n' > slope.nb
printf 'x = input(4)\nh = leaky_relu(x, 0.1, 0.2)\n' > slopes.nb
printf 'x = input(3, 4)\nh = layer_norm(x, dims=3)\n' > lndims.nb
printf 'x = input(4)\nh = layer_norm(x, eps=-1)\n' > lneps.nb
printf 'x = input(4)\ny = labels()\nl = cross_entropy(x, y, label_smoothing=1)\n' > lsmooth.nb
for cmd in "train --data spirals -q -o x.safetensors" info gradcheck; do
    # shellcheck disable=SC2086 # the command is a subcommand and options
    set -- $cmd
    expect 1 'syntax\.nb:2:[0-9]+:' "expected ',' or '\)'" :: "$@" syntax.nb
    expect 1 'paren\.nb:3:[0-9]+:' :: "$@" paren.nb
    expect 1 'undefined\.nb:3:[0-9]+:' "'hidden'" 'not a node defined' :: "$@" undefined.nb
    expect 1 'shape\.nb:4:[0-9]+:' "'a'" '\[N,8\]' "'b'" '\[N,4\]' :: "$@" shape.nb
    expect 1 'module\.nb:2:[0-9]+:' "softplus" 'known: ' :: "$@" module.nb
    expect 1 'twice\.nb:3:[0-9]+:' "'h' is already defined" :: "$@" twice.nb
    expect 1 'width\.nb:2:[0-9]+:' "'zero'" 'integer' :: "$@" width.nb
    expect 1 'reshape\.nb:2:[0-9]+:' '\[N,2\]' '\[3\]' :: "$@" reshape.nb
    expect 1 'dropout\.nb:2:[0-9]+:' '1\.5' :: "$@" dropout.nb
    expect 1 'noinput\.nb' 'no input' :: "$@" noinput.nb
    expect 1 'empty\.nb' 'no input' :: "$@" empty.nb
    expect 1 'binary\.nb' 'NUL' :: "$@" binary.nb
    expect 1 'missing\.nb' 'No such file' :: "$@" missing.nb
    expect 1 '2-8-3:softplus' 'relu, tanh or sigmoid' :: "$@" 2-8-3:softplus
    expect 1 '2-0-3' 'layer 2' :: "$@" 2-0-3
    expect 1 'groups\.nb:2:[0-9]+:' 'groups = 2 must divide' :: "$@" groups.nb
    expect 1 'stride\.nb:2:[0-9]+:' 'stride 0' :: "$@" stride.nb
    expect 1 'kernel\.nb:2:[0-9]+:' 'out of range|window spans' :: "$@" kernel.nb
    expect 1 'huge\.nb:2:[0-9]+:' '2\^30' :: "$@" huge.nb
    expect 1 'pool\.nb:2:[0-9]+:' 'more than half' :: "$@" pool.nb
    expect 1 'slope\.nb:2:[0-9]+:' 'slope: expected a finite number' :: "$@" slope.nb
    expect 1 'slopes\.nb:2:[0-9]+:' 'too many arguments' :: "$@" slopes.nb
    expect 1 'lndims\.nb:2:[0-9]+:' 'dims=3' 'expected 1 to 2' :: "$@" lndims.nb
    expect 1 'lneps\.nb:2:[0-9]+:' 'eps -1, expected a finite eps > 0' :: "$@" lneps.nb
    expect 1 'lsmooth\.nb:3:[0-9]+:' "label_smoothing: expected a number 0 <= F < 1, found '1'" :: "$@" lsmooth.nb
done
echo "ok: description errors give file:line:col and what was expected (train, info, gradcheck)"

# ---- data ---------------------------------------------------------------------------------
printf 'a,b,label\n0.5,1,0\n1,x,1\n' > badnumber.csv
printf 'a,b,label\n0.5,1,0\n1,2\n' > shortrow.csv
printf 'a,b,label\n0.5,1,0\n1,2,1.5\n' > badlabel.csv
printf 'a,b,label\n' > header.csv
printf 'a,b,label\n0.5,1,0\n1,2,1\n' > good.csv
printf 'a,b,c,label\n0.5,1,2,0\n1,2,3,1\n' > wide.csv
expect 1 'badnumber\.csv' 'line 3' '"x"' 'number' :: train 2-8-3 --data csv:badnumber.csv:label -o x.safetensors
expect 1 'shortrow\.csv' 'line 3' '3 fields' :: train 2-8-3 --data csv:shortrow.csv:label -o x.safetensors
expect 1 'badlabel\.csv' 'line 3' '"1\.5"' 'class label' 'class name' '--loss mse' :: train 2-8-3 --data csv:badlabel.csv:label -o x.safetensors
expect 1 'header\.csv' 'no data rows' :: train 2-8-3 --data csv:header.csv:label -o x.safetensors
expect 1 'good\.csv' '"klass"' :: train 2-8-3 --data csv:good.csv:klass -o x.safetensors
expect 1 '/nonexistent/data\.csv' :: train 2-8-3 --data csv:/nonexistent/data.csv:label -o x.safetensors
expect 1 '/nonexistent/images' :: train 2-8-3 --data idx:/nonexistent/images,/nonexistent/labels -o x.safetensors
expect 1 "unknown data set 'mnist'" 'spirals' :: train 2-8-3 --data mnist -o x.safetensors
expect 1 'spirals:abc' :: train 2-8-3 --data spirals:abc -o x.safetensors
expect 1 'spirals:0' :: train 2-8-3 --data spirals:0 -o x.safetensors
expect 1 "/nonexistent/val\.csv" :: train 2-8-3 --data spirals --val csv:/nonexistent/val.csv:label -o x.safetensors
expect 1 "/nonexistent/test\.csv" :: train 2-8-3 --data spirals --test csv:/nonexistent/test.csv:label -o x.safetensors
# a shorthand for another input width names both sizes
expect 1 '2 features' "784" :: train 784-16-10 --data spirals -o x.safetensors
expect 1 '3 features' "'x' expects 2" :: train 2-8-3 --data csv:wide.csv:label -o x.safetensors
# no label column named: say how to name one
expect 1 'csv:good\.csv has no label column' 'csv:good\.csv:COLUMN' :: train 3-8-3 --data csv:good.csv -o x.safetensors
# labels beyond the model's classes
expect 1 'label 3' '3 classes' :: train 2-8-3 --data spirals:10:4 -o x.safetensors
[ ! -e x.safetensors ] || fail "no model file written by failed runs" "$(ls -l x.safetensors*)"
echo "ok: data errors name the file, line and field, or both sizes"

# ---- model files --------------------------------------------------------------------------
"$NABLA" train 2-16-3 --data spirals:50 --epochs 2 -q -o m.safetensors || fail "training the model for the file tests"
size=$(stat -c %s m.safetensors)
for n in 0 4 8 100 $((size / 2)) $((size - 1)); do
    head -c "$n" m.safetensors > "trunc$n.safetensors"
    expect 1 "trunc$n\.safetensors" :: eval "trunc$n.safetensors" --data spirals
    expect 1 "trunc$n\.safetensors" :: predict "trunc$n.safetensors" --data spirals
    expect 1 "trunc$n\.safetensors" :: info "trunc$n.safetensors"
done
"$PY" - m.safetensors <<'EOF'
import json, random, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]

def write(path, h, d=data):
    text = json.dumps(h, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + d)

random.seed(3)
open("garbage.safetensors", "wb").write(bytes(random.randrange(256) for _ in range(4096)))
open("text.safetensors", "w").write("this is not a model\n" * 10)
h = dict(header); h["fc9.weight"] = h.pop("fc1.weight"); write("renamed.safetensors", h)
h = dict(header); h["extra"] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
write("extra.safetensors", h, data + b"\0\0\0\0")
h = json.loads(json.dumps(header)); h["__metadata__"]["nabla.description"] = "2-16-4"; write("arch.safetensors", h)
h = json.loads(json.dumps(header)); del h["__metadata__"]["nabla.description"]; write("bare.safetensors", h)
h = json.loads(json.dumps(header)); h["__metadata__"]["nabla.norm"] = "{\"mode\": \"feature\"}"; write("norm.safetensors", h)
h = json.loads(json.dumps(header)); h["fc1.bias"]["dtype"] = "F64"; write("dtype.safetensors", h)
h = json.loads(json.dumps(header)); h["fc2.bias"]["data_offsets"][1] += 4; write("offsets.safetensors", h)
EOF
for cmd in eval predict; do
    expect 1 'garbage\.safetensors' :: $cmd garbage.safetensors --data spirals
    expect 1 'text\.safetensors' :: $cmd text.safetensors --data spirals
    expect 1 'renamed\.safetensors' "fc1\.weight|fc9\.weight" :: $cmd renamed.safetensors --data spirals
    expect 1 'extra\.safetensors' "'extra'" :: $cmd extra.safetensors --data spirals
    expect 1 'arch\.safetensors' 'fc2' :: $cmd arch.safetensors --data spirals
    expect 1 'bare\.safetensors' 'nabla\.description' :: $cmd bare.safetensors --data spirals
    expect 1 'norm\.safetensors' 'nabla\.norm' :: $cmd norm.safetensors --data spirals
    expect 1 'dtype\.safetensors' 'fc1\.bias' :: $cmd dtype.safetensors --data spirals
    expect 1 'offsets\.safetensors' 'fc2\.bias' :: $cmd offsets.safetensors --data spirals
    expect 1 'missing\.safetensors' :: $cmd missing.safetensors --data spirals
    expect 1 '3 features' 'expects 2' :: $cmd m.safetensors --data csv:wide.csv:label
done
expect 1 'csv:good\.csv has no label column' 'csv:good\.csv:COLUMN' :: eval m.safetensors --data csv:good.csv
expect 1 'label 3' '3 classes' :: eval m.safetensors --data spirals:10:4
expect 1 'renamed\.safetensors' 'fc1\.weight' :: train 2-16-3 --data spirals --init renamed.safetensors -o x.safetensors
expect 1 'garbage\.safetensors' :: train 2-16-3 --data spirals --init garbage.safetensors -o x.safetensors
expect 1 'm\.safetensors' 'fc1\.weight' '\[8,2\]' :: train 2-8-3 --data spirals --init m.safetensors -o x.safetensors
expect 1 'trunc100\.safetensors' :: train trunc100.safetensors --data spirals -o x.safetensors
[ ! -e x.safetensors ] || fail "no model file written by failed runs" "$(ls -l x.safetensors*)"
echo "ok: truncated, garbage and inconsistent model files are refused, naming the file and tensor"

# ---- regression and class names -------------------------------------------------------------
printf 'a,b,y,z\n0.5,1,2.5,3\n1,2,3.5,-1\n2,1,0.25,4\n' > reg.csv
printf 'a,b,y\n0.5,1,2\n1,2,five\n' > regtext.csv
printf 'a,b,animal\n0.5,1,cat\n1,2,dog\n' > pets.csv
printf 'a,b,animal\n0.5,1,cat\n1,2,cow\n' > cow.csv
printf 'x = input(2)\nz = linear(x, 3)\ny = labels()\nl = cross_entropy(z, y)\n' > ce.nb
"$NABLA" train 2-2 --loss mse --data csv:reg.csv:y,z --epochs 1 -q -o reg.safetensors ||
    fail "training the regression model for the error tests"
"$NABLA" train 2-2 --data csv:pets.csv:animal --epochs 1 -q -o pets.safetensors ||
    fail "training the named-class model for the error tests"
expect 2 '--loss' 'cross-entropy or mse' :: train 2-1 --loss hinge --data csv:reg.csv:y
expect 2 '--normalize-targets' 'standard or none' :: train 2-1 --loss mse --normalize-targets minmax
expect 2 '--top-k' 'integer from 1' "'0'" :: eval reg.safetensors --top-k 0
expect 2 '--top-k' "'abc'" :: eval m.safetensors --top-k abc
expect 2 '--top-k' 'eval option' :: predict m.safetensors --top-k 2
expect 2 '--tta' 'flip or none' "'mirror'" :: eval m.safetensors --tta mirror
expect 2 '--tta' 'requires an argument' :: predict m.safetensors --tta
expect 1 'test-time augmentation' 'classifier' :: eval reg.safetensors --tta flip --data csv:reg.csv:y,z
expect 1 'csv:reg\.csv:y,z' '2 targets' 'predicts 1' :: train 2-1 --loss mse --data csv:reg.csv:y,z -o x.safetensors
expect 1 'reg\.csv' 'no column named "w"' '"a", "b", "y", "z"' :: train 2-2 --loss mse --data csv:reg.csv:y,w -o x.safetensors
expect 1 'reg\.csv' 'named twice' :: train 2-2 --loss mse --data csv:reg.csv:y,y -o x.safetensors
expect 1 'csv:reg\.csv has no target' 'csv:reg\.csv:COLUMN\[,COLUMN' :: train 4-1 --loss mse --data csv:reg.csv -o x.safetensors
expect 1 'regtext\.csv' 'line 3' '"five"' 'regression target' :: train 2-1 --loss mse --data csv:regtext.csv:y -o x.safetensors
expect 1 'spirals has no target' 'csv:FILE:COLUMN' :: train 2-1 --loss mse --data spirals -o x.safetensors
expect 1 'reg\.csv' 'one column' '--loss mse' :: train 2-8-2 --data csv:reg.csv:y,z -o x.safetensors
expect 1 'reg\.csv' 'line 2' '"2\.5"' 'class label' '--loss mse' :: train 3-8-3 --data csv:reg.csv:y -o x.safetensors
expect 1 'ce\.nb' 'cross_entropy' 'mse' :: train ce.nb --loss mse --data csv:reg.csv:y -o x.safetensors
expect 1 '--loss cross-entropy' 'reg\.safetensors is a regression model' :: train reg.safetensors --loss cross-entropy --data csv:reg.csv:y,z -o x.safetensors
expect 1 '--loss mse' 'm\.safetensors is a classification model' :: train m.safetensors --loss mse --data spirals -o x.safetensors
printf 'x = input(2)\nz = linear(x, 3)\np = log_softmax(z)\n' > logsm.nb
expect 1 'label smoothing applies to a cross-entropy loss' 'loss is nll' 'log_softmax' :: train logsm.nb --data spirals --label-smoothing 0.1 -o x.safetensors
expect 1 'label smoothing applies to a cross-entropy loss' 'loss is mse' 'regression' :: train 2-2 --loss mse --data csv:reg.csv:y,z --label-smoothing 0.1 -o x.safetensors
expect 1 '--keep-metric accuracy' 'no accuracy' :: train 2-2 --loss mse --data csv:reg.csv:y,z --val-split 0.34 --keep best --keep-metric accuracy -o x.safetensors
expect 1 'csv:reg\.csv has no target' :: eval reg.safetensors --data csv:reg.csv
expect 1 'spirals has no target' :: eval reg.safetensors --data spirals
expect 1 'cow\.csv' 'line 3' '"cow"' '"cat", "dog"' :: eval pets.safetensors --data csv:cow.csv:animal
expect 1 'pets\.csv' 'class names' 'model has none' :: eval m.safetensors --data csv:pets.csv:animal
expect 1 'cow\.csv' 'line 3' '"cow"' :: train 2-2 --data csv:pets.csv:animal --val csv:cow.csv:animal -o x.safetensors
"$PY" - reg.safetensors <<'EOF2'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<Q", raw[:8])
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
def write(path, h):
    text = json.dumps(h, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + data)
h = json.loads(json.dumps(header)); h["__metadata__"]["nabla.loss"] = "hinge"; write("loss.safetensors", h)
h = json.loads(json.dumps(header)); h["__metadata__"]["nabla.target_norm"] = "{\"mode\": \"feature\", \"eps\": 0, \"mean\": [1], \"std\": [1]}"; write("tnorm.safetensors", h)
h = json.loads(json.dumps(header)); h["__metadata__"]["nabla.target_norm"] = "{\"mode\": \"feature\", \"eps\": 0, \"mean\": [1, 2], \"std\": [1, 0]}"; write("tstd.safetensors", h)
h = json.loads(json.dumps(header)); del h["__metadata__"]["nabla.loss"]; write("noloss.safetensors", h)
EOF2
expect 1 'loss\.safetensors' "'nabla\.loss'" '"hinge"' 'mse' :: eval loss.safetensors --data csv:reg.csv:y,z
expect 1 'tnorm\.safetensors' "'nabla\.target_norm'" '2 features' :: predict tnorm.safetensors --data csv:reg.csv:y,z
expect 1 'tstd\.safetensors' "'nabla\.target_norm' entry 1" :: eval tstd.safetensors --data csv:reg.csv:y,z
expect 1 'noloss\.safetensors' 'not a regression model' :: eval noloss.safetensors --data csv:reg.csv:y,z
[ ! -e x.safetensors ] || fail "no model file written by failed runs" "$(ls -l x.safetensors*)"
echo "ok: regression targets, class names and their model metadata: errors name the file, line, value or option"

# ---- the environment ----------------------------------------------------------------------
NABLA_GEMM=bogus expect 1 "'bogus'" 'portable' :: train 2-8-3 --data spirals -o x.safetensors
expect 1 "'bogus'" 'portable' :: predict m.safetensors --data spirals --gemm bogus
echo "ok: an unknown gemm backend is named"

# ---- options given without a message --------------------------------------------------------
expect 2 'eps' "'0'" :: gradcheck 2-8-3 --eps 0
expect 2 'tol' "'-1'" :: gradcheck 2-8-3 --tol -1
echo "ok: gradcheck --eps/--tol out of range are explained"

echo "cli_errors: all $cases error cases passed"
