#!/usr/bin/env python3
"""nabla's model files used from PyTorch, and PyTorch's weights used by nabla.

torch 1.13 has no safetensors module, so the files are read and written here by hand
(json + struct + numpy).

1. nabla trains 784-32-10 on Fashion-MNIST for one epoch (and 2-16-16-3 on spirals written
   as CSV). This script reads the model file, load_state_dict(strict=True)s it into the
   equivalent torch.nn model (fc1, fc2, ... as the shorthand names them), normalises the
   inputs with __metadata__ "nabla.norm" (b' = (b - m) / max(s, eps)) and checks that torch's
   classes and softmax probabilities equal `nabla predict --format json` (within 1e-5).
2. The reverse: a torch model's state_dict, with the metadata nabla needs ("nabla.description"
   shorthand, "nabla.norm" of mode none, then one of mode feature), is written as safetensors
   here, and `nabla predict` must give torch's outputs.
3. Both ways for a description with layer_norm, leaky_relu and gelu (NormActNet below):
   nabla's trained file into torch.nn.LayerNorm/LeakyReLU/GELU with strict loading, and torch's
   weights (γ, β moved off their initial 1 and 0) back into nabla predict.

Run with /usr/bin/python3; the CLI is $NABLA (default $NABLA_BUILD/nabla, NABLA_BUILD
defaulting to build). Exits non-zero on the first failure.
"""
import gzip
import json
import os
import shutil
import struct
import sys
import tempfile

import numpy as np
import torch

from lib_torch import NABLA, fail, run, spirals_csv

FASHION = "/usr/share/datasets/fashion-mnist"
TOL = 1e-5


def read_safetensors(path):
    """Returns (tensors name -> float32 array, metadata dict), validating as it goes."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        fail(path + ": shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        fail(path + ": header runs past the end of the file", "<= %d" % (len(raw) - 8), n)
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] != "F32":
            fail(path + ": tensor %s" % name, "dtype F32", info["dtype"])
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end - begin != 4 * int(np.prod(shape, dtype=np.int64)) or end > len(data):
            fail(path + ": tensor %s: data_offsets %s do not fit shape %s" % (name, [begin, end], shape))
        tensors[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(shape).copy()
    return tensors, meta


def write_safetensors(path, tensors, metadata):
    offsets, pos, blobs = {}, 0, []
    for name, a in tensors.items():
        blob = np.ascontiguousarray(a, dtype="<f4").tobytes()
        offsets[name] = [pos, pos + len(blob)]
        pos += len(blob)
        blobs.append(blob)
    header = {"__metadata__": metadata}
    for name, a in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": offsets[name]}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


# ---- the torch side -----------------------------------------------------------------------

class MLP(torch.nn.Module):
    """The MLP shorthand "a-b-...-z": fc1, fc2, ... with ReLU between the layers."""

    def __init__(self, widths):
        super().__init__()
        self.n = len(widths) - 1
        for i in range(self.n):
            setattr(self, "fc%d" % (i + 1), torch.nn.Linear(widths[i], widths[i + 1]))

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self, "fc%d" % (i + 1))(x)
            if i + 1 < self.n:
                x = torch.relu(x)
        return x


NORM_ACT_DESC = """\
x  = input(2)
h1 = linear(x, 16)
n1 = layer_norm(h1)
a1 = leaky_relu(n1, 0.1)
h2 = linear(a1, 16)
n2 = layer_norm(h2, eps=1e-3)
a2 = gelu(n2)
out = linear(a2, 3)
"""


class NormActNet(torch.nn.Module):
    """NORM_ACT_DESC in torch.nn: the same names, so the state_dicts match key for key."""

    def __init__(self):
        super().__init__()
        self.h1, self.n1 = torch.nn.Linear(2, 16), torch.nn.LayerNorm(16)
        self.h2, self.n2 = torch.nn.Linear(16, 16), torch.nn.LayerNorm(16, eps=1e-3)
        self.out = torch.nn.Linear(16, 3)

    def forward(self, x):
        a1 = torch.nn.functional.leaky_relu(self.n1(self.h1(x)), 0.1)
        return self.out(torch.nn.functional.gelu(self.n2(self.h2(a1))))


def check_norm_activations(tmp, csv, xs):
    """Part 3: layer_norm, leaky_relu and gelu both ways."""
    desc = os.path.join(tmp, "normact.nb")
    with open(desc, "w") as f:
        f.write(NORM_ACT_DESC)
    path = os.path.join(tmp, "normact.safetensors")
    run("train", desc, "--data", "csv:%s:label" % csv, "--epochs", "20", "--batch", "32",
        "-q", "-o", path)
    tensors, meta = read_safetensors(path)
    net = NormActNet()
    try:
        net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    except RuntimeError as e:
        fail(path + ": load_state_dict(strict=True) into NormActNet", "success", e)
    if np.allclose(tensors["n1.weight"], 1) or np.allclose(tensors["n2.bias"], 0):
        fail(path + ": layer norms' γ and β trained", "moved from 1 and 0", "unchanged")
    norm = json.loads(meta["nabla.norm"])
    compare("layer_norm/leaky_relu/gelu (csv), nabla -> torch",
            torch_predict(net, normalise(xs, norm)),
            run("predict", path, "--data", "csv:%s:label" % csv, "--format", "json"))
    torch.manual_seed(11)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    back = os.path.join(tmp, "normact_from_torch.safetensors")
    write_safetensors(back, {k: v.numpy() for k, v in net.state_dict().items()}, meta)
    compare("layer_norm/leaky_relu/gelu, torch -> nabla predict",
            torch_predict(net, normalise(xs, norm)),
            run("predict", back, "--data", "csv:%s:label" % csv, "--format", "json"))


def normalise(x, norm):
    """b' = (b - m) / max(s, eps), in float32 as nabla does it."""
    mode = norm["mode"]
    if mode == "none":
        return x.astype(np.float32)
    if mode != "feature":
        fail("nabla.norm mode", "feature or none", mode)
    mean = np.array(norm["mean"], dtype=np.float32)
    std = np.array(norm["std"], dtype=np.float32)
    if mean.shape != (x.shape[1],) or std.shape != mean.shape:
        fail("nabla.norm arrays", "%d entries" % x.shape[1], "%s and %s" % (mean.shape, std.shape))
    d = np.maximum(std, np.float32(norm["eps"]))
    d = np.where(d > 0, d, np.float32(1)).astype(np.float32)  # eps = 0 and s = 0: unscaled
    return ((x.astype(np.float32) - mean) / d).astype(np.float32)


