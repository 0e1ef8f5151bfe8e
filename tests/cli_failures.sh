#!/usr/bin/env bash
# No failure reported as success (issue 12): every file nabla cannot write is an error that
# names the file and the cause, and keeps the previous file; options and data sets are
# checked before the first step; conflicting options are refused, suspicious ones noted.
#   - a checkpoint that cannot be written mid-run stops training with status 1 (never as if
#     finished), the model file left as it was; --checkpoint none turns checkpoints off;
#   - --val-split with --val, an empty -o/--checkpoint, --lr < 0 are refused; --lr 0 and
#     --resume with other hyper-parameters than the checkpoint's are noted;
#   - a test set that does not fit the model is refused before the first epoch;
#   - a classifier ending in softmax is refused for cross-entropy, naming the fix;
#   - results that cannot reach standard output (/dev/full) fail the command;
#   - an output another nabla process is writing (advisory lock), or that is an input or
#     another output, is refused;
#   - fault injection (below): every write-side call of a save failed in turn.
#
# Run from the repository root: bash tests/cli_failures.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
cli_enter_scratch failures kill_runs
[ -x "$NABLA" ] || fail "an executable CLI at $NABLA (run make)"

S=(--data spirals:100:3:0.2 --threads 1 -q)

# ---- a checkpoint that cannot be written stops the run as a failure ------------------------
run train 2-16-3 "${S[@]}" --epochs 2 -o good.safetensors --checkpoint none
[ ! -e good.safetensors.ckpt ] && [ ! -e none ] || fail "--checkpoint none writes no checkpoint" "$(ls)"
cp good.safetensors before.safetensors
mkdir sub
# a run of many short epochs; its checkpoint's directory disappears after the first epoch
"$NABLA" train 2-16-3 --data spirals:3000:3:0.2 --threads 1 --batch 1 --epochs 1000 \
    -o good.safetensors --checkpoint sub/c.ckpt >out.txt 2>err.txt &
pid=$!
pids+=("$pid")
for _ in $(seq 300); do [ -e sub/c.ckpt ] && break; sleep 0.05; done
[ -e sub/c.ckpt ] || fail "a first checkpoint within 15 s" "$(cat err.txt)"
rm -rf sub
rc=0
wait "$pid" || rc=$?
pids=()
[ "$rc" -eq 1 ] || fail "a checkpoint's directory removed mid-run: exit status 1" "exit $rc: $(tail -n 3 err.txt)"
grep -qE 'sub/c\.ckpt: .*No such file or directory.*stopped at the end of epoch [0-9]+ of 1000.*good\.safetensors left as it was' err.txt ||
    fail "the message names the checkpoint, the cause, the epoch and the model left as it was" "$(tail -n 3 err.txt)"
! grep -q '^saved' err.txt || fail "no 'saved' line after a failed checkpoint" "$(tail -n 3 err.txt)"
cmp -s good.safetensors before.safetensors || fail "the model file left as it was"
ok "a checkpoint that cannot be written mid-run: exit 1, '$(tail -n 1 err.txt | cut -c1-90)...'"

# ---- options refused or noted before any training ------------------------------------------
expect_fail 2 "--checkpoint: expected a file name, or 'none'" :: train 2-16-3 "${S[@]}" --checkpoint ''
expect_fail 2 '-o: expected a file name' :: train 2-16-3 "${S[@]}" -o ''
expect_fail 2 '--resume needs a checkpoint' :: train 2-16-3 "${S[@]}" --checkpoint none --resume
expect_fail 2 '--val-split and --val' :: train 2-16-3 "${S[@]}" --val-split 0.2 --val spirals:10
expect_fail 2 '--lr: expected a finite rate >= 0' :: train 2-16-3 "${S[@]}" --lr -0.1
expect_fail 1 '--val-split 0.999 .*300 samples leaves no training samples' :: \
    train 2-16-3 "${S[@]}" --val-split 0.999
