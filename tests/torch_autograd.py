#!/usr/bin/python3
"""nabla's forward values and gradients against PyTorch autograd (1.13), on small models.

For each case the script writes a model description (the text nabla parses), random float32
data, parameters and an upstream gradient (numpy, fixed seed) as raw little-endian arrays,
runs tests/tool_autograd on them, builds the same computation by hand with
torch.nn.functional, and compares the model output and the gradient of every parameter and
every input. A tensor matches when |nabla − torch| ≤ ATOL + RTOL·|torch| element-wise and
everything is finite; the table shows the largest absolute and relative differences
(relative = |a − b| / max(|b|, ATOL)). Exit status 1 on any mismatch, missing tensor,
non-finite value or tool failure.

Conventions matched by hand (see src/loss/loss.c): nabla's MSE mean is 1/N Σ_p ‖y_p − ȳ_p‖², i.e.
mse_loss(reduction='sum') / N, not torch's mean over N·D; the classification losses average
over the batch like torch's default reduction='mean'. Dropout is in evaluation mode (the
tool never switches training on), where it is the identity.

Logits of magnitude 1e4 (the *_1e4 cases) go through cross_entropy, log_softmax + nll, and
softmax / log_softmax with a random upstream gradient: float32 resolves 1e4 only to ~1e-3,
so any code that forms m + log Σ exp(x − m) before subtracting m again loses the low digits
of every probability, which torch (and the fused cross-entropy) keep.

Run with /usr/bin/python3 from the repository root; the tool is looked up under $NABLA_BUILD
(default: build). Pass --keep to leave the data directories in place for inspection.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

TOOL = os.path.join(os.environ.get("NABLA_BUILD", "build"), "tests", "tool_autograd")
RTOL, ATOL = 1e-4, 1e-5
SEED = 20240611

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)


class Case:
    """One model: its description, its leaves and the same computation in torch.

    inputs:  {name: per-sample shape}       float inputs, gradients compared
    labels:  {name: classes}                int32 labels drawn in [0, classes)
    linears: {name: (in, out, bias)}        parameters "<name>.weight" [out, in], "<name>.bias"
    norms:   {name: shape}                  layer norms: "<name>.weight" (γ, drawn in
                                            [0.5, 1.5], not the initial 1, so that a γ missing
                                            from a gradient shows) and "<name>.bias" [shape]
    forward: f(t) -> output tensor, where t maps every input, labels and parameter name to a
             torch tensor (labels as int64)
    scalar:  the output is a scalar loss (backward from 1); otherwise a random seed is used
    data:    optional f(rng, arrays) that overrides the generated inputs in place
    training: run nabla's graph in training mode (tool_autograd --training), where label
             smoothing acts; such a model has no Dropout or batch norm
    """

    def __init__(self, name, desc, batch, inputs, forward, labels=None, linears=None,
                 scalar=False, data=None, norms=None, training=False):
        self.name, self.desc, self.batch = name, desc, batch
        self.inputs, self.labels, self.linears = inputs, labels or {}, linears or {}
        self.norms = norms or {}
        self.forward, self.scalar, self.data = forward, scalar, data
        self.training = training


# ---- the models ---------------------------------------------------------------------------

def mynet(t):
    h = t["x"].flatten(1)
    r1 = F.relu(F.linear(h, t["fc1.weight"], t["fc1.bias"]))
    r2 = F.relu(F.linear(r1, t["fc2.weight"], t["fc2.bias"]))
    return F.linear(r2, t["fc3.weight"], t["fc3.bias"])


def dag(t):
    x = t["x"]
    a = F.linear(x, t["a.weight"], t["a.bias"])
    b = F.relu(a)
    c = F.linear(b, t["c.weight"], t["c.bias"])
    s = x + c                  # residual Add: x fans out to a and s
    m = torch.maximum(b, c)    # b and c both fan out
    z = F.linear(s * m, t["z.weight"], t["z.bias"])
    return F.cross_entropy(z, t["y"])


def logsoftmax_nll(t):
    h = torch.tanh(F.linear(t["x"], t["fc.weight"], t["fc.bias"]))
    lp = F.log_softmax(F.linear(h, t["out.weight"], t["out.bias"]), dim=-1)
    return F.nll_loss(lp, t["y"])


def chain(t):
    a = F.linear(t["x"], t["a.weight"], t["a.bias"])
    th = torch.tanh(a)
    b = F.linear(th, t["b.weight"], t["b.bias"])
    s = torch.sigmoid(b)
    p = F.softmax(b, dim=-1)
    v = (p * 2.5) * s + th
    sm = v.sum(dim=1, keepdim=True)
    mn = s.mean(dim=1, keepdim=True)
    return sm * mn


def softmax_out(t):
    return F.softmax(F.linear(t["x"], t["fc.weight"], t["fc.bias"]), dim=-1)


def log_softmax_out(t):
    return F.log_softmax(F.linear(t["x"], t["fc.weight"], None), dim=-1)


def mse(reduction):
    def f(t):
        p = F.linear(torch.sigmoid(F.linear(t["x"], t["h.weight"], t["h.bias"])),
                     t["p.weight"], t["p.bias"])
        loss = F.mse_loss(p, t["target"], reduction="sum")
        return loss / t["x"].shape[0] if reduction == "mean" else loss
    return f


def big_logits(t):
    return F.cross_entropy(t["x"] * 10000.0, t["y"])


def smoothed(eps, scale=1.0):
    """F.cross_entropy with label smoothing eps on the logits x (times scale)."""
    return lambda t: F.cross_entropy(t["x"] * scale, t["y"], label_smoothing=eps)


def smoothing_case(name, eps, classes, batch, training=True):
    """cross_entropy(x, y, label_smoothing=eps) on logits x of `classes` classes; in evaluation
    mode nabla's loss is the plain one, which torch computes with eps 0."""
    desc = f"x = input({classes})\ny = labels()\nloss = cross_entropy(x, y, label_smoothing={eps})\n"
    return Case(name, desc, batch, {"x": (classes,)}, smoothed(eps if training else 0.0),
                labels={"y": classes}, scalar=True, training=training)