def torch_predict(model, x):
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        probs = torch.softmax(logits.double(), dim=1).numpy()
    return probs


def compare(what, probs, nabla_json):
    """nabla predict --format json against torch's probabilities."""
    rows = json.loads(nabla_json)
    if len(rows) != len(probs):
        fail(what + ": rows from nabla predict", len(probs), len(rows))
    got = np.array([r["probabilities"] for r in rows], dtype=np.float64)
    if got.shape != probs.shape:
        fail(what + ": probability table shape", probs.shape, got.shape)
    worst = float(np.max(np.abs(got - probs)))
    if worst > TOL:
        i = int(np.argmax(np.max(np.abs(got - probs), axis=1)))
        fail(what + ": probabilities differ by %.3g (row %d)" % (worst, i), probs[i], got[i])
    want_cls = probs.argmax(axis=1)
    for i, r in enumerate(rows):
        if r["index"] != i:
            fail(what + ": row index", i, r["index"])
        if r["class"] != want_cls[i]:
            # only a near-tie may be broken differently
            top = np.sort(probs[i])[-2:]
            if top[1] - top[0] > TOL:
                fail(what + ": class of row %d" % i, int(want_cls[i]), r["class"])
    print("ok: %s: %d rows, classes equal, probabilities within %.1e (worst %.2e)"
          % (what, len(rows), TOL, worst))