run train 2-16-3 "${S[@]}" --epochs 1 --lr 0 -o lr0.safetensors
grep -q 'note: --lr 0: the weights will not change' err.txt || fail "--lr 0: a one-line note" "$(cat err.txt)"
run train 2-16-3 "${S[@]}" --epochs 1 -o r.safetensors
run train 2-16-3 "${S[@]}" --epochs 2 -o r.safetensors --resume --lr 0.05 --batch 64
[ "$(grep -c 'note: --resume with other settings' err.txt)" -eq 1 ] &&
    grep -q 'batch 64 (the checkpoint.s: 128), lr 0.05 (the checkpoint.s: 0.1)' err.txt ||
    fail "--resume with another --lr and --batch: a one-line note naming both" "$(cat err.txt)"
run train 2-16-3 "${S[@]}" --epochs 3 -o r.safetensors --resume --lr 0.05 --batch 64
! grep -q 'note:' err.txt || fail "--resume with the checkpoint's settings: no note" "$(cat err.txt)"
ok "refused: empty -o/--checkpoint, --resume without checkpoints, --val-split with --val, --lr < 0, an empty training split; noted: --lr 0, --resume with other settings"

# ---- data sets checked before the first step -----------------------------------------------
expect_fail 1 'spirals:10:4: sample [0-9]+ has label 3, the model has 3 classes' :: \
    train 2-16-3 "${S[@]}" --epochs 1 --test spirals:10:4
! grep -q '^epoch' err.txt || fail "--test checked before training" "$(cat err.txt)"
printf 'a,b,c\n1,2,3\n' > three.csv
expect_fail 1 'csv:three\.csv:c: sample 0 has label 3' :: train 2-16-3 "${S[@]}" --epochs 1 --val csv:three.csv:c
ok "a test or validation set that does not fit the model is refused before the first epoch"

# ---- a classifier that already ends in softmax ---------------------------------------------
printf 'x = input(2)\nh = linear(x, 8)\na = relu(h)\nz = linear(a, 3)\np = softmax(z)\n' > sm.nb
expect_fail 1 "output 'p' is a softmax.*cross-entropy.*remove the softmax.*log_softmax followed by nll" :: \
    train sm.nb "${S[@]}" --epochs 1
printf 'x = input(2)\nh = linear(x, 8)\na = relu(h)\nz = linear(a, 3)\np = log_softmax(z)\n' > lsm.nb
run train lsm.nb "${S[@]}" --epochs 1 -o lsm.safetensors
ok "a softmax output is refused for cross-entropy training, naming the fix (log_softmax trains)"

# ---- results that cannot be written to standard output --------------------------------------
rc=0
"$NABLA" predict good.safetensors --data spirals:10 >/dev/full 2>err.txt || rc=$?
[ "$rc" -eq 1 ] && grep -q 'standard output failed: No space left on device' err.txt ||
    fail "predict > /dev/full: exit 1 naming standard output and the cause" "exit $rc: $(cat err.txt)"
ok "predictions that cannot be written (/dev/full) fail the command"

# ---- outputs: another nabla process writing them, an output that is an input ---------------
"$NABLA" train 2-16-3 --data spirals:20000:3:0.2 --threads 1 --batch 4 --epochs 50 -q \
    -o busy.safetensors --log busy.csv >/dev/null 2>busy.err &
pid=$!
pids+=("$pid")
for _ in $(seq 300); do [ -e busy.safetensors.ckpt ] && break; sleep 0.05; done
[ -e busy.safetensors.ckpt ] || fail "a first checkpoint of the busy run within 15 s" "$(cat busy.err)"
expect_fail 1 '-o busy\.safetensors: another nabla process is writing it' :: \
    train 2-16-3 "${S[@]}" --epochs 1 -o busy.safetensors --checkpoint none
expect_fail 1 '--checkpoint busy\.safetensors\.ckpt: another nabla process is writing it' :: \
    train 2-16-3 "${S[@]}" --epochs 1 -o mine.safetensors --checkpoint busy.safetensors.ckpt
