#!/usr/bin/env python3
"""PyTorch both ways, with the README's own code (extracted from README.md and run here, so
the README cannot drift from what works):

1. nabla -> torch: nabla trains 784-32-10 on Fashion-MNIST (one epoch) and 2-16-16-3 on
   spirals with each normalisation mode (feature, channel-less global, none); the README's
   load_nabla() builds the torch.nn model, and its softmax equals `nabla predict` within 1e-5.
   Without the Normalize module the accuracy drops (the trap the README warns about).
2. torch -> nabla: an nn.Sequential(Linear, ReLU, Linear, ReLU, Linear) saved with the
   README's save_safetensors(); `nabla import --names sequential` gives torch's outputs;
   without --normalize the model file carries no normalisation (even when the weights file
   came from nabla and carries one); --normalize feature:SPEC stores the data set's mean and
   std; mean-std:M,S and from:MODEL store what they name; fc-named weights import without
   --names; F16 weights (model.half()) import as torch's .float() of them; a CNN with batch
   norm (conv2d, BatchNorm2d with its running statistics and int64 num_batches_tracked,
   max pooling, Linear) imports with its running statistics and predicts as torch's eval().
3. A nabla model -> torch (load_nabla) -> save_safetensors -> nabla import --normalize
   from:ORIGINAL gives back the original's predictions exactly.

Run with /usr/bin/python3; the CLI is $NABLA (default $NABLA_BUILD/nabla). Exits non-zero on
the first failure.
"""
import gzip
import json
import os
import re
import shutil
import struct
import tempfile

import numpy as np
import torch

from lib_torch import NABLA, fail, run, spirals_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = "/usr/share/datasets/fashion-mnist"
TOL = 1e-5