def smoothed_mlp(t):
    z = F.linear(torch.tanh(F.linear(t["x"], t["h.weight"], t["h.bias"])), t["z.weight"], t["z.bias"])
    return F.cross_entropy(z, t["y"], label_smoothing=0.1)


def big_logits_nll(t):
    return F.nll_loss(F.log_softmax(t["x"] * 10000.0, dim=-1), t["y"])


def big_logits_data(rng, arrays):
    """Logits 1e4·x: spread rows (gaps of thousands: softmax is one-hot), rows clustered
    around ±1e4 with O(1) gaps (exp would overflow or underflow without max-subtraction, yet
    the gradient is not trivial), and a row with a two-way tie at the top."""
    x = arrays["x"]
    n, c = x.shape
    x[:] = rng.standard_normal((n, c)).astype(np.float32)
    x[1] = (1.0 + 1e-4 * rng.standard_normal(c)).astype(np.float32)
    x[2] = (-1.0 + 1e-4 * rng.standard_normal(c)).astype(np.float32)
    x[3] = (0.5 + 2e-4 * rng.standard_normal(c)).astype(np.float32)
    x[4] = x[1]
    x[4, 2] = x[4, 0] = x[4].max()  # tie between classes 0 and 2


def big_softmax(t):
    return F.softmax(t["x"] * 10000.0, dim=-1)


def big_log_softmax(t):
    return F.log_softmax(t["x"] * 10000.0, dim=-1)


def dropout_eval(t):
    a = F.linear(t["x"], t["a.weight"], t["a.bias"])
    r = F.relu(F.dropout(a, p=0.5, training=False))
    return F.linear(r, t["o.weight"], t["o.bias"])


def activations(t):
    """LeakyReLU at three slopes and the exact GELU, on inputs up to ±6 (GELU's tails)."""
    x = t["x"]
    l1 = F.leaky_relu(F.linear(x, t["a.weight"], t["a.bias"]))  # negative_slope 0.01
    g = F.gelu(F.linear(l1, t["b.weight"], t["b.bias"]))  # approximate='none'
    l2 = F.leaky_relu(g, 0.2)
    l3 = F.leaky_relu(x, -0.5)
    return F.gelu(l2 + l3)


def activations_data(rng, arrays):
    arrays["x"][:] = (6 * rng.uniform(-1, 1, arrays["x"].shape)).astype(np.float32)


def layer_norms(t):
    """LayerNorm over a whole [3, 4, 5] sample, over its last dimension, over its last two, and
    over a Linear's [N, D] output, then GELU and cross-entropy."""
    x = t["x"]
    whole = F.layer_norm(x, (3, 4, 5), t["n1.weight"], t["n1.bias"], eps=1e-5)
    last = F.layer_norm(whole, (5,), t["n2.weight"], t["n2.bias"], eps=1e-3)
    last2 = F.layer_norm(last, (4, 5), t["n3.weight"], t["n3.bias"], eps=1e-5)
    h = F.linear(last2.flatten(1), t["h.weight"], t["h.bias"])
    n4 = F.layer_norm(h, (12,), t["n4.weight"], t["n4.bias"], eps=1e-5)
    z = F.linear(F.gelu(n4), t["z.weight"], t["z.bias"])
    return F.cross_entropy(z, t["y"])


