#!/usr/bin/env bash
# `nabla train --keep best`, `--keep-metric`, `--early-stop N`, with --resume and under MPI.
#
# The run: a 2-64-64-3 ReLU net on 120 noisy spirals with a large step (lr 0.2, batches of 8),
# validated on another draw of the spirals. Its validation loss is lowest at epoch 7 and
# wanders above that while the training loss keeps falling, so the last epoch is not the best:
#   - --keep best saves the epoch with the lowest validation loss of the log (and says which);
#     `nabla eval` of the saved model on the validation set gives that epoch's logged loss;
#     --keep last (the default) saves the last epoch, which evaluates worse;
#   - --keep-metric accuracy keeps the first epoch with the highest validation accuracy;
#   - --early-stop N ends at the first epoch N epochs after the best so far (Keras'
#     EarlyStopping(patience=N)), computed here from the full run's log;
#   - a run stopped after some epochs and resumed ends with the same model file, byte for
#     byte, as the uninterrupted run (the best weights and the patience counter are in the
#     checkpoint); resuming after an early stop trains no further;
#   - under mpirun -np 2 the kept model is the best epoch of that run's log, the ranks agree
#     on when to stop, and a run stopped and resumed on 2 ranks ends with the same file;
#   - bad options and mismatched checkpoints are refused with messages naming them.
#
# Run from the repository root: bash tests/cli_keep_best.sh. $NABLA is the CLI (default
# $NABLA_BUILD/nabla, NABLA_BUILD defaulting to build). Exits non-zero on the first failure.
set -euo pipefail

. "$(dirname "$0")/lib_cli.sh"

[ -x "$NABLA" ] || { echo "FAIL: an executable CLI at $NABLA (run make)" >&2; exit 1; }
cli_enter_scratch keep-best

TRAIN_DATA=spirals:40:3:0.6:3
VAL_DATA=spirals:40:3:0.6:4
COMMON=(2-64-64-3 --data "$TRAIN_DATA" --val "$VAL_DATA" --batch 8 --lr 0.2 --threads 1 --seed 2)
EPOCHS=20

# log.csv column (1-based) of a field: epoch,step,lr,train_loss,train_accuracy,val_loss,
# val_accuracy, then seconds and samples/s (which differ between runs)
col_val_loss=6
col_val_acc=7

json_field() {  # FILE KEY
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# best_epoch LOG COLUMN lower|higher: the first epoch with the best value (strictly better
# than every earlier one, as Keras compares).
best_epoch() {
    awk -F, -v c="$2" -v mode="$3" 'NR > 1 {
        v = $c + 0
        if (best == "" || (mode == "lower" && v < best) || (mode == "higher" && v > best)) {
            best = v; at = $1
        }
    } END { print at }' "$1"
}

# stop_epoch LOG PATIENCE: where EarlyStopping(patience) on the validation loss stops.
stop_epoch() {
    awk -F, -v c=$col_val_loss -v p="$2" 'NR > 1 {
        v = $c + 0
        if (best == "" || v < best) { best = v; wait = 0 } else wait++
        if (wait >= p) { print $1; found = 1; exit }
    } END { if (!found) print "none" }' "$1"
}

logged() {  # LOG EPOCH COLUMN
    awk -F, -v e="$2" -v c="$3" 'NR > 1 && $1 == e { print $c }' "$1"
}

eval_loss() {  # MODEL: the validation loss nabla eval computes for it
    run eval "$1" --data "$VAL_DATA" --json --threads 1
    "$PY" -c 'import json,sys; print(json.load(open("out.txt"))["loss"])'
}

close_to() {  # A B: |A − B| ≤ 1e-5·max(1, |B|) (batches of another size sum in another order)
    awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b;
        exit !(d <= 1e-5 * (m > 1 ? m : 1)) }'
}

# ---- --keep best against --keep last -----------------------------------------------------
run train "${COMMON[@]}" --epochs $EPOCHS --keep best -o best.safetensors --log best.csv --json
cp out.txt best.json
best=$(best_epoch best.csv $col_val_loss lower)
last_epoch=$(tail -n 1 best.csv | cut -d, -f1)
[ "$last_epoch" = "$EPOCHS" ] || fail "a $EPOCHS-epoch log" "$(cat best.csv)"
[ "$best" -lt $((EPOCHS - 2)) ] ||
    fail "a run whose validation loss peaks well before its last epoch (the test's premise)" \
        "$(cat best.csv)"
[ "$(json_field best.json best_epoch)" = "$best" ] ||
    fail "--json best_epoch $best (the log's lowest val_loss)" "$(cat best.json)"
[ "$(json_field best.json saved_epoch)" = "$best" ] || fail "saved_epoch $best" "$(cat best.json)"
grep -q "kept epoch $best of $EPOCHS, the best by val loss" err.txt ||
    fail "the run to say which epoch it kept" "$(tail -n 3 err.txt)"