expect_fail 1 '--log ./busy\.csv: another nabla process is writing it' :: \
    train 2-16-3 "${S[@]}" --epochs 1 -o mine.safetensors --log ./busy.csv
[ ! -e mine.safetensors ] || fail "a refused run writes no model"
kill -TERM "$pid"
wait "$pid" || true
pids=()
[ ! -e busy.safetensors.lock ] || fail "the lock file removed when its run ends" "$(ls)"
run train 2-16-3 "${S[@]}" --epochs 1 -o busy.safetensors --checkpoint none
expect_fail 1 '-o good\.safetensors is also an input of this run' :: \
    train good.safetensors "${S[@]}" --epochs 1 -o good.safetensors
expect_fail 1 '-o x\.safetensors is also an input of this run' :: \
    train 2-16-3 "${S[@]}" --epochs 1 -o x.safetensors --init ./x.safetensors
expect_fail 1 '--log three\.csv is also an input' :: \
    train 2-3 --data csv:three.csv:c --epochs 1 -q -o x.safetensors --log three.csv
expect_fail 1 '-o x\.safetensors and --checkpoint \./x\.safetensors are the same file' :: \
    train 2-16-3 "${S[@]}" --epochs 1 -o x.safetensors --checkpoint ./x.safetensors
cmp -s good.safetensors before.safetensors || fail "the refused runs left good.safetensors as it was"
ok "outputs another nabla process is writing, outputs that are inputs or each other: refused, naming them"

# ---- fault injection: every write-side call of a save, failed in turn ----------------------
# tests/shim_failio.c, preloaded, counts the calls by which nabla writes files (open for
# writing, mkstemp, fchmod, write, fflush, fsync, close, rename) and fails the k-th with ENOSPC
# (odd k) or EIO (even k). For every k: exit status 1, a message naming a file and the cause,
# every file either the previous version or the complete new one (bit for bit), the file being
# written when the fault struck the previous one, no temporary file left, every file loadable.
SHIM=$ROOT/${NABLA_BUILD:-build}/tests/failio.so
if [ ! -f "$SHIM" ]; then  # e.g. the sanitizer build: the shim needs no sanitizer of its own
    SHIM=$tmp/failio.so
    cc -O1 -std=c11 -fPIC -shared "$ROOT/tests/shim_failio.c" -o "$SHIM" -ldl ||
        fail "building the fault-injection shim tests/shim_failio.c"