CASES = [
    Case("mynet", """\
# the lecture's mynet
x   = input(3, 10, 20)
h   = flatten(x)
fc1 = linear(h, 60)
r1  = relu(fc1)
fc2 = linear(r1, 40)
r2  = relu(fc2)
fc3 = linear(r2, 10)
output fc3
""", 4, {"x": (3, 10, 20)}, mynet,
         linears={"fc1": (600, 60, True), "fc2": (60, 40, True), "fc3": (40, 10, True)}),

    Case("dag", """\
# fan-out, a residual Add, a Max and a Mul, then cross-entropy
x = input(16)
a = linear(x, 16)
b = relu(a)
c = linear(b, 16)
s = add(x, c)
m = max(b, c)
t = mul(s, m)
z = linear(t, 5)
y = labels()
loss = cross_entropy(z, y)
""", 6, {"x": (16,)}, dag, labels={"y": 5}, scalar=True,
         linears={"a": (16, 16, True), "c": (16, 16, True), "z": (16, 5, True)}),

    Case("log_softmax_nll", """\
x   = input(12)
fc  = linear(x, 9)
h   = tanh(fc)
out = linear(h, 7)
lp  = log_softmax(out)
y   = labels()
loss = nll(lp, y)
output loss
""", 5, {"x": (12,)}, logsoftmax_nll, labels={"y": 7}, scalar=True,
         linears={"fc": (12, 9, True), "out": (9, 7, True)}),

    Case("chain", """\
# tanh, sigmoid, softmax, scale, mul, add, sum, mean
x  = input(8)
a  = linear(x, 6)
th = tanh(a)
b  = linear(th, 6)
s  = sigmoid(b)
p  = softmax(b)
q  = scale(p, 2.5)
u  = mul(q, s)
v  = add(u, th)
sm = sum(v)
mn = mean(s)
w  = mul(sm, mn)
""", 5, {"x": (8,)}, chain, linears={"a": (8, 6, True), "b": (6, 6, True)}),

    Case("softmax_out", """\
x  = input(7)
fc = linear(x, 5)
p  = softmax(fc)
""", 3, {"x": (7,)}, softmax_out, linears={"fc": (7, 5, True)}),

    Case("log_softmax_out", """\
x  = input(7)
fc = linear(x, 5, bias=false)
lp = log_softmax(fc)
""", 1, {"x": (7,)}, log_softmax_out, linears={"fc": (7, 5, False)}),

    Case("mse_mean", """\
x      = input(5)
h      = linear(x, 4)
sh     = sigmoid(h)
p      = linear(sh, 3)
target = input(3)
loss   = mse(p, target)
""", 7, {"x": (5,), "target": (3,)}, mse("mean"), scalar=True,
         linears={"h": (5, 4, True), "p": (4, 3, True)}),

    Case("mse_sum", """\
x      = input(5)
h      = linear(x, 4)
sh     = sigmoid(h)
p      = linear(sh, 3)
target = input(3)
loss   = mse(p, target, reduction=sum)
""", 7, {"x": (5,), "target": (3,)}, mse("sum"), scalar=True,
         linears={"h": (5, 4, True), "p": (4, 3, True)}),

    Case("cross_entropy_1e4", """\
# logits of magnitude 1e4
x = input(6)
z = scale(x, 10000)
y = labels()
loss = cross_entropy(z, y)
""", 8, {"x": (6,)}, big_logits, labels={"y": 6}, scalar=True, data=big_logits_data),

    # Label smoothing (training mode): torch's F.cross_entropy(label_smoothing=eps) for a few
    # eps, after a network, over 150 rows (three of the forward's 64-row blocks), on logits of
    # magnitude 1e4; and in evaluation mode the plain cross-entropy, whatever eps says.
    Case("smoothing_0.1_mlp", """\
x = input(9)
h = linear(x, 8)
t = tanh(h)
z = linear(t, 7)
y = labels()
loss = cross_entropy(z, y, label_smoothing=0.1)
""", 6, {"x": (9,)}, smoothed_mlp, labels={"y": 7}, scalar=True, training=True,
         linears={"h": (9, 8, True), "z": (8, 7, True)}),

    smoothing_case("smoothing_0.25_150rows", 0.25, 10, 150),
    smoothing_case("smoothing_0.9", 0.9, 4, 5),

    Case("smoothing_0.05_1e4", """\
x = input(6)
z = scale(x, 10000)
y = labels()
loss = cross_entropy(z, y, label_smoothing=0.05)
""", 8, {"x": (6,)}, smoothed(0.05, 10000.0), labels={"y": 6}, scalar=True, training=True,
         data=big_logits_data),

    smoothing_case("smoothing_0.3_eval", 0.3, 5, 7, training=False),

    Case("log_softmax_nll_1e4", """\
# the same logits through log_softmax + nll
x  = input(6)
z  = scale(x, 10000)
lp = log_softmax(z)
y  = labels()
loss = nll(lp, y)
""", 8, {"x": (6,)}, big_logits_nll, labels={"y": 6}, scalar=True, data=big_logits_data),

    Case("softmax_1e4", """\
x = input(6)
z = scale(x, 10000)
p = softmax(z)
""", 8, {"x": (6,)}, big_softmax, data=big_logits_data),

    Case("log_softmax_1e4", """\
x  = input(6)
z  = scale(x, 10000)
lp = log_softmax(z)
""", 8, {"x": (6,)}, big_log_softmax, data=big_logits_data),

    Case("dropout_eval", """\
x = input(10)
a = linear(x, 8)
d = dropout(a, 0.5)
r = relu(d)
o = linear(r, 4)
""", 5, {"x": (10,)}, dropout_eval, linears={"a": (10, 8, True), "o": (8, 4, True)}),

    Case("leaky_relu_gelu", """\
x  = input(6)
a  = linear(x, 7)
l1 = leaky_relu(a)
b  = linear(l1, 6)
g  = gelu(b)
l2 = leaky_relu(g, 0.2)
l3 = leaky_relu(x, slope=-0.5)
s  = add(l2, l3)
o  = gelu(s)
""", 9, {"x": (6,)}, activations, linears={"a": (6, 7, True), "b": (7, 6, True)},
         data=activations_data),

    Case("layer_norm", """\
# whole sample, last dim, last two dims, then [N, D] after a Linear
x  = input(3, 4, 5)
n1 = layer_norm(x)
n2 = layer_norm(n1, dims=1, eps=1e-3)
n3 = layer_norm(n2, dims=2)
f  = flatten(n3)
h  = linear(f, 12)
n4 = layer_norm(h)
g  = gelu(n4)
z  = linear(g, 6)
y  = labels()
loss = cross_entropy(z, y)
""", 5, {"x": (3, 4, 5)}, layer_norms, labels={"y": 6}, scalar=True,
         linears={"h": (60, 12, True), "z": (12, 6, True)},
         norms={"n1": (3, 4, 5), "n2": (5,), "n3": (4, 5), "n4": (12,)}),
]


