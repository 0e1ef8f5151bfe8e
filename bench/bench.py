#!/usr/bin/env python3
"""nabla against PyTorch on the same work, side by side (issue 7). `make bench` runs it.

The work: the MLP 784-256-128-10 (ReLU, cross-entropy), SGD lr 0.1 momentum 0.9, on
Fashion-MNIST normalised with one global mean and standard deviation of the training pixels
(applied to the bytes of each batch as it is gathered, by both), shuffled every epoch.
PyTorch trains from nabla's initial parameters on nabla's sample order (bench_mlp prepare
writes both), so the two runs see the same batches and their test accuracies compare.

Every measurement runs in a process of its own (peak RSS is that process's ru_maxrss), and
nabla's and PyTorch's runs alternate, round after round, so that a busy machine slows both
alike; the best epoch of each run and the best run of each kind are reported (noise only ever
adds time). PyTorch runs in its best thread setting — torch.set_num_threads(1) with OpenBLAS
on all cores — and with torch.set_num_threads(all cores), where its OpenMP threads and
OpenBLAS's fight over the cores. nabla runs with --threads = cores.

    bench/bench.py --nabla build/bench/bench_mlp [--quick] [--threads N] [--gemm NAME ...]
                   [--priority none|nice|rt] [--json FILE] [--bf16-only]

The last section sets nabla's --precision bf16 against its own fp32 (issue 8), at batches 128
and 1024, with the oneDNN kernels that ran; --bf16-only runs only that section.

On a machine shared with other jobs, --priority rt runs every measured process, nabla's and
PyTorch's alike, under round-robin real-time priority (chrt --rr 1; needs root), and --priority
nice under nice -20, so that the figures measure the code rather than the neighbours.

It must be run by a Python that imports torch (Debian's python3-torch: /usr/bin/python3).
Default run: a few minutes; --quick: about one.
"""
import argparse
import gzip
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = "/usr/share/datasets/fashion-mnist"
BATCHES = (32, 128, 1024)


# ---- the PyTorch side (runs in a child process: bench.py --torch-worker SPEC) -------------

