#!/usr/bin/env python3
"""Writes the seed corpora for the libFuzzer harnesses in fuzz/ (run by scripts/fuzz.sh).

Usage: make-fuzz-seeds.py [--nabla PATH] DIR

Creates DIR/<harness>/ for idx, csv, safetensors, describe, model and checkpoint, each with
small valid inputs in that harness's input format, so the fuzzer starts from files the
loaders accept and mutates its way into every check:

  idx          3 bytes (little-endian split point, flags: 1 gzip images, 2 gzip labels,
               4 no labels file), then the images file and the labels file (fuzz/fuzz_idx.c);
               plain and gzipped IDX, idx3 and idx2
  csv          1 byte choosing the target column(s) (mod 7: none, "label", "0", "1", "y",
               "y,z", "1,0") and what they hold (/7 mod 3: class labels, regression targets,
               labels through the names cat, dog, 0), then
               the CSV text
  safetensors  files written by hand: an 8-byte little-endian header size, the JSON header
               padded with spaces to a multiple of 8, the little-endian F32 data
  describe     examples/*.nb, MLP shorthands and descriptions using every module, small
               CNNs (conv2d with each window option, poolings, batch_norm) that run
  model        nabla model files (safetensors with nabla.description, nabla.norm,
               nabla.classes); with --nabla, also one trained by the CLI
  checkpoint   checkpoints of the model "2-8-3" trained with SGD and momentum, the trainer
               fuzz/fuzz_checkpoint.c builds; with --nabla, also the CLI's own

The files are build outputs: regenerate them, do not commit them. Standard library only.
"""
import gzip
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def idx(dims, data):
    """An IDX ubyte file: two zero bytes, 0x08, the dimension count, big-endian sizes."""
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


def idx_input(images, labels=None, gz_images=False, gz_labels=False):
    """fuzz_idx's input: split point, flags, the two files."""
    flags = (1 if gz_images else 0) | (2 if gz_labels else 0) | (4 if labels is None else 0)
    return struct.pack("<H", len(images)) + bytes([flags]) + images + (labels or b"")


# struct codes of the dtypes nabla reads; BF16 is packed by hand (the upper half of F32)
PACK = {"F32": "f", "F16": "e", "F64": "d"}


def safetensors(tensors, metadata=None):
    """tensors: list of (name, shape, floats[, dtype]). The header is padded to a multiple
    of 8."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, shape, values, *rest in tensors:
        dtype = rest[0] if rest else "F32"
        n = 1
        for d in shape:
            n *= d
        assert len(values) == n, name
        if dtype == "BF16":
            blob = b"".join(struct.pack("<f", v)[2:] for v in values)
        else:
            blob = struct.pack("<%d%s" % (n, PACK[dtype]), *values)
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def floats(n, rng, scale=0.5):
    return [round(rng.uniform(-scale, scale), 4) for _ in range(n)]


def mlp_tensors(widths, rng, prefix="fc"):
    ts = []
    for i in range(1, len(widths)):
        ts.append(("%s%d.weight" % (prefix, i), [widths[i], widths[i - 1]],
                   floats(widths[i] * widths[i - 1], rng)))
        ts.append(("%s%d.bias" % (prefix, i), [widths[i]], floats(widths[i], rng)))
    return ts


def norm(mode, mean, std, features, eps=1e-5):
    return json.dumps({"mode": mode, "eps": eps, "features": features, "mean": mean, "std": std},
                      separators=(",", ":"))


def checkpoint_meta(epoch, step, optimizer=0, optim_steps=None, rng=None, dropout=None,
                    position=0, loss_sum=0.0, correct=0, best=None):
    """The trainer's state as src/train/train.c writes it (checkpoint_state)."""
    rng = rng or ["9e3779b97f4a7c15", "bf58476d1ce4e5b9", "94d049bb133111eb", "2545f4914f6cdd1d"]
    dropout = dropout or ["0123456789abcdef", "fedcba9876543210", "0f1e2d3c4b5a6978",
                          "8796a5b4c3d2e1f0"]
    state = {"epoch": epoch, "step": step, "position": position, "loss_sum": loss_sum,
             "correct": correct, "optimizer": optimizer,
             "optimizer_steps": step if optim_steps is None else optim_steps,
             "rng": rng, "dropout_rng": dropout}
    if best:  # (best_epoch, best_metric, wait, monitor): src/train/best.c
        state.update(zip(("best_epoch", "best_metric", "wait", "monitor"), best))
    return json.dumps(state, separators=(",", ":"))