def readme_blocks():
    """The README's Python blocks marked as run by this test, in order."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"<!-- tests/torch_import\.py runs this block -->\n```python\n(.*?)```",
                        text, re.S)
    if len(blocks) != 3:
        fail("README.md: three Python blocks marked for tests/torch_import.py", 3, len(blocks))
    return blocks


def metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)).get("__metadata__", {})


def predict_json(model_path, data, limit=None):
    args = ["predict", model_path, "--data", data, "--format", "json"]
    if limit:
        args += ["--limit", str(limit)]
    rows = json.loads(run(*args))
    return np.array([r["probabilities"] for r in rows], dtype=np.float64)


def compare(what, torch_probs, nabla_probs, tol=TOL):
    if torch_probs.shape != nabla_probs.shape:
        fail(what + ": probability table shapes", torch_probs.shape, nabla_probs.shape)
    worst = float(np.max(np.abs(torch_probs - nabla_probs)))
    if worst > tol:
        fail(what + ": probabilities differ by %.3g" % worst, "<= %g" % tol)
    print("ok: %s: %d rows within %.0e (worst %.1e)" % (what, len(torch_probs), tol, worst))


def read_idx_images(path, limit):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    n, rows, cols = struct.unpack(">III", raw[4:16])
    return np.frombuffer(raw[16:16 + limit * rows * cols], np.uint8).reshape(limit, rows * cols)


def read_idx_labels(path, limit):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    return np.frombuffer(raw[8:8 + limit], np.uint8)


def main():
    if not os.access(NABLA, os.X_OK):
        fail("the CLI", "an executable at " + NABLA, "missing (build it with make)")
    defs, usage, save_block = readme_blocks()
    ns = {}
    exec(compile(defs, "README.md (nabla -> PyTorch)", "exec"), ns)
    exec(compile(save_block, "README.md (save_safetensors)", "exec"), ns)
    load_nabla, save_safetensors, Normalize = ns["load_nabla"], ns["save_safetensors"], ns["Normalize"]
    if '"out/fashion-mnist.safetensors"' not in usage:
        fail("README.md's usage block loads out/fashion-mnist.safetensors", "that path", usage)

    def readme_usage(model_path, pixels):
        """The README's usage block on model_path and pixels; returns its probabilities."""
        scope = dict(ns, pixels=torch.from_numpy(np.ascontiguousarray(pixels, np.float32)))
        code = usage.replace('"out/fashion-mnist.safetensors"', repr(model_path))
        exec(compile(code, "README.md (usage)", "exec"), scope)
        return scope["probabilities"].double().numpy()

    tmp = tempfile.mkdtemp(prefix="nabla-torch-import-")
    try:
        # ---- 1. nabla -> torch ------------------------------------------------------------
        test_images = os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")
        if os.path.exists(test_images):
            limit = 1000
            path = os.path.join(tmp, "fashion.safetensors")
            run("train", "784-32-10", "--epochs", "1", "--seed", "3", "-q", "-o", path)
            pixels = read_idx_images(test_images, limit).astype(np.float32)
            labels = read_idx_labels(os.path.join(FASHION, "t10k-labels-idx1-ubyte.gz"), limit)
            probs = readme_usage(path, pixels)
            compare("Fashion-MNIST 784-32-10: the README's load_nabla", probs,
                    predict_json(path, "fashion-mnist-test", limit))
            net = load_nabla(path)[1]  # the weights alone, without Normalize
            with torch.no_grad():
                raw = net(torch.from_numpy(pixels)).argmax(1).numpy()
            acc, acc_raw = float(np.mean(probs.argmax(1) == labels)), float(np.mean(raw == labels))
            if not acc > acc_raw + 0.02:
                fail("the weights without the normalisation to do worse", "< %.3f" % acc, acc_raw)
            print("ok: with the stored normalisation %.1f %% of %d test images, without %.1f %%"
                  % (100 * acc, limit, 100 * acc_raw))
        elif os.environ.get("CI") == "true":
            fail("Fashion-MNIST in " + FASHION + " (CI counts a skip as a failure)")
        else:
            print("skip: the Fashion-MNIST part (no data in %s)" % FASHION)

        csv = os.path.join(tmp, "spirals.csv")
        xs, ys = spirals_csv(csv, 120, offset=(3.0, -1.0), scale=(2.0, 0.5))
        data = "csv:%s:label" % csv
        for mode in ("feature", "global", "none"):
            path = os.path.join(tmp, "spirals-%s.safetensors" % mode)
            run("train", "2-16-16-3:tanh", "--data", data, "--epochs", "20", "--batch", "32",
                "--normalize", mode, "-q", "-o", path)
            compare("spirals 2-16-16-3:tanh, --normalize %s: the README's load_nabla" % mode,
                    readme_usage(path, xs), predict_json(path, data))

        # ---- 2. torch -> nabla ------------------------------------------------------------
        torch.manual_seed(7)
        seq = torch.nn.Sequential(torch.nn.Linear(2, 24), torch.nn.ReLU(), torch.nn.Linear(24, 12),
                                  torch.nn.ReLU(), torch.nn.Linear(12, 3))
        with torch.no_grad():
            for p in seq.parameters():
                p.mul_(3.0)  # larger weights than the default, so the classes vary
        weights = os.path.join(tmp, "seq.safetensors")
        save_safetensors(weights, seq.state_dict())
        with torch.no_grad():
            want = torch.softmax(seq(torch.from_numpy(xs)).double(), 1).numpy()
        if len(set(want.argmax(1))) < 2:
            fail("the torch model's predictions", "at least two classes", set(want.argmax(1)))
        imported = os.path.join(tmp, "imported.safetensors")
        said = run("import", weights, "--model", "2-24-12-3", "--names", "sequential", "-o",
                   imported, stderr=True)
        for line in ("0.weight                 -> fc1.weight [24,2]",
                     "4.bias                   -> fc3.bias [3]"):
            if line not in said:
                fail("nabla import --names sequential lists the mapping", line, said)
        if json.loads(metadata(imported)["nabla.norm"])["mode"] != "none":
            fail("nabla import without --normalize: no normalisation", "mode none",
                 metadata(imported)["nabla.norm"])
        compare("torch nn.Sequential 2-24-12-3 -> nabla import --names sequential", want,
                predict_json(imported, data))

        # --normalize feature:SPEC: the data set's mean and (population) std per feature
        normed = os.path.join(tmp, "imported-norm.safetensors")
        run("import", weights, "--model", "2-24-12-3", "--names", "sequential", "-q",
            "--normalize", "feature:" + data, "-o", normed)
        norm = json.loads(metadata(normed)["nabla.norm"])
        if norm["mode"] != "feature" or \
                np.max(np.abs(np.array(norm["mean"]) - xs.astype(np.float64).mean(0))) > 1e-5 or \
                np.max(np.abs(np.array(norm["std"]) - xs.astype(np.float64).std(0))) > 1e-5:
            fail("--normalize feature:SPEC stores the data's mean and std",
                 (xs.mean(0), xs.std(0)), norm)
        with torch.no_grad():
            want_norm = torch.softmax(seq(Normalize(norm, 2)(torch.from_numpy(xs))).double(), 1).numpy()
        compare("nabla import --normalize feature:SPEC applies the data's statistics", want_norm,
                predict_json(normed, data))

        # mean-std:M,S and from:MODEL store exactly what they name
        run("import", weights, "--model", "2-24-12-3", "--names", "sequential", "-q",
            "--normalize", "mean-std:2.5,0.75", "-o", normed)
        norm = json.loads(metadata(normed)["nabla.norm"])
        if (norm["mode"], norm["mean"], norm["std"]) != ("global", [2.5], [0.75]):
            fail("--normalize mean-std:2.5,0.75", "global [2.5] [0.75]", norm)
        source = os.path.join(tmp, "spirals-feature.safetensors")
        run("import", weights, "--model", "2-24-12-3", "--names", "sequential", "-q",
            "--normalize", "from:" + source, "-o", normed)
        if metadata(normed)["nabla.norm"] != metadata(source)["nabla.norm"]:
            fail("--normalize from:MODEL copies its normalisation", metadata(source)["nabla.norm"],
                 metadata(normed)["nabla.norm"])
        print("ok: --normalize none (default), feature:SPEC, mean-std:M,S, from:MODEL")

        # a nabla model file as WEIGHTS: its normalisation is not taken unless asked
        said = run("import", source, "--model", "2-16-16-3:tanh", "-o", normed, stderr=True)
        if json.loads(metadata(normed)["nabla.norm"])["mode"] != "none" or "not used" not in said:
            fail("importing a nabla model file without --normalize: none, with a note",
                 "mode none and a note", (metadata(normed)["nabla.norm"], said))
        print("ok: a weights file's own nabla.norm is not baked in without --normalize from:")

        # fc-named weights in F16 (model.half()), no --names
        mlp = ns["MLP"]("2-24-12-3")
        with torch.no_grad():
            for (_, p), (_, q) in zip(mlp.named_parameters(), seq.named_parameters()):
                p.copy_(q)
        half = {k: v.half() for k, v in mlp.state_dict().items()}
        f16_path = os.path.join(tmp, "f16.safetensors")
        header, blobs, pos = {}, [], 0
        for k, v in half.items():
            blob = v.numpy().astype("<f2").tobytes()
            header[k] = {"dtype": "F16", "shape": list(v.shape), "data_offsets": [pos, pos + len(blob)]}
            blobs.append(blob)
            pos += len(blob)
        text = json.dumps(header).encode()
        with open(f16_path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
        mlp.load_state_dict({k: v.float() for k, v in half.items()})
        with torch.no_grad():
            want_half = torch.softmax(mlp(torch.from_numpy(xs)).double(), 1).numpy()
        run("import", f16_path, "--model", "2-24-12-3", "-q", "-o", imported)
        compare("F16 weights (model.half()) named fc1... -> nabla import", want_half,
                predict_json(imported, data))

        # a CNN with batch norm: conv weights [out, in, kh, kw], running statistics, and
        # num_batches_tracked as PyTorch keeps it (an int64 scalar), written with the README's
        # save_safetensors (F32) and as the safetensors package writes it (I64)
        if os.path.exists(test_images):
            torch.manual_seed(3)
            cnn = torch.nn.Sequential()
            cnn.conv1 = torch.nn.Conv2d(1, 4, 3, padding=1, bias=False)
            cnn.bn1 = torch.nn.BatchNorm2d(4)
            cnn.relu = torch.nn.ReLU()
            cnn.pool = torch.nn.MaxPool2d(2)
            cnn.flat = torch.nn.Flatten()
            cnn.fc1 = torch.nn.Linear(4 * 14 * 14, 10)
            pixels = read_idx_images(test_images, 200).astype(np.float32)
            x = torch.from_numpy(pixels).reshape(-1, 1, 28, 28)
            with torch.no_grad():
                for i in range(3):  # training-mode passes move the running statistics
                    cnn(x[64 * i:64 * (i + 1)])
                cnn.eval()
                want_cnn = torch.softmax(cnn(x).double(), 1).numpy()
            desc = os.path.join(tmp, "cnn.nb")
            with open(desc, "w") as f:
                f.write("x = input(1, 28, 28)\nconv1 = conv2d(x, 4, 3, padding=1, bias=false)\n"
                        "bn1 = batch_norm(conv1)\nr = relu(bn1)\np = max_pool2d(r, 2)\n"
                        "f = flatten(p)\nfc1 = linear(f, 10)\n")
            state = cnn.state_dict()
            if int(state["bn1.num_batches_tracked"]) != 3 or state["bn1.num_batches_tracked"].dim():
                fail("torch's num_batches_tracked", "an int64 scalar 3", state["bn1.num_batches_tracked"])
            cnn_f32, cnn_i64 = (os.path.join(tmp, n) for n in ("cnn-f32.safetensors", "cnn-i64.safetensors"))
            save_safetensors(cnn_f32, state)
            header, blobs, pos = {}, [], 0
            for k, v in state.items():
                integer = v.dtype == torch.int64
                blob = v.numpy().astype("<i8" if integer else "<f4").tobytes()
                header[k] = {"dtype": "I64" if integer else "F32", "shape": list(v.shape),
                             "data_offsets": [pos, pos + len(blob)]}
                blobs.append(blob)
                pos += len(blob)
            text = json.dumps(header).encode()
            with open(cnn_i64, "wb") as f:
                f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
            for weights_file in (cnn_f32, cnn_i64):
                run("import", weights_file, "--model", desc, "-q", "-o", imported)
                compare("a torch CNN with batch norm (%s) -> nabla import"
                        % os.path.basename(weights_file), want_cnn,
                        predict_json(imported, "fashion-mnist-test", 200), tol=1e-4)

        # ---- 3. nabla -> torch -> nabla ---------------------------------------------------
        back = os.path.join(tmp, "back.safetensors")
        save_safetensors(back, load_nabla(source)[1].state_dict())
        again = os.path.join(tmp, "again.safetensors")
        run("import", back, "--model", "2-16-16-3:tanh", "-q", "--normalize", "from:" + source,
            "-o", again)
        if not np.array_equal(predict_json(again, data), predict_json(source, data)):
            fail("nabla -> torch -> nabla import --normalize from:ORIGINAL gives the original's "
                 "predictions exactly")
        print("ok: nabla -> torch -> nabla: the same predictions, bit for bit")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("torch_import: all passed")


if __name__ == "__main__":
    main()