def check_state_dict(path, widths):
    """Reads nabla's file and loads it strictly into the torch model; returns (model, meta)."""
    tensors, meta = read_safetensors(path)
    for key in ("nabla.description", "nabla.norm"):
        if key not in meta:
            fail(path + ": __metadata__ key " + key, "present", sorted(meta))
    want = "-".join(str(w) for w in widths)
    if meta["nabla.description"] != want:
        fail(path + ": nabla.description", want, meta["nabla.description"])
    model = MLP(widths)
    state = {k: torch.from_numpy(v) for k, v in tensors.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        fail(path + ": load_state_dict(strict=True)", "success", e)
    for k, v in model.state_dict().items():
        if not np.array_equal(v.numpy(), tensors[k]):
            fail(path + ": tensor %s after load_state_dict" % k, "identical", "differs")
    return model, json.loads(meta["nabla.norm"])


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def main():
    if not os.access(NABLA, os.X_OK):
        fail("the CLI", "an executable at " + NABLA, "missing (build it with make)")
    tmp = tempfile.mkdtemp(prefix="nabla-torch-model-")
    skipped = False  # a part that cannot run here: exit 77 (SKIP), not 0
    try:
        # ---- 1a. Fashion-MNIST: nabla -> torch --------------------------------------------
        limit = 300
        if os.path.exists(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz")):
            model_path = os.path.join(tmp, "fashion.safetensors")
            run("train", "784-32-10", "--epochs", "1", "--seed", "3", "-q", "-o", model_path)
            model, norm = check_state_dict(model_path, [784, 32, 10])
            images = read_idx(os.path.join(FASHION, "t10k-images-idx3-ubyte.gz"))[:limit]
            x = normalise(images.reshape(limit, 784), norm)
            probs = torch_predict(model, x)
            compare("fashion-mnist 784-32-10, nabla -> torch", probs,
                    run("predict", model_path, "--data", "fashion-mnist-test", "--limit",
                        str(limit), "--format", "json"))
        else:
            print("SKIP: Fashion-MNIST not installed in " + FASHION + " (make deps)")
            skipped = True

        # ---- 1b. spirals as CSV, three layers: nabla -> torch ------------------------------
        csv = os.path.join(tmp, "spirals.csv")
        xs, _ = spirals_csv(csv, 150)
        model_path = os.path.join(tmp, "spirals.safetensors")
        run("train", "2-16-16-3", "--data", "csv:%s:label" % csv, "--epochs", "30",
            "--batch", "32", "-q", "-o", model_path)
        model, norm = check_state_dict(model_path, [2, 16, 16, 3])
        probs = torch_predict(model, normalise(xs, norm))
        compare("spirals 2-16-16-3 (csv), nabla -> torch", probs,
                run("predict", model_path, "--data", "csv:%s:label" % csv, "--format", "json"))

        # ---- 2. torch -> nabla -------------------------------------------------------------
        torch.manual_seed(7)
        widths = [2, 24, 12, 3]
        net = MLP(widths)
        with torch.no_grad():  # larger weights than the default, so the classes vary
            for p in net.parameters():
                p.mul_(3.0)
        path = os.path.join(tmp, "from_torch.safetensors")
        state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        write_safetensors(path, state, {
            "format": "pt",
            "nabla.description": "-".join(str(w) for w in widths),
            "nabla.norm": json.dumps({"mode": "none", "eps": 1e-5, "features": 2,
                                      "mean": [], "std": []}),
        })
        probs = torch_predict(net, xs)
        if len(set(probs.argmax(axis=1))) < 2:
            fail("torch model's predictions on the spirals", "at least two classes",
                 set(probs.argmax(axis=1)))
        compare("torch 2-24-12-3 -> nabla predict", probs,
                run("predict", path, "--data", "csv:%s:label" % csv, "--format", "json"))

        # a normalisation written here is applied by nabla: b' = (b - m) / max(s, eps)
        norm = {"mode": "feature", "eps": 1e-5, "features": 2, "mean": [0.125, -0.25],
                "std": [0.5, 2.0]}
        path_norm = os.path.join(tmp, "from_torch_norm.safetensors")
        write_safetensors(path_norm, state, {
            "nabla.description": "-".join(str(w) for w in widths),
            "nabla.norm": json.dumps(norm),
        })
        compare("torch 2-24-12-3 with a feature normalisation -> nabla predict",
                torch_predict(net, normalise(xs, norm)),
                run("predict", path_norm, "--data", "csv:%s:label" % csv, "--format", "json"))

        # the CSV output agrees with the JSON one
        out = run("predict", path, "--data", "csv:%s:label" % csv, "--limit", "7")
        lines = out.strip().split("\n")
        if lines[0] != "index,class,name,p0,p1,p2" or len(lines) != 8:
            fail("predict CSV: header and 7 rows", "index,class,name,p0,p1,p2 + 7 rows", out)
        for i, line in enumerate(lines[1:]):
            fields = line.split(",")
            p = np.array([float(v) for v in fields[3:]])
            if int(fields[0]) != i or int(fields[1]) != probs[i].argmax() or \
                    np.max(np.abs(p - probs[i])) > 1e-5:
                fail("predict CSV row %d" % i, probs[i], line)
        print("ok: torch -> nabla predict, CSV output")

        # ---- 3. layer_norm, leaky_relu, gelu both ways ---------------------------------------
        check_norm_activations(tmp, csv, xs)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if skipped:
        print("every check that ran passed; Fashion-MNIST skipped")
        sys.exit(77)
    print("all passed")


if __name__ == "__main__":
    main()