def main():
    args = sys.argv[1:]
    nabla = None
    if len(args) >= 2 and args[0] == "--nabla":
        nabla, args = args[1], args[2:]
    if len(args) != 1:
        sys.stderr.write(__doc__)
        return 2
    out = args[0]
    rng = random.Random(4)
    written = {}

    def write(harness, name, data):
        d = os.path.join(out, harness)
        os.makedirs(d, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        written[harness] = written.get(harness, 0) + 1

    # ---- idx ----
    images = idx([6, 2, 3], [i * 37 % 256 for i in range(36)])
    labels = idx([6], [0, 1, 2, 0, 1, 2])
    write("idx", "plain", idx_input(images, labels))
    write("idx", "harness-gzips-both", idx_input(images, labels, True, True))
    write("idx", "harness-gzips-images", idx_input(images, labels, gz_images=True))
    write("idx", "gzip-payload", idx_input(gzip.compress(images, mtime=0),
                                          gzip.compress(labels, mtime=0)))
    write("idx", "images-only", idx_input(images))
    write("idx", "idx2-features", idx_input(idx([4, 5], range(20)), idx([4], [9, 0, 3, 255])))
    write("idx", "one-pixel", idx_input(idx([1, 1, 1], [200]), idx([1], [0]), True, False))
    write("idx", "gzip-images-only", idx_input(gzip.compress(idx([2, 3], range(6)), mtime=0)))

    # ---- csv ----
    write("csv", "label-name", "\x01a,b,label\n1,2,0\n3.5,-4e2,1\n0.25,1e-3,2\n")
    write("csv", "no-label", "\x00x,y\n1,2\n-1,0.5\n")
    write("csv", "label-index-0", "\x02label,f1,f2\n0,1,2\n2,3,4\n1,5,6\n")
    write("csv", "label-index-1", "\x03f,k\n1.5,1\n2.5,0\n")
    write("csv", "quoted-crlf-bom", '\x01\xef\xbb\xbf"a, b","say ""x""",label\r\n'
          '"1",  2 ,0\r\n\r\n 3 ,"4",1\r\n')
    write("csv", "column-y", "\x04x1,x2,x3,y\n0,0,0,3\n1,1,1,2\n\n\n2,2,2,1\n")
    write("csv", "tabs-blank-lines", "\x01\tp\t,\tlabel\n\n7,\t0\n   \n8,1")
    write("csv", "class-names", '\x01a,label\n1,dog\n2,cat\n3,"a bird"\n4,cat\n')
    write("csv", "targets-y-z", "\x0cx,y,z\n1,2.5,-3\n4,5e3,6\n")
    write("csv", "targets-by-index", "\x0dt0,t1,f\n1,2,3\n4,5,6\n")
    write("csv", "labels-through-names", "\x0fw,label\n1,cat\n2,dog\n3,0\n4,2\n")

    # ---- safetensors ----
    write("safetensors", "empty-header", safetensors([]))
    write("safetensors", "one-tensor", safetensors([("w", [2, 3], floats(6, rng))]))
    write("safetensors", "metadata", safetensors(
        [("a", [3], [1.0, -2.0, 0.5]), ("b.weight", [1, 2], [0.0, -0.0])],
        {"format": "pt", "note": "caf\u00e9 \"quoted\" \\ back"}))
    write("safetensors", "four-dims-and-scalar", safetensors(
        [("t4", [1, 2, 1, 2], floats(4, rng)), ("s", [], [3.25]), ("e", [0, 5], [])]))
    write("safetensors", "mlp", safetensors(mlp_tensors([2, 4, 3], rng)))
    write("safetensors", "dtypes", safetensors(
        [("h", [2, 2], [1.0, -2.0, 6e-8, 65504.0], "F16"), ("b", [3], [1.0, -3.140625, 0.5], "BF16"),
         ("d", [2], [0.1, -1e-50], "F64"), ("f", [1], [2.5])]))
    unpadded = json.dumps({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                          separators=(",", ":")).encode()
    write("safetensors", "unpadded", struct.pack("<Q", len(unpadded)) + unpadded
          + struct.pack("<f", 1.5))

    # ---- describe ----
    for name in sorted(os.listdir(os.path.join(ROOT, "examples"))):
        if name.endswith(".nb"):
            with open(os.path.join(ROOT, "examples", name), "rb") as f:
                write("describe", name, f.read())
    for i, text in enumerate(["784-256-128-10", "2-8-3", "2-8-3:tanh", "4-4:sigmoid",
                              "3-1", "10-20-30-40-50-5:relu"]):
        write("describe", "shorthand-%d" % i, text)
    write("describe", "every-module", """# every op once
x = input(2, 3)
f = flatten(x)
r = reshape(f, 3, 2)
g = flatten(r)
a = linear(g, 6, bias=false)
b = relu(a)
c = tanh(b)
d = sigmoid(c)
e = add(d, g)
m = max(e, g)
p = mul(m, e)
s = scale(p, 0.5)
o = dropout(s, p=0.25)
q = linear(o, 4)
sm = softmax(q)
ls = log_softmax(q)
y = labels()
l1 = nll(ls, y)
l2 = cross_entropy(q, y)
output q
""")
    write("describe", "regression", """x = input(3)
t = input(1)
h = linear(x, 1)
w = param(1)
loss = mse(h, t, reduction=sum)
""")
    # The convolutional ops, small enough that the harness runs forward and backward (the
    # full examples/fashion-cnn.nb is over its activation limit, so it is only parsed): the
    # CNN example scaled down, and each window option in turn.
    with open(os.path.join(ROOT, "examples", "fashion-cnn.nb")) as f:
        small = f.read()
    for big, little in [("input(1, 28, 28)", "input(1, 8, 8)"), ("conv2d(x, 32,", "conv2d(x, 4,"),
                        ("conv2d(pool1, 64,", "conv2d(pool1, 8,"), ("linear(flat, 128)", "linear(flat, 16)")]:
        assert big in small, "examples/fashion-cnn.nb no longer has " + big
        small = small.replace(big, little)
    write("describe", "cnn-small", small.encode())
    write("describe", "cnn-options", """x = input(4, 9, 7)
a = conv2d(x, 6, 3x2, stride=2x1, padding=1x0, dilation=2x1, groups=2)
b = batch_norm(a, momentum=0.5, eps=1e-3)
c = avg_pool2d(b, 2, stride=1, padding=1, count_include_pad=false)
d = max_pool2d(c, 3x2, stride=2, padding=1x1)
e = conv2d(d, 4, 1, padding=same, bias=true)
f = conv2d(e, 4, 3, padding=valid, groups=4)
g = global_avg_pool(f)
h = flatten(g)
o = linear(h, 3)
output o
""")
    write("describe", "cnn-pools", """x = input(2, 6, 6)
s = conv2d(x, 2, 5, padding=same, dilation=2)
p = avg_pool2d(s, 3, padding=1)
q = max_pool2d(p, 2x1, stride=1x2)
g = global_avg_pool(q)
r = reshape(g, 2)
t = tanh(r)
y = labels()
l = cross_entropy(t, y)
output t
""")
    write("describe", "norms-activations", """x = input(3, 4, 5)
a = leaky_relu(x, slope=0.2)
b = layer_norm(a, eps=1e-3, dims=2)
c = gelu(b)
d = layer_norm(c)
f = flatten(d)
o = linear(f, 3)
output o
""")
    write("describe", "reductions", """x = input(4)
s = sum(x)
m = mean(x)
n = nearest(x, 3)
output m
""")

    # ---- model ----
    rng = random.Random(5)
    write("model", "mlp-feature-norm", safetensors(mlp_tensors([2, 8, 3], rng), {
        "format": "pt", "nabla.version": "0.1.0", "nabla.description": "2-8-3",
        "nabla.norm": norm("feature", [0.1, -0.2], [0.5, 0.25], 2)}))
    write("model", "classes-no-norm", safetensors(mlp_tensors([4, 3], rng), {
        "format": "pt", "nabla.description": "4-3:tanh", "nabla.norm": norm("none", [], [], 4),
        "nabla.classes": "cat,dog,bird"}))
    desc = ("x = input(2, 2)\nh = flatten(x)\nfc = linear(h, 3)\nout = log_softmax(fc)\n")
    write("model", "channel-norm-log-softmax", safetensors(
        [("fc.weight", [3, 4], floats(12, rng)), ("fc.bias", [3], floats(3, rng))], {
            "nabla.description": desc, "nabla.norm": norm("channel", [0.0, 1.0], [1.0, 2.0], 4)}))
    write("model", "global-norm-param", safetensors(
        [("w", [3], floats(3, rng)), ("fc.weight", [2, 3], floats(6, rng))], {
            "nabla.description": "x = input(3)\nw = param(3)\nm = mul(x, x)\n"
                                 "fc = linear(m, 2, bias=false)\n",
            "nabla.norm": norm("global", [0.5], [2.0], 3)}))
    write("model", "nearest", safetensors(
        [("n.weight", [3, 2], floats(6, rng))],
        {"nabla.description": "x = input(2)\nn = nearest(x, 3)\n"}))
    write("model", "regression-appended-mse", safetensors(mlp_tensors([3, 4, 2], rng), {
        "nabla.description": "3-4-2", "nabla.loss": "mse", "nabla.norm": norm("none", [], [], 3),
        "nabla.target_norm": norm("feature", [10.0, -2.0], [3.0, 0.5], 2),
        "nabla.targets": "price,rent"}))
    write("model", "regression-described-mse", safetensors(
        [("y.weight", [1, 2], floats(2, rng)), ("y.bias", [1], floats(1, rng))], {
            "nabla.description": "x = input(2)\ny = linear(x, 1)\nt = input(1)\nl = mse(y, t)\n",
            "nabla.target_norm": norm("feature", [1.5], [2.0], 1), "nabla.targets": "y"}))
    write("model", "with-optim-state", safetensors(
        mlp_tensors([2, 3], rng) + [("optim.state.0", [9], floats(9, rng))],
        {"nabla.description": "2-3"}))

    # ---- checkpoint: the model 2-8-3 and SGD with momentum (one state buffer) ----
    rng = random.Random(6)
    params = 8 * 2 + 8 + 3 * 8 + 3
    for name, meta in [("epoch-0", checkpoint_meta(0, 0)),
                       ("epoch-1", checkpoint_meta(1, 4)),
                       ("mid-epoch", checkpoint_meta(0, 2, position=32, loss_sum=35.5,
                                                     correct=12)),
                       ("adam-kind", checkpoint_meta(0, 3, optimizer=1)),
                       ("best-kept", checkpoint_meta(1, 4, best=(1, 0.91, 0, "val_loss"))),
                       ("best-waiting", checkpoint_meta(3, 12, best=(1, 0.91, 2, "val_loss")))]:
        extra = [("optim.best", [params], floats(params, rng))] if "best" in name else []
        write("checkpoint", name, safetensors(
            mlp_tensors([2, 8, 3], rng) + [("optim.state.0", [params], floats(params, rng))] + extra, {
                "format": "pt", "nabla.description": "2-8-3",
                "nabla.norm": norm("feature", [0.0, 0.0], [1.0, 1.0], 2),
                "nabla.checkpoint": meta}))

    # ---- from the CLI, when built ----
    if nabla and os.access(nabla, os.X_OK):
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "m.safetensors")
            r = subprocess.run([nabla, "train", "2-8-3", "--data", "spirals:20:3", "--epochs", "1",
                                "-q", "-o", model], capture_output=True)
            if r.returncode == 0 and os.path.exists(model):
                write("model", "cli-2-8-3", open(model, "rb").read())
                write("safetensors", "cli-2-8-3", open(model, "rb").read())
                if os.path.exists(model + ".ckpt"):
                    write("checkpoint", "cli-2-8-3", open(model + ".ckpt", "rb").read())
            else:
                sys.stderr.write("make-fuzz-seeds: %s train failed (%d): %s\n"
                                 % (nabla, r.returncode, r.stderr.decode(errors="replace")))

    for h in sorted(written):
        print("%s/%s: %d seeds" % (out, h, written[h]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