grep -q "^epoch $best/$EPOCHS .*(best)\$" err.txt || fail "epoch $best marked (best)" "$(cat err.txt)"
want=$(logged best.csv "$best" $col_val_loss)
got=$(eval_loss best.safetensors)
close_to "$got" "$want" ||
    fail "the kept model's validation loss to be epoch $best's logged $want" "$got"
ok "--keep best saved epoch $best of $EPOCHS: eval gives val loss $got, the log says $want"

run train "${COMMON[@]}" --epochs $EPOCHS -o last.safetensors --log last.csv
figures() { cut -d, -f1-7 "$1"; }
[ "$(figures best.csv)" = "$(figures last.csv)" ] ||
    fail "--keep to leave training itself unchanged (the same log)"
want_last=$(logged last.csv $EPOCHS $col_val_loss)
got_last=$(eval_loss last.safetensors)
close_to "$got_last" "$want_last" || fail "--keep last to save epoch $EPOCHS ($want_last)" "$got_last"
awk -v a="$got" -v b="$got_last" 'BEGIN { exit !(a < b) }' ||
    fail "the best epoch to evaluate better than the last" "best $got, last $got_last"
ok "--keep last (default) saved epoch $EPOCHS: val loss $got_last > $got"

# ---- --keep-metric accuracy ----------------------------------------------------------------
run train "${COMMON[@]}" --epochs $EPOCHS --keep best --keep-metric accuracy -o acc.safetensors --json
best_acc=$(best_epoch best.csv $col_val_acc higher)
[ "$(json_field out.txt best_epoch)" = "$best_acc" ] ||
    fail "--keep-metric accuracy to keep epoch $best_acc (the log's first highest val_accuracy)" \
        "$(cat out.txt)"
run eval acc.safetensors --data "$VAL_DATA" --json --threads 1
got_acc=$(json_field out.txt accuracy)
want_acc=$(logged best.csv "$best_acc" $col_val_acc)
close_to "$got_acc" "$want_acc" || fail "accuracy $want_acc of epoch $best_acc" "$got_acc"
ok "--keep-metric accuracy kept epoch $best_acc (val accuracy $got_acc)"

# ---- --early-stop N ------------------------------------------------------------------------
patience=4
stop=$(stop_epoch best.csv $patience)
[ "$stop" != none ] && [ "$stop" -lt "$EPOCHS" ] ||
    fail "a full run in which patience $patience runs out before epoch $EPOCHS" "$(cat best.csv)"
run train "${COMMON[@]}" --epochs $EPOCHS --keep best --early-stop $patience -o early.safetensors \
    --log early.csv --json
cp out.txt early.json
[ "$(tail -n 1 early.csv | cut -d, -f1)" = "$stop" ] ||
    fail "--early-stop $patience to end at epoch $stop" "$(cat early.csv)"
[ "$(head -n $((stop + 1)) best.csv | cut -d, -f1-7)" = "$(figures early.csv)" ] ||
    fail "the early-stopped run's epochs to equal the full run's first $stop"
[ "$(json_field early.json stopped_early)" = True ] && [ "$(json_field early.json epochs)" = "$stop" ] ||
    fail "--json stopped_early and epochs $stop" "$(cat early.json)"
grep -q "^early stop: no better validation metric for $patience epochs" err.txt ||
    fail "the run to say why it stopped" "$(tail -n 3 err.txt)"
early_best=$(best_epoch early.csv $col_val_loss lower)
[ "$(json_field early.json best_epoch)" = "$early_best" ] || fail "best epoch $early_best" "$(cat early.json)"
ok "--early-stop $patience stopped at epoch $stop (best $early_best), as Keras' patience would"

# ---- --resume mid-run ----------------------------------------------------------------------
# Stop after an epoch past the best (the patience counter is non-zero), then resume.
cut_at=$((early_best + 2))
[ "$cut_at" -lt "$stop" ] || cut_at=$((stop - 1))
run train "${COMMON[@]}" --epochs "$cut_at" --keep best --early-stop $patience -o resumed.safetensors \
    --log resumed.csv
run train "${COMMON[@]}" --epochs $EPOCHS --keep best --early-stop $patience -o resumed.safetensors \
    --log resumed.csv --resume --json
cmp -s early.safetensors resumed.safetensors ||
    fail "stopping after epoch $cut_at and resuming to give the uninterrupted run's model, byte for byte"
[ "$(figures early.csv)" = "$(figures resumed.csv)" ] || fail "the resumed log to equal the uninterrupted one" "$(cat resumed.csv)"
[ "$(json_field out.txt best_epoch)" = "$early_best" ] || fail "best epoch $early_best after resume" "$(cat out.txt)"
ok "stopped after epoch $cut_at, resumed: same model file and log as the uninterrupted run"