def load_idx(data, split):
    import numpy as np
    with gzip.open(os.path.join(data, f"{split}-images-idx3-ubyte.gz"), "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, 784)
    with gzip.open(os.path.join(data, f"{split}-labels-idx1-ubyte.gz"), "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8).astype(np.int64)
    return images, labels


def peak_rss_kb():
    """This process's peak resident memory: VmHWM (ru_maxrss would also count the parent's
    memory at fork, which exec carries over on Linux)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def torch_worker(spec):
    threads = spec["torch_threads"]
    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    widths = [784] + spec["hidden"] + [10]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    if spec.get("init"):
        flat = torch.from_numpy(np.fromfile(spec["init"], dtype=np.float32))
        at = 0
        with torch.no_grad():
            for p in model.parameters():  # l1.weight, l1.bias, l2.weight, ... as nabla's
                p.copy_(flat[at:at + p.numel()].view_as(p))
                at += p.numel()
        assert at == flat.numel(), "initial parameters do not fit the model"
    mean, inv = spec["mean"], 1.0 / max(spec["std"], spec["eps"])
    result = {"impl": "torch", "torch_threads": threads, "torch": torch.__version__,
              "mode": spec["mode"], "batch": spec["batch"]}

    def batch_of(images, idx):
        return (images[idx].float() - mean) * inv  # gather from bytes, normalise, as nabla

    if spec["mode"] == "train":
        images, labels = load_idx(spec["data"], "train")
        samples = spec.get("samples") or len(images)
        images = torch.from_numpy(images[:samples].copy())
        labels = torch.from_numpy(labels[:samples].copy())
        order = np.fromfile(spec["order"], dtype=np.int64).reshape(-1, samples)
        opt = torch.optim.SGD(model.parameters(), lr=spec["lr"], momentum=spec["momentum"])
        B = spec["batch"]
        epoch_seconds, losses = [], []
        for e in range(spec["epochs"]):
            perm = torch.from_numpy(order[e].copy())
            start = time.perf_counter()
            loss_sum, correct = 0.0, 0
            for first in range(0, samples, B):
                idx = perm[first:first + B]
                x, y = batch_of(images, idx), labels[idx]
                opt.zero_grad()
                out = model(x)
                loss = F.cross_entropy(out, y)
                loss.backward()
                opt.step()
                # what nabla's trainer also does per step: the loss and the correct count
                loss_sum += loss.item() * len(idx)
                correct += int((out.argmax(1) == y).sum())
            epoch_seconds.append(time.perf_counter() - start)
            losses.append(loss_sum / samples)
        del images, labels  # the test set is loaded once training is done, as in bench_mlp
        timages, tlabels = load_idx(spec["data"], "t10k")
        timages, tlabels = torch.from_numpy(timages.copy()), torch.from_numpy(tlabels)
        with torch.no_grad():
            correct, total = 0, 0.0
            for first in range(0, len(timages), 1000):
                x, y = batch_of(timages, slice(first, first + 1000)), tlabels[first:first + 1000]
                out = model(x)
                total += float(F.cross_entropy(out, y, reduction="sum"))
                correct += int((out.argmax(1) == y).sum())
        result.update(epoch_seconds=epoch_seconds, train_loss=losses, samples=samples,
                      test_accuracy=correct / len(timages), test_loss=total / len(timages))
    else:
        timages, _ = load_idx(spec["data"], "t10k")
        timages = torch.from_numpy(timages.copy())
        times = []
        with torch.no_grad():
            if spec["mode"] == "latency":
                for r in range(-spec["repeats"] // 10, spec["repeats"]):
                    i = (r + spec["repeats"]) % len(timages)
                    t0 = time.perf_counter()
                    model(batch_of(timages, slice(i, i + 1)))
                    if r >= 0:
                        times.append(time.perf_counter() - t0)
                samples = 1
            else:
                B = spec["batch"]
                usable = len(timages) // B * B
                for r in range(-2, spec["repeats"]):
                    t0 = time.perf_counter()
                    for first in range(0, usable, B):
                        model(batch_of(timages, slice(first, first + B)))
                    if r >= 0:
                        times.append(time.perf_counter() - t0)
                samples = usable
        t = statistics.median(times)
        result.update(median_seconds=t, samples_per_second=samples / t,
                      latency_us=t * 1e6 / samples, samples=samples)
    result["peak_rss_kb"] = peak_rss_kb()
    print(json.dumps(result))


# ---- the driver ------------------------------------------------------------------------

def parse_json(text):
    line = [l for l in text.splitlines() if l.startswith("{")][-1]
    return json.loads(line.replace(": nan", ": NaN"))


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="nabla-bench-")
        self.prepared = {}
        self.log = []

    def prefix(self):
        return {"none": [], "nice": ["nice", "-n", "-20"], "rt": ["chrt", "--rr", "1"]}[self.args.priority]

    def nabla(self, mode, gemm=None, threads=None, check=True, **kw):
        cmd = [self.args.nabla, "--data", self.args.data,
               "--threads", str(threads or self.args.threads)]
        if gemm:
            cmd += ["--gemm", gemm]
        for k, v in kw.items():
            cmd += ["--" + k.replace("_", "-"), ",".join(map(str, v)) if isinstance(v, list) else str(v)]
        cmd.append(mode)
        p = subprocess.run(self.prefix() + cmd, capture_output=True, text=True)
        if p.returncode and not check:  # the caller reports it (bf16 where it is unavailable)
            self.failure = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f"exit {p.returncode}"
            return None
        if p.returncode:
            sys.exit(f"bench: {' '.join(cmd)} failed:\n{p.stderr}")
        r = parse_json(p.stdout)
        r["impl"] = "nabla"
        self.log.append(r)
        return r

    def prepare(self, hidden, epochs, samples):
        key = (tuple(hidden), epochs, samples)
        if key not in self.prepared:
            tag = "-".join(map(str, hidden)) + f"-{epochs}-{samples}"
            init, order = os.path.join(self.tmp, f"init-{tag}.f32"), os.path.join(self.tmp, f"order-{tag}.i64")
            r = self.nabla("prepare", hidden=hidden, epochs=epochs, samples=samples,
                           init_out=init, order_out=order)
            self.prepared[key] = dict(init=init, order=order, mean=r["mean"], std=r["std"], eps=r["eps"])
        return self.prepared[key]

    def torch(self, mode, torch_threads, batch, hidden=(256, 128), epochs=1, samples=60000,
              repeats=20):
        spec = dict(mode=mode, torch_threads=torch_threads, batch=batch, hidden=list(hidden),
                    epochs=epochs, samples=samples, repeats=repeats, data=self.args.data,
                    lr=0.1, momentum=0.9, **self.prepare(list(hidden), epochs, samples))
        env = dict(os.environ)
        env["OPENBLAS_NUM_THREADS"] = str(self.args.threads)  # OpenBLAS on all cores
        env.setdefault("OMP_NUM_THREADS", str(torch_threads))
        p = subprocess.run(self.prefix() + [sys.executable, os.path.abspath(__file__), "--torch-worker",
                                            json.dumps(spec)], capture_output=True, text=True, env=env)
        if p.returncode:
            sys.exit(f"bench: PyTorch worker ({mode}, batch {batch}) failed:\n{p.stderr}")
        r = parse_json(p.stdout)
        self.log.append(r)
        return r


def bf16_section(b, rounds, epochs):
    """bf16 mixed precision against fp32, nabla alone (issue 8): training and inference at
    batches 128 and 1024, the two precisions alternating round after round, best of each; test
    accuracy after the same epochs from the same start and batches; the oneDNN kernels."""
    print()
    if b.nabla("infer", batch=128, repeats=1, precision="bf16", check=False) is None:
        print(f"bf16 mixed precision: unavailable here ({b.failure})")
        return
    train, infer = {}, {}
    rounds = max(rounds, 3)  # a ratio of two single runs on a busy machine says little
    for rnd in range(rounds):
        for batch in (128, 1024):
            for k in range(2):
                prec = ("fp32", "bf16")[(k + rnd) % 2]  # a different one goes first each round
                train.setdefault((prec, batch), []).append(
                    b.nabla("train", batch=batch, epochs=epochs, seed=1, precision=prec))
                infer.setdefault((prec, batch), []).append(
                    b.nabla("infer", batch=batch, precision=prec))
    print(f"bf16 mixed precision (--precision bf16: Linear's products with bf16 operands through oneDNN, "
          f"fp32 accumulation; the rest fp32), samples/s, best of {rounds} alternating run(s); "
          f"test accuracy after {epochs} epoch(s), same start and batches")
    print(f"{'batch':>5} | {'train fp32':>10} | {'train bf16':>10} | {'ratio':>5} | {'infer fp32':>10} | "
          f"{'infer bf16':>10} | {'ratio':>5} | {'test acc fp32':>13} | {'bf16':>6}")
    ratios = {}
    for batch in (128, 1024):
        t32, t16 = (max(train[(p, batch)], key=best_rate) for p in ("fp32", "bf16"))
        i32, i16 = (max(r["samples_per_second"] for r in infer[(p, batch)]) for p in ("fp32", "bf16"))
        ratios[batch] = best_rate(t16) / best_rate(t32)
        print(f"{batch:5d} | {fmt_rate(best_rate(t32)):>10} | {fmt_rate(best_rate(t16)):>10} | "
              f"{ratios[batch]:4.2f}x | {fmt_rate(i32):>10} | {fmt_rate(i16):>10} | {i16 / i32:4.2f}x | "
              f"{100 * t32['test_accuracy']:12.2f}% | {100 * t16['test_accuracy']:5.2f}%", flush=True)
    print(f"kernels, bf16 training at batch 1024: {train[('bf16', 1024)][0]['kernels']}")
    print(f"kernels, bf16 inference at batch 1024: {infer[('bf16', 1024)][0]['kernels']}")
    for label, value, goal in (("bf16 training >= 2x fp32 at batch 1024", ratios[1024], 2.0),
                               ("bf16 training >= 1.5x fp32 at batch 128", ratios[128], 1.5)):
        print(f"  {'met   ' if value >= goal else 'MISSED'} {label}: {value:.3g} (target {goal:g})")


def best_rate(r):
    """Samples per second of the best epoch of a training run."""
    return r["samples"] / min(r["epoch_seconds"])


def fmt_rate(x):
    return f"{x / 1000:.1f}k" if x < 1e6 else f"{x / 1e6:.2f}M"


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        flags = ", ".join(x for x in ("avx512f", "avx512_bf16", "amx_tile") if x in text)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{model}, {os.cpu_count()} cores ({flags}), {platform.system()} "
            f"{platform.release()}, load average {load:.1f} at start")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nabla", default=os.path.join(HERE, "..", "build", "bench", "bench_mlp"))
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true", help="one round, fewer epochs (~1 min)")
    ap.add_argument("--rounds", type=int, help="alternating rounds (default 3, --quick 1)")
    ap.add_argument("--epochs", type=int, help="epochs per training run (default 3, --quick 1)")
    ap.add_argument("--gemm", nargs="*", help="backends for the per-backend table (default all built in)")
    ap.add_argument("--priority", choices=("none", "nice", "rt"), default="none",
                    help="scheduling of every measured process, both sides alike (default none)")
    ap.add_argument("--json", help="also write every measurement to this file")
    ap.add_argument("--bf16-only", action="store_true", help="only the bf16-against-fp32 section")
    ap.add_argument("--torch-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        torch_worker(json.loads(args.torch_worker))
        return
    # the workers need torch: fail early and clearly (in a child: the driver stays small)
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode:
        sys.exit(f"bench: {sys.executable} cannot import torch (use /usr/bin/python3 with "
                 "Debian's python3-torch)")
    torch_version = probe.stdout.strip()
    rounds = args.rounds or (1 if args.quick else 3)
    epochs = args.epochs or (1 if args.quick else 3)
    T = args.threads
    b = Bench(args)
    started = time.time()
    print(f"machine: {machine()}; measured processes' priority: {args.priority}", flush=True)
    if args.bf16_only:
        bf16_section(b, rounds, epochs)
        return

    # 1. training, inference, latency: nabla and PyTorch alternating, round after round
    train = {}   # (impl, batch) -> runs
    infer, lat = {}, {}
    impls = [("nabla", None), ("torch1", 1), (f"torch{T}", T)]
    for rnd in range(rounds):
        for batch in BATCHES:
            for k in range(len(impls)):
                name, tt = impls[(k + rnd) % len(impls)]  # a different one goes first each round
                if name == "nabla":
                    r = b.nabla("train", batch=batch, epochs=epochs, seed=1)
                else:
                    # torch.set_num_threads(cores) is only shown for reference, and it can be
                    # very slow (its OpenMP threads and OpenBLAS's fight): one epoch of the first
                    # 15,000 samples per run
                    r = (b.torch("train", tt, batch, epochs=epochs) if tt == 1 else
                         b.torch("train", tt, batch, epochs=1, samples=15000))
                train.setdefault((name, batch), []).append(r)
                print(f"  round {rnd + 1}: train {name:7s} batch {batch:4d}: {fmt_rate(best_rate(r))}/s, "
                      f"test accuracy {100 * r['test_accuracy']:.2f} %", flush=True)
        for k in range(len(impls)):
            name, tt = impls[(k + rnd) % len(impls)]
            if name == "nabla":
                ri = b.nabla("infer", batch=1000)
                rl = b.nabla("latency", repeats=20000 if not args.quick else 5000)
            else:
                ri = b.torch("infer", tt, 1000, repeats=10 if not args.quick else 3)
                rl = b.torch("latency", tt, 1, repeats=5000 if not args.quick else 1000)
            infer.setdefault(name, []).append(ri)
            lat.setdefault(name, []).append(rl)
            print(f"  round {rnd + 1}: {name:7s} inference b1000 {fmt_rate(ri['samples_per_second'])}/s, "
                  f"latency b1 {rl['latency_us']:.2f} µs", flush=True)

    # 2. the roofline: the backend's own products of one step, at each batch
    roof = {}
    for batch in BATCHES:
        roof[batch] = max((b.nabla("gemm", batch=batch) for _ in range(rounds)),
                          key=lambda r: r["samples_per_second"])
    gemm_name = roof[BATCHES[0]]["gemm"]
    version = roof[BATCHES[0]]["version"]

    def best(runs):
        return max(runs, key=best_rate)

    tbest = {batch: max((best(train[("torch1", batch)]), best(train[(f"torch{T}", batch)])), key=best_rate)
             for batch in BATCHES}

    print()
    print(f"{version}; gemm {gemm_name}, {T} threads")
    print(f"PyTorch {torch_version}: 'best' = torch.set_num_threads(1) with OpenBLAS on {T} threads; "
          f"'t{T}' = torch.set_num_threads({T})")
    print(f"MLP 784-256-128-10, SGD lr 0.1 momentum 0.9, Fashion-MNIST 60,000 samples, {epochs} epoch(s) "
          f"per run (PyTorch t{T}: 1 epoch of 15,000), best epoch of {rounds} alternating run(s) each; test accuracy "
          f"after the {epochs} epoch(s), from the same initial parameters and batches")
    print()
    hdr = (f"{'batch':>5} | {'nabla':>8} | {'PyTorch best':>12} | {'ratio':>5} | {f'PyTorch t{T}':>11} | "
           f"{'ratio':>5} | {'GEMM roofline':>13} | {'of roofline':>11} | {'test acc nabla':>14} | {'PyTorch':>7}")
    print("Training samples/s")
    print(hdr)
    print("-" * len(hdr))
    summary = {}
    for batch in BATCHES:
        n = best(train[("nabla", batch)])
        t1 = best(train[("torch1", batch)])
        tT = best(train[(f"torch{T}", batch)])
        tb = tbest[batch]
        rn, r1, rT, rb = best_rate(n), best_rate(t1), best_rate(tT), best_rate(tb)
        rf = roof[batch]["samples_per_second"]
        # accuracy after the same epochs from the same start and batches: nabla and torch1
        summary[batch] = dict(nabla=rn, torch_best=rb, torch1=r1, torchT=rT, roofline=rf,
                              acc_nabla=n["test_accuracy"], acc_torch=t1["test_accuracy"])
        print(f"{batch:5d} | {fmt_rate(rn):>8} | {fmt_rate(rb):>12} | {rn / rb:4.2f}x | {fmt_rate(rT):>11} | "
              f"{rn / rT:4.2f}x | {fmt_rate(rf):>13} | {100 * rn / rf:10.0f}% | "
              f"{100 * n['test_accuracy']:13.2f}% | {100 * t1['test_accuracy']:6.2f}%")
    ni = max(r["samples_per_second"] for r in infer["nabla"])
    ti = max(max(r["samples_per_second"] for r in infer["torch1"]),
             max(r["samples_per_second"] for r in infer[f"torch{T}"]))
    nl = min(r["latency_us"] for r in lat["nabla"])
    tl = min(min(r["latency_us"] for r in lat["torch1"]), min(r["latency_us"] for r in lat[f"torch{T}"]))
    n_rss = max(r["peak_rss_kb"] for r in train[("nabla", 128)]) / 1024
    t_rss = min(max(r["peak_rss_kb"] for r in train[(k, 128)]) for k in ("torch1", f"torch{T}")) / 1024
    print()
    print(f"Inference, batch 1000 (gather + normalise + forward): nabla {fmt_rate(ni)}/s, "
          f"PyTorch {fmt_rate(ti)}/s: {ni / ti:.2f}x")
    print(f"Latency, one sample (median): nabla {nl:.2f} µs, PyTorch {tl:.2f} µs: {tl / nl:.1f}x faster")
    print(f"Peak RSS, training at batch 128 (VmHWM of the process, data included): nabla {n_rss:.0f} MB, "
          f"PyTorch {t_rss:.0f} MB: {n_rss / t_rss:.2f} of PyTorch's")

    # 3. targets (issue 7)
    s = summary
    targets = [
        ("batch 128 >= 2x PyTorch's best", s[128]["nabla"] / s[128]["torch_best"], 2.0, True),
        ("batch 32 >= 3x", s[32]["nabla"] / s[32]["torch_best"], 3.0, True),
        ("batch 1024 >= 1.8x", s[1024]["nabla"] / s[1024]["torch_best"], 1.8, True),
        ("batch 1024 >= 80 % of the GEMM roofline", s[1024]["nabla"] / s[1024]["roofline"], 0.8, True),
        ("inference >= 1.5x", ni / ti, 1.5, True),
        ("latency <= 2 us", nl, 2.0, False),
        ("peak RSS <= 1/4 of PyTorch's", n_rss / t_rss, 0.25, False),
        # A single run's accuracy moves by several tenths of a point with rounding alone (the
        # per-backend table below shows nabla's own spread), and at batch 32 lr 0.1 momentum
        # 0.9 diverges for both: the target is read on the mean over batches 128 and 1024.
        ("test accuracy within 0.5 points (mean of batches 128, 1024)",
         abs(s[128]["acc_nabla"] + s[1024]["acc_nabla"] - s[128]["acc_torch"] - s[1024]["acc_torch"]) * 50,
         0.5, False),
    ]
    print()
    print("Targets")
    for label, value, goal, higher in targets:
        ok = value >= goal if higher else value <= goal
        print(f"  {'met   ' if ok else 'MISSED'} {label}: {value:.3g} (target {goal:g})")

    # 4. cost curves: time per epoch against samples and against hidden width (batch 128)
    print()
    print("Time per epoch at batch 128 (nabla; PyTorch best) against the number of samples")
    print(f"{'samples':>8} | {'nabla s':>8} | {'PyTorch s':>9} | {'nabla samples/s':>15}")
    for samples in (7500, 15000, 30000, 60000):
        rn = b.nabla("train", batch=128, epochs=2, samples=samples, seed=1)
        rt = b.torch("train", 1, 128, epochs=2, samples=samples)
        tn, tt_ = min(rn["epoch_seconds"]), min(rt["epoch_seconds"])
        print(f"{samples:8d} | {tn:8.3f} | {tt_:9.3f} | {fmt_rate(samples / tn):>15}", flush=True)
    print()
    print("Time per epoch at batch 128 against the hidden width (784-H-H/2-10, 60,000 samples)")
    print(f"{'H':>5} | {'params':>8} | {'nabla s':>8} | {'PyTorch s':>9} | {'ratio':>5} | {'nabla GFLOP/s':>13}")
    for h in (64, 128, 256, 512, 1024):
        hidden = [h, h // 2]
        rn = b.nabla("train", batch=128, epochs=2, hidden=hidden, seed=1)
        rt = b.torch("train", 1, 128, hidden=hidden, epochs=2)
        params = 784 * h + h + h * (h // 2) + h // 2 + (h // 2) * 10 + 10
        tn, tt_ = min(rn["epoch_seconds"]), min(rt["epoch_seconds"])
        flops = 6.0 * (params - h - h // 2 - 10) * 60000 - 2.0 * 784 * h * 60000  # no dX for layer 1
        print(f"{h:5d} | {params:8d} | {tn:8.3f} | {tt_:9.3f} | {tt_ / tn:4.2f}x | {flops / tn * 1e-9:13.1f}",
              flush=True)

    # 5. per GEMM backend built in
    built = [x for x in ("onednn", "openblas", "portable") if x in version.split("gemm:")[1].split(";")[0]]
    backends = args.gemm or built
    print()
    print(f"Per GEMM backend ({T} threads; training samples/s at batch 32 / 128 / 1024, best of "
          f"{rounds}; roofline = the backend's own products; test accuracy after {epochs} epoch(s) "
          f"at batch 128, same start and batches: the backends differ only in rounding)")
    print(f"{'backend':>9} | {'b32':>7} | {'b128':>7} | {'b1024':>7} | {'roofline b128':>13} | "
          f"{'roofline b1024':>14} | {'infer b1000':>11} | {'latency':>8} | {'test acc b128':>13}")
    for g in backends:
        rates, acc = [], None
        for batch in BATCHES:
            runs = [b.nabla("train", gemm=g, batch=batch, epochs=epochs, seed=1) for _ in range(rounds)]
            rates.append(max(best_rate(r) for r in runs))
            if batch == 128:
                acc = runs[0]["test_accuracy"]
        r128 = max(b.nabla("gemm", gemm=g, batch=128)["samples_per_second"] for _ in range(rounds))
        r1024 = max(b.nabla("gemm", gemm=g, batch=1024)["samples_per_second"] for _ in range(rounds))
        inf = max(b.nabla("infer", gemm=g, batch=1000)["samples_per_second"] for _ in range(rounds))
        la = min(b.nabla("latency", gemm=g, repeats=5000)["latency_us"] for _ in range(rounds))
        print(f"{g:>9} | {fmt_rate(rates[0]):>7} | {fmt_rate(rates[1]):>7} | {fmt_rate(rates[2]):>7} | "
              f"{fmt_rate(r128):>13} | {fmt_rate(r1024):>14} | {fmt_rate(inf):>11} | {la:5.2f} µs | "
              f"{100 * acc:12.2f}%", flush=True)

    # 6. bf16 mixed precision against fp32
    bf16_section(b, rounds, epochs)
    print()
    print(f"({time.time() - started:.0f} s; load average now {os.getloadavg()[0]:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(b.log, f, indent=1)


if __name__ == "__main__":
    main()