# ---- running and comparing ----------------------------------------------------------------

def make_data(case, rng):
    """float32 / int32 arrays for every leaf, and the upstream gradient (None for a loss)."""
    arrays, labels = {}, {}
    for name, shape in case.inputs.items():
        arrays[name] = rng.standard_normal((case.batch,) + tuple(shape)).astype(np.float32)
    if case.data:
        case.data(rng, arrays)
    for name, classes in case.labels.items():
        labels[name] = rng.integers(0, classes, case.batch).astype(np.int32)
    for name, shape in case.norms.items():
        arrays[name + ".weight"] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        arrays[name + ".bias"] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    for name, (fan_in, fan_out, bias) in case.linears.items():
        bound = 1.0 / np.sqrt(fan_in)  # PyTorch's Linear default range
        arrays[name + ".weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        if bias:
            arrays[name + ".bias"] = rng.uniform(-bound, bound, fan_out).astype(np.float32)
    return arrays, labels


def run_torch(case, arrays, labels, seed):
    t = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    t.update({k: torch.tensor(v.astype(np.int64)) for k, v in labels.items()})
    out = case.forward(t)
    if case.scalar:
        out = out.reshape(1)  # nabla's losses are [1]
        out.backward(torch.ones(1))
    else:
        out.backward(torch.tensor(seed))
    grads = {k: t[k].grad.numpy() if t[k].grad is not None else np.zeros_like(v)
             for k, v in arrays.items()}
    return out.detach().numpy(), grads


def read_manifest(out_dir):
    """{(kind, node): array} from the tool's output directory."""
    result = {}
    with open(os.path.join(out_dir, "manifest.txt"), encoding="utf-8") as f:
        for line in f:
            kind, node, file, *dims = line.split()
            a = np.fromfile(os.path.join(out_dir, file), dtype="<f4")
            shape = tuple(int(d) for d in dims)
            if a.size != int(np.prod(shape)):
                raise ValueError(f"{file}: {a.size} floats, manifest says {shape}")
            result[(kind, node)] = a.reshape(shape)
    return result


def run_nabla(case, arrays, labels, seed, work):
    data, out = os.path.join(work, "data"), os.path.join(work, "out")
    os.makedirs(data)
    model = os.path.join(work, case.name + ".nb")
    with open(model, "w", encoding="utf-8") as f:
        f.write(case.desc)
    for name, a in arrays.items():
        a.astype("<f4").tofile(os.path.join(data, name + ".bin"))
    for name, a in labels.items():
        a.astype("<i4").tofile(os.path.join(data, name + ".i32"))
    if seed is not None:
        seed.astype("<f4").tofile(os.path.join(data, "seed.bin"))
    args = [TOOL] + (["--training"] if case.training else []) + [model, data, out]
    r = subprocess.run(args, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"tool_autograd exited {r.returncode}: {r.stderr.strip()}")
    return read_manifest(out)


def compare(a, b):
    """(ok, max abs difference, max relative difference, all finite)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    finite = bool(np.all(np.isfinite(a64)) and np.all(np.isfinite(b64)))
    if a.size == 0:
        return True, 0.0, 0.0, finite
    diff = np.abs(a64 - b64)
    diff = np.where(np.isnan(diff), np.inf, diff)
    ok = finite and bool(np.all(diff <= ATOL + RTOL * np.abs(b64)))
    rel = diff / np.maximum(np.abs(b64), ATOL)
    return ok, float(diff.max()), float(rel.max()), finite


def check_case(case, rng, work, rows):
    """Runs one case; appends table rows; returns the number of failures."""
    arrays, labels = make_data(case, rng)
    seed = None
    if not case.scalar:
        # a random upstream gradient: all-ones would hide transposes and zero softmax's
        probe = {k: torch.tensor(v) for k, v in arrays.items()}
        probe.update({k: torch.tensor(v.astype(np.int64)) for k, v in labels.items()})
        with torch.no_grad():
            shape = case.forward(probe).shape
        seed = rng.standard_normal(tuple(shape)).astype(np.float32)
    want_out, want_grads = run_torch(case, arrays, labels, seed)
    try:
        got = run_nabla(case, arrays, labels, seed, work)
    except (RuntimeError, OSError, ValueError) as e:
        rows.append((case.name, "(tool)", "-", "-", "-", "FAIL", str(e)))
        return 1
    expected = {("output", "output"): want_out}
    for name, g in want_grads.items():
        expected[("input" if name in case.inputs else "param", name)] = g
    got_out = {k for k in got if k[0] == "output"}
    if len(got_out) != 1:
        rows.append((case.name, "output", "-", "-", "-", "FAIL", "no output in the manifest"))
        return 1
    got[("output", "output")] = got.pop(got_out.pop())
    failures = 0
    rank = {"output": 0, "input": 1, "param": 2}
    for key in sorted(set(expected) | set(got), key=lambda k: (rank.get(k[0], 3), k[1])):
        kind, name = key
        label = "output" if kind == "output" else "d" + name
        if key not in got or key not in expected:
            why = "nabla did not write it" if key not in got else "torch has no such tensor"
            rows.append((case.name, label, "-", "-", "-", "FAIL", why))
            failures += 1
            continue
        a, b = got[key], expected[key]
        if a.shape != b.shape:
            rows.append((case.name, label, "-", "-", "-", "FAIL",
                         f"shape {a.shape} vs torch {b.shape}"))
            failures += 1
            continue
        ok, dabs, drel, finite = compare(a, b)
        note = "" if finite else "non-finite"
        rows.append((case.name, label, str(a.size), f"{dabs:.3g}", f"{drel:.3g}",
                     "ok" if ok else "FAIL", note))
        failures += not ok
    return failures


def main():
    if not os.access(TOOL, os.X_OK):
        sys.exit(f"{TOOL}: not built (make {TOOL})")
    keep = "--keep" in sys.argv[1:]
    rng = np.random.default_rng(SEED)
    root = tempfile.mkdtemp(prefix="nabla-autograd-")
    rows, failures = [], 0
    try:
        for case in CASES:
            work = os.path.join(root, case.name)
            os.makedirs(work)
            failures += check_case(case, rng, work, rows)
    finally:
        if keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    head = ("model", "tensor", "elems", "max |Δ|", "max rel", "", "")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*head[:5]))
    for r in rows:
        print((fmt.format(*r[:5]) + "  " + r[5] + ("  " + r[6] if r[6] else "")).rstrip())
    print(f"{len(CASES)} models, {len(rows)} tensors, {failures} mismatches "
          f"(tolerance |Δ| ≤ {ATOL:g} + {RTOL:g}·|torch|)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