# Resuming the checkpoint of a run that stopped early trains no further.
run train "${COMMON[@]}" --epochs $EPOCHS --keep best --early-stop $patience -o early.safetensors \
    --resume --json
[ "$(json_field out.txt epochs)" = "$stop" ] || fail "no epoch after an early stop" "$(cat out.txt)"
cmp -s early.safetensors resumed.safetensors || fail "the same model after resuming a finished run"
ok "resuming after the early stop trains no further"

# ---- bad options and checkpoints -----------------------------------------------------------
expect_fail 2 "--keep: expected last or best" :: train 2-3 --data spirals --keep first
expect_fail 2 "--keep-metric: expected loss or accuracy" :: train 2-3 --data spirals --keep-metric f1
expect_fail 2 "--early-stop: expected an integer from 1" :: train 2-3 --data spirals --early-stop 0
expect_fail 2 "--keep best needs validation data: add --val-split F or --val SPEC" :: \
    train 2-3 --data spirals --keep best
expect_fail 2 "--early-stop needs validation data" :: train 2-3 --data spirals --early-stop 3
# a checkpoint whose best was chosen by the loss, resumed monitoring the accuracy
run train "${COMMON[@]}" --epochs 2 --keep best -o mixed.safetensors
expect_fail 1 "the checkpoint's best epoch was chosen by val_loss; this run monitors val_accuracy" :: \
    train "${COMMON[@]}" --epochs 4 --keep best --keep-metric accuracy -o mixed.safetensors --resume
# a checkpoint written without --keep best cannot say which epoch was best
run train "${COMMON[@]}" --epochs 2 --early-stop 5 -o nobest.safetensors
expect_fail 1 "holds no best epoch's weights" :: \
    train "${COMMON[@]}" --epochs 4 --keep best -o nobest.safetensors --resume
ok "bad options and mismatched checkpoints refused"

# ---- under MPI -----------------------------------------------------------------------------
if command -v mpirun >/dev/null 2>&1 && ! "$NABLA" train --help | grep -q 'unavailable'; then
    cli_mpirun_setup
    rc=0
    "${MPIRUN[@]}" -np 2 "$NABLA" train "${COMMON[@]}" --epochs $EPOCHS --keep best --early-stop $patience \
        -o mpi.safetensors --log mpi.csv --json >mpi.json 2>err.txt || rc=$?
    [ "$rc" -eq 0 ] || fail "mpirun -np 2 nabla train --keep best --early-stop to succeed" "$(tail -n 20 err.txt)"
    mpi_best=$(best_epoch mpi.csv $col_val_loss lower)
    mpi_stop=$(stop_epoch mpi.csv $patience)
    [ "$(json_field mpi.json best_epoch)" = "$mpi_best" ] ||
        fail "2 ranks: best epoch $mpi_best of their log" "$(cat mpi.json)"
    mpi_epochs=$(json_field mpi.json epochs)
    [ "$mpi_epochs" = "$mpi_stop" ] || { [ "$mpi_stop" = none ] && [ "$mpi_epochs" = $EPOCHS ]; } ||
        fail "2 ranks: early stop at epoch $mpi_stop" "$(cat mpi.json mpi.csv)"
    want=$(logged mpi.csv "$mpi_best" $col_val_loss)
    got=$(eval_loss mpi.safetensors)
    close_to "$got" "$want" || fail "2 ranks: the kept model's val loss $want" "$got"
    ok "mpirun -np 2: kept epoch $mpi_best (val loss $got), ended after epoch $mpi_epochs (early stop: $mpi_stop)"
    # stopped after the best epoch and resumed, still on 2 ranks: the same model file
    mpi_cut=$((mpi_best + 1))
    [ "$mpi_cut" -lt "$mpi_epochs" ] || mpi_cut=$((mpi_epochs - 1))
    for part in "--epochs $mpi_cut" "--epochs $EPOCHS --resume"; do
        # shellcheck disable=SC2086 # $part is two or three words
        "${MPIRUN[@]}" -np 2 "$NABLA" train "${COMMON[@]}" $part --keep best --early-stop $patience \
            -o mpi-resumed.safetensors -q >out.txt 2>err.txt ||
            fail "mpirun -np 2 nabla train $part to succeed" "$(tail -n 20 err.txt)"
    done
    cmp -s mpi.safetensors mpi-resumed.safetensors ||
        fail "2 ranks stopped after epoch $mpi_cut and resumed: the uninterrupted run's model file"
    ok "mpirun -np 2: stopped after epoch $mpi_cut and resumed, the same model file, byte for byte"
elif [ "${CI:-}" = true ]; then
    fail "mpirun and an MPI build for the MPI part (CI counts a skip as a failure)"
else
    echo "skip: the MPI part (mpirun absent or nabla built without MPI)"
fi
echo "cli_keep_best: all passed"
