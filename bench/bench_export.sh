#!/usr/bin/env bash
# The exported C model against the library and PyTorch (issue 15): single-sample latency and
# throughput of the default MLP (784-256-128-10, ReLU) as
#   - the generated C file (fp32, --quantize int8 weight-only, and --quantize int8 --calibrate
#     fashion-mnist: 8-bit Linear inputs and int32 sums), gcc -O2, gcc and clang -O3
#     -march=native, one thread;
#   - nabla's library inference (bench/bench_mlp latency / infer: gather + normalise + forward),
#     one thread and every core;
#   - PyTorch (torch.set_num_threads(1)), eval mode, no_grad.
# Latency is the median of 20,000 one-sample calls (for the generated file also the fastest,
# the closest to an idle machine's on a shared one); throughput one pass over the 10,000
# Fashion-MNIST test images (median of 7; the C file one sample at a time). About a minute.
#
#   bash bench/bench_export.sh [BUILD]      (BUILD: the build folder, default build)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
NABLA=$BUILD/nabla
PY=/usr/bin/python3
FASHION=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gunzip -c "$FASHION/t10k-images-idx3-ubyte.gz" > "$tmp/t10k.idx"
"$NABLA" train 784-256-128-10 --data fashion-mnist --epochs 1 --normalize feature --seed 1 \
    -q -o "$tmp/mlp.safetensors" --checkpoint none 2>/dev/null ||
    "$NABLA" train 784-256-128-10 --data fashion-mnist --epochs 1 --normalize feature --seed 1 \
    -q -o "$tmp/mlp.safetensors"
printf '%-52s %12s %14s %10s\n' "default MLP 784-256-128-10" "latency" "samples/s" "fastest"
for q in fp32 int8 int8-calibrated; do
    mkdir -p "$tmp/$q"
    case $q in
        fp32) opts=() ;;
        int8) opts=(--quantize int8) ;;
        *) opts=(--quantize int8 --calibrate fashion-mnist) ;;
    esac
    "$NABLA" export "$tmp/mlp.safetensors" --format c -o "$tmp/$q/model.c" "${opts[@]}" 2>/dev/null
    for build in "gcc -O2" "gcc -O3 -march=native" "clang -O3 -march=native"; do
        command -v "${build%% *}" >/dev/null || continue
        # -Iinclude for bench_util.h's declarations only: nothing of nabla is linked
        # shellcheck disable=SC2086
        $build -std=c99 -Iinclude -I"$tmp/$q" bench/export/latency.c "$tmp/$q/model.c" -lm \
            -o "$tmp/$q/run"
        "$tmp/$q/run" "$tmp/t10k.idx" > "$tmp/r.json"
        "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%-52s %9.2f µs %14.0f %7.2f µs" % (sys.argv[2], d["latency_us"], d["samples_per_second"], d["latency_min_us"]))' \
            "$tmp/r.json" "generated C, $q, $build"
    done
done
for t in 1 0; do
    lat=$("$BUILD/bench/bench_mlp" --threads $t --repeats 20000 latency)
    inf=$("$BUILD/bench/bench_mlp" --threads $t infer)
    "$PY" -c 'import json,sys; a=json.loads(sys.argv[1]); b=json.loads(sys.argv[2]); print("%-52s %9.2f µs %14.0f" % (sys.argv[3], a["latency_us"], b["samples_per_second"]))' \
        "$lat" "$inf" "nabla library ($([ $t = 1 ] && echo 1 thread || echo every core)), batch 1 / 1000"
done
"$PY" - "$tmp/t10k.idx" <<'PY'
import statistics, sys, time
import numpy as np, torch
torch.set_num_threads(1)
x = torch.from_numpy(np.frombuffer(open(sys.argv[1], "rb").read()[16:], dtype=np.uint8).reshape(-1, 784).astype(np.float32) / 255)
model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                            torch.nn.ReLU(), torch.nn.Linear(128, 10)).eval()
times = []
with torch.no_grad():
    for r in range(-2000, 20000):
        i = r % len(x)
        t0 = time.perf_counter()
        torch.softmax(model(x[i:i + 1]), 1)
        if r >= 0:
            times.append(time.perf_counter() - t0)
    passes = []
    for r in range(-1, 7):
        t0 = time.perf_counter()
        for first in range(0, len(x), 1000):
            torch.softmax(model(x[first:first + 1000]), 1)
        if r >= 0:
            passes.append(time.perf_counter() - t0)
print("%-52s %9.2f µs %14.0f" % ("PyTorch %s (1 thread), batch 1 / 1000" % torch.__version__,
      statistics.median(times) * 1e6, len(x) / statistics.median(passes)))
PY