fi
PRELOAD=$SHIM
# a sanitizer runtime must come first among preloaded libraries
asan=$(ldd "$NABLA" | awk '/libasan/ { print $3 }')
[ -z "$asan" ] || PRELOAD=$asan:$SHIM
PLOT=()
probe=$("$NABLA" train 2-3 --data spirals:5 --plot p.png --epochs 0 -q 2>&1 || true)
case $probe in *unavailable*) echo "(nabla built without cairo: no pictures in the fault injection)" ;;
*) PLOT=(--plot m.png) ;; esac
injected=0 handled=0
# inject NAME FILES... :: ARGS: nabla ARGS writes FILES (the first ones compared bit for bit);
# old/ holds their previous versions, new/ what an undisturbed run writes.
inject() {
    local name=$1 files=() f
    shift
    while [ "$1" != "::" ]; do files+=("$1"); shift; done
    shift
    rm -f trace.txt
    for f in "${files[@]}"; do cp "old/$f" .; done
    NABLA_FAILIO_TRACE=$PWD/trace.txt LD_PRELOAD=$PRELOAD "$NABLA" "$@" >/dev/null 2>err.txt ||
        fail "$name: the counting run to succeed" "$(cat err.txt)"
    local calls; calls=$(wc -l < trace.txt)
    [ "$calls" -ge 10 ] || fail "$name: at least 10 write-side calls counted" "$(cat trace.txt)"
    cp trace.txt "trace-$name.txt"
    local k
    for k in $(seq 1 "$calls"); do
        local errno=ENOSPC text='No space left on device' rc=0
        [ $((k % 2)) -eq 0 ] && errno=EIO text='Input/output error'
        for f in "${files[@]}"; do cp "old/$f" .; done
        local call; call=$(sed -n "${k}p" "trace-$name.txt")
        NABLA_FAILIO_AT=$k NABLA_FAILIO_ERRNO=$errno LD_PRELOAD=$PRELOAD "$NABLA" "$@" >out.txt 2>err.txt || rc=$?
        local what="$name, fault $k of $calls ($call: $errno)"
        injected=$((injected + 1))
        [ "$rc" -eq 1 ] || fail "$what: exit status 1" "exit $rc: $(cat err.txt)"
        grep -qF "$text" err.txt || fail "$what: the cause in the message" "$(cat err.txt)"
        local named=0
        for f in "${files[@]}"; do grep -qF "$f" err.txt && named=1; done
        [ $named -eq 1 ] || fail "$what: the message names the file" "$(cat err.txt)"
        ! grep -qE '\bnb_[a-z_]+' err.txt && sanitizer_clean err.txt || fail "$what: a clean message" "$(cat err.txt)"
        # the final name of the file the faulted call wrote (a directory: its rename is done)
        local target; target=$(echo "$call" | awk '{ print $3 }' | sed -E 's/\.(tmp|probe)\.[A-Za-z0-9]{6}$//; s/\.(tmp|probe)\.XXXXXX$//')
        target=${target##*/}
        for f in "${files[@]}"; do
            case $f in m.csv) continue ;; esac  # the log grows line by line: not replaced whole
            if cmp -s "$f" "old/$f"; then :
            elif cmp -s "$f" "new/$f"; then
                [ "$f" != "$target" ] || fail "$what: $f, being written, left as it was"
            else fail "$what: $f either the previous or the complete new version" "$(ls -l)"
            fi
            case $f in *.safetensors | *.ckpt)
                "$NABLA" info "$f" >/dev/null 2>info.txt || fail "$what: $f loads" "$(cat info.txt)" ;;
            esac
        done
        ! ls | grep -qE '\.(tmp|probe)\.' || fail "$what: no temporary file left" "$(ls)"
        handled=$((handled + 1))
    done
    ok "$name: $calls write-side calls, each failed in turn: exit 1, message, previous files kept"
}
mkdir old new
# previous versions: another seed; new versions: this seed, undisturbed
T=(train 2-16-3 --data spirals:50:3:0.2 --epochs 1 --threads 1 -q -o m.safetensors --log m.csv "${PLOT[@]}")
run "${T[@]}" --seed 2
cp m.safetensors m.safetensors.ckpt m.csv old/
[ ${#PLOT[@]} -eq 0 ] || cp m.png old/
rm -f m.*
run "${T[@]}"
cp m.safetensors m.safetensors.ckpt m.csv new/
[ ${#PLOT[@]} -eq 0 ] || cp m.png new/
FILES=(m.safetensors m.safetensors.ckpt m.csv)
[ ${#PLOT[@]} -eq 0 ] || FILES+=(m.png)
inject train "${FILES[@]}" :: "${T[@]}"
if [ ${#PLOT[@]} -gt 0 ]; then
    cp old/m.safetensors model.safetensors
    R=(plot-regions model.safetensors --data spirals:50:3:0.2 --size 64 -o r.png --pixels r.csv)
    run "${R[@]}"
    cp r.png r.csv old/
    "$NABLA" train 2-16-3 --data spirals:50:3:0.2 --epochs 3 --threads 1 -q -o model.safetensors --checkpoint none
    run "${R[@]}"
    cp r.png r.csv new/
    rm -f r.png r.csv
    inject plot-regions r.png r.csv :: "${R[@]}"
fi
echo "fault injection: $injected faults injected, $handled handled"

echo "cli_failures: all passed"
