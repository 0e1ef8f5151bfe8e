#!/usr/bin/env bash
# No failure reported as success (issue 12): every file nabla cannot write is an error that
# names the file and the cause, and keeps the previous file; options and data sets are
# checked before the first step; conflicting options are refused, suspicious ones noted.
#   - a checkpoint that cannot be written mid-run stops training with status 1 (never as if
#     finished), the model file left as it was; --checkpoint none turns checkpoints off;
#   - --val-split with --val, an empty -o/--checkpoint, --lr < 0 are refused; --lr 0 noted;
#   - a test set that does not fit the model is refused before the first epoch;
#   - a classifier ending in softmax is refused for cross-entropy, naming the fix;
#   - results that cannot reach standard output (/dev/full) fail the command;
#
# Run from the repository root: bash tests/cli_failures.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"
pids=()
kill_runs() {
    local p
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
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
grep -qE 'sub/c\.ckpt: .*No such file or directory.*stopped after epoch [0-9]+ of 1000.*good\.safetensors left as it was' err.txt ||
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
ok "refused: empty -o/--checkpoint, --resume without checkpoints, --val-split with --val, --lr < 0, an empty training split; noted: --lr 0"

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

echo "cli_failures: all passed"
