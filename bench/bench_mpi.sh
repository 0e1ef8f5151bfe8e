#!/usr/bin/env bash
# Distributed training on this machine: samples/s and time in the gradient all-reduce for one
# rank and for two, then the all-reduce alone (bench_allreduce). The README's scaling model
# takes its per-sample compute time and its bandwidth from these numbers.
#
#   bash bench/bench_mpi.sh            the default MLP 784-256-128-10 on Fashion-MNIST
#   WIDE=1 bash bench/bench_mpi.sh     also 784-2560-1280-10 (10x wider) on its 10,000 test
#                                      images (~1 min per configuration on one core)
#
# Configurations: one plain process on one thread (no MPI), and mpirun -np 1 / -np 2 (each
# rank bound to one core by mpirun, one thread). EPOCHS (default 2) epochs each; the figures
# are the last epoch's, from the best of REPEAT (default 3) runs (a shared machine is noisy).
# BUILD (default build) holds nabla and bench_allreduce.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
NABLA=$PWD/$BUILD/nabla
EPOCHS=${EPOCHS:-2}
REPEAT=${REPEAT:-3}
PY=/usr/bin/python3
command -v mpirun >/dev/null || { echo "bench_mpi: mpirun not found (apt-get install openmpi-bin)"; exit 0; }
if "$NABLA" train --help | grep -q unavailable; then
    echo "bench_mpi: $NABLA was built without MPI"; exit 0
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# A rank waiting in the all-reduce yields its core instead of spinning: on a machine shared with
# other jobs (or with fewer cores than it seems) spinning starves the rank being waited for.
# On dedicated cluster nodes, OMPI_MCA_mpi_yield_when_idle=0 saves a few microseconds a call.
export OMPI_MCA_mpi_yield_when_idle=${OMPI_MCA_mpi_yield_when_idle:-1}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-bench-mpi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "# $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $("$NABLA" --version);" \
    "yield_when_idle=$OMPI_MCA_mpi_yield_when_idle"
printf '%-22s %-10s %10s %8s %10s %8s %11s %12s\n' model run samples/s epoch_s allreduce_s comm_% ms/allred us/sample
row() {  # model, run label, file of JSON summaries (one per run): the fastest
    "$PY" - "$1" "$2" "$3" <<'EOF'
import json, sys
model, label, path = sys.argv[1:]
runs = [json.loads(line) for line in open(path) if line.startswith("{")]
j = max(runs, key=lambda r: r["samples_per_second"])
sps, secs = j["samples_per_second"], j["seconds_last_epoch"]
comm = j.get("allreduce_seconds_last_epoch", 0.0)
calls = j["steps"] / j["epochs"] if j.get("ranks") else 0
ranks = j.get("ranks", 1)
# compute per sample per core: the epoch's time outside the all-reduce, times the ranks
us = (secs - comm) * ranks / (sps * secs) * 1e6
print("%-22s %-10s %10.0f %8.2f %10.3f %8.1f %11s %12.2f" % (model, label, sps, secs, comm,
      100 * comm / secs, "%.3f" % (1e3 * comm / calls) if calls else "-", us))
EOF
}
bench_model() {  # model, data
    local model=$1 data=$2 n i
    : >"$tmp/plain.json"
    for i in $(seq "$REPEAT"); do
        "$NABLA" train "$model" --data "$data" --epochs "$EPOCHS" --batch 128 --threads 1 -q \
            --json -o "$tmp/m.safetensors" >>"$tmp/plain.json"
    done
    row "$model" "plain" "$tmp/plain.json"
    for n in 1 2; do
        : >"$tmp/np$n.json"
        for i in $(seq "$REPEAT"); do
            mpirun --allow-run-as-root -np $n "$NABLA" train "$model" --data "$data" \
                --epochs "$EPOCHS" --batch 128 -q --json -o "$tmp/m.safetensors" >>"$tmp/np$n.json"
        done
        row "$model" "$n rank$([ $n -gt 1 ] && echo s)" "$tmp/np$n.json"
    done
}
bench_model 784-256-128-10 fashion-mnist
[ "${WIDE:-0}" = 1 ] && bench_model 784-2560-1280-10 fashion-mnist-test
echo
echo "# the all-reduce alone (sum of float32 buffers in place), 2 ranks on this host"
mpirun --allow-run-as-root -np 2 "$PWD/$BUILD/bench/bench_allreduce"
