#!/usr/bin/python3
"""The CNN benchmark: nabla against PyTorch on the small CNN of examples/fashion-cnn.nb (issue 13).

Both sides train the same network from the same initial parameters (written by
`bench_cnn prepare`) on the same batches (consecutive training samples, batch 128, SGD lr 0.01
momentum 0.9), and run inference over the test set at batch 1000. Every measurement runs in its
own process (so that the peak RSS is that run's), and runs alternate: in each round nabla and
PyTorch at 1 and 2 threads, training then inference, so that a change in the machine's load
hits both sides alike. Reported per setting: the median over rounds of samples/s by wall
clock and by CPU time (samples per CPU-second of the process: on a machine shared with other
work, wall time measures the load as much as the program; at one thread CPU time is what the
run would take alone), peak RSS, the ratios nabla / PyTorch at PyTorch's best thread setting,
the per-kernel profile of a nabla step (`bench_cnn kernels`), and the fraction of the
convolution roofline (conv2's forward on oneDNN alone in its preferred blocked layout, per
thread) that nabla's whole training step reaches on its convolution FLOPs.

    /usr/bin/python3 bench/bench_cnn.py --nabla build/bench/bench_cnn [--rounds R] [--steps S]
                                        [--quick]

Targets (issue 13): training >= 2x and inference >= 1.5x PyTorch's best thread setting, peak
memory <= 1/2 of PyTorch's. The run prints met / missed with the factor.
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def load_idx(split, data):
    with gzip.open(f"{data}/{split}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{data}/{split}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return x, y


def torch_child(a):
    """One PyTorch measurement in this process; prints one JSON line."""
    import torch
    import torch.nn as nn

    a.threads = int(a.threads)
    torch.set_num_threads(a.threads)
    meta = json.load(open(a.meta))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(32)
            self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(64)
            self.fc1 = nn.Linear(3136, 128)
            self.drop = nn.Dropout(0.3)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
            x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
            return self.fc2(self.drop(torch.relu(self.fc1(x.flatten(1)))))

    net = Net()
    flat = np.fromfile(a.init, dtype=np.float32)
    params = dict(net.named_parameters())
    offset = 0
    with torch.no_grad():
        for name, size in meta["params"]:
            p = params[name]
            p.copy_(torch.from_numpy(flat[offset:offset + size].copy()).view_as(p))
            offset += size
    assert offset == flat.size, "parameter sizes differ from nabla's"

    def normalise(x):
        return (torch.from_numpy(x.astype(np.float32)) - meta["mean"]) / meta["std"]

    if a.child == "train":
        x, y = load_idx("train", a.data)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        net.train()
        batch, warmup, n = a.batch, 3, len(x)
        with torch.no_grad():
            net.eval()
            first = loss_fn(net(normalise(x[:batch])), torch.from_numpy(y[:batch])).item()
            net.train()
        for s in range(-warmup, a.steps):
            if s == 0:
                t0, c0 = time.perf_counter(), time.process_time()
            idx = (np.arange(batch) + (s + warmup) * batch) % n
            xb, yb = normalise(x[idx]), torch.from_numpy(y[idx])
            opt.zero_grad(set_to_none=False)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out = {"mode": "train", "samples_per_second": batch * a.steps / wall,
               "samples_per_cpu_second": batch * a.steps / cpu, "last_loss": loss.item(),
               "first_batch_eval_loss": first}
    else:
        x, _ = load_idx("t10k", a.data)
        net.eval()
        usable, times, cpus = len(x) // a.batch * a.batch, [], []
        with torch.no_grad():
            for r in range(-1, a.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                for first in range(0, usable, a.batch):
                    net(normalise(x[first:first + a.batch]))
                if r >= 0:
                    times.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - c0)
        out = {"mode": "infer", "samples_per_second": usable / statistics.median(times),
               "samples_per_cpu_second": usable / statistics.median(cpus)}
    out.update({"threads": a.threads, "torch": torch.__version__, "peak_rss_kb": peak_rss_kb()})
    print(json.dumps(out))


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_cnn: {' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nabla", default="build/bench/bench_cnn")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--quick", action="store_true", help="1 round, 15 steps, 1 repeat")
    ap.add_argument("--child", choices=["train", "infer"], help=argparse.SUPPRESS)
    ap.add_argument("--meta", help=argparse.SUPPRESS)
    ap.add_argument("--init", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        torch_child(a)
        return
    if a.quick:
        a.rounds, a.steps, a.repeats = 1, 15, 1
    if not os.path.exists(a.nabla):
        sys.exit(f"bench_cnn: {a.nabla} not found: build it with make")
    threads = [int(t) for t in a.threads.split(",")]
    tmp = tempfile.mkdtemp(prefix="nabla-bench-cnn-")
    init, meta_path = os.path.join(tmp, "init.bin"), os.path.join(tmp, "meta.json")
    meta = run_json([a.nabla, "--data", a.data, "--init-out", init, "prepare"])
    json.dump(meta, open(meta_path, "w"))
    common = ["--data", a.data]
    results = {}  # (side, mode, threads) -> list of runs
    for r in range(a.rounds):
        for mode, batch in (("train", 128), ("infer", 1000)):
            for t in threads:
                n = run_json([a.nabla, *common, "--threads", str(t), "--batch", str(batch),
                              "--steps", str(a.steps), "--repeats", str(a.repeats), mode])
                p = run_json([sys.executable, __file__, "--child", mode, "--meta", meta_path,
                              "--init", init, "--threads", str(t), "--batch", str(batch),
                              "--steps", str(a.steps), "--repeats", str(a.repeats), *common])
                results.setdefault(("nabla", mode, t), []).append(n)
                results.setdefault(("torch", mode, t), []).append(p)
                print(f"round {r + 1} {mode:5} {t} thread(s): nabla "
                      f"{n['samples_per_second']:8.0f}/s ({n['samples_per_cpu_second']:6.0f}/cpu-s)"
                      f"  torch {p['samples_per_second']:8.0f}/s "
                      f"({p['samples_per_cpu_second']:6.0f}/cpu-s)", flush=True)
    kernels = run_json([a.nabla, "--threads", "1", "--repeats", str(max(a.repeats, 5)),
                        "kernels"])

    def med(side, mode, t, key):
        return statistics.median(x[key] for x in results[(side, mode, t)])

    print(f"\nnabla conv kernels: {kernels['conv']}; first batch loss (eval mode): nabla "
          f"{meta['first_batch_eval_loss']:.6f}, torch "
          f"{results[('torch', 'train', threads[0])][0]['first_batch_eval_loss']:.6f}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(wall-clock numbers reflect other work on the machine; CPU-time numbers less so)")
    print(f"\n{'':22}" + "".join(f"{'nabla ' + str(t) + 't':>14}{'torch ' + str(t) + 't':>14}"
                                  for t in threads))
    for mode in ("train", "infer"):
        for key, label in (("samples_per_second", "samples/s"),
                           ("samples_per_cpu_second", "samples/cpu-s"),
                           ("peak_rss_kb", "peak RSS MB")):
            scale = 1 / 1024 if key == "peak_rss_kb" else 1
            row = "".join(f"{med('nabla', mode, t, key) * scale:14.0f}"
                          f"{med('torch', mode, t, key) * scale:14.0f}" for t in threads)
            print(f"{mode + ' ' + label:22}{row}")
    print()
    targets = {"train": 2.0, "infer": 1.5}
    for mode in ("train", "infer"):
        for key, label in (("samples_per_second", "wall"), ("samples_per_cpu_second", "CPU")):
            best_t = max(threads, key=lambda t: med("torch", mode, t, key))
            best_n = max(threads, key=lambda t: med("nabla", mode, t, key))
            ratio = med("nabla", mode, best_n, key) / med("torch", mode, best_t, key)
            verdict = "met" if ratio >= targets[mode] else \
                f"missed by {targets[mode] / ratio:.2f}x"
            print(f"{mode} ({label}): nabla {best_n}t / torch best ({best_t}t) = {ratio:.2f}x "
                  f"(target {targets[mode]}x: {verdict})")
    for mode, label in (("train", "training"), ("infer", "inference")):
        mem = max(med("nabla", mode, t, "peak_rss_kb") for t in threads) / \
            max(med("torch", mode, t, "peak_rss_kb") for t in threads)
        print(f"{label} peak memory: nabla / torch = {mem:.2f} (target <= 0.5: "
              f"{'met' if mem <= 0.5 else f'missed by {mem / 0.5:.2f}x'})")
    per_sample = kernels["conv_flops_per_step"] / kernels["batch"]
    achieved = med("nabla", "train", 1, "samples_per_cpu_second") * per_sample * 1e-9 \
        if 1 in threads else float("nan")
    roof = kernels["roofline_gflops_per_thread"]
    print(f"\nroofline: oneDNN alone, conv2 forward (blocked layout, 1 thread): {roof:.1f} GFLOP/s; "
          f"nabla's conv2 forward kernel {kernels['conv2_fwd_gflops']:.1f} GFLOP/s; nabla's "
          f"whole training step (1 thread, CPU time) reaches {achieved:.1f} GFLOP/s of "
          f"convolution = {achieved / roof:.0%} of the roofline")
    print(f"conv2 forward: nabla {kernels['kernels_ms']['conv2 fwd']:.2f} ms, oneDNN blocked "
          f"{kernels['conv2_fwd_blocked_ms']:.2f} ms, blocked with the reorders from and to "
          f"NCHW {kernels['conv2_fwd_blocked_with_reorders_ms']:.2f} ms")
    print(f"\nprofile of one nabla training step at batch {kernels['batch']} (1 thread, each "
          f"kernel timed alone, {kernels['clock']} ms): sum {kernels['sum_ms']:.1f} ms")
    for name, ms in sorted(kernels["kernels_ms"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:20} {ms:8.2f} ms  {ms / kernels['sum_ms']:5.1%}")


if __name__ == "__main__":
    main()
