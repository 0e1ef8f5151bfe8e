#!/usr/bin/python3
"""nabla's convolutional networks against torch.nn (1.13): conv2d (padding, stride, groups,
dilation, padding='same', no bias), max/avg/global pooling and batch norm (2-D and 1-D) in
training mode.

For each case the script builds the torch model, writes its initial parameters and random
batches as raw arrays, runs tests/tool_conv, and compares:
  - batch 0 from the initial weights: logits, loss, the gradient of every parameter and of
    the input, and the running statistics after that forward (momentum 0.1, unbiased var);
  - after several steps of SGD with momentum and weight decay, then of Adam: every parameter
    and every buffer, and the logits in evaluation mode (running statistics);
  - the model file nabla saved loads into the torch model with load_state_dict(strict=True)
    (num_batches_tracked, a float in the file, into torch's int64 buffer) and gives the same
    evaluation logits; and back: torch's trained state_dict written as safetensors (its
    num_batches_tracked as float32) with nabla's description loads in nabla (tool_conv eval)
    with the same logits.
A bias right before a batch norm is left out (bias=false): its gradient is zero up to
rounding, which Adam's normalised step would amplify into noise. Tolerances: float32 sums in different orders (im2col + GEMM vs torch's kernels) over a few
steps: |a − b| ≤ ATOL + RTOL·|b|. Exit status 1 on any mismatch.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib_torch import fail  # noqa: E402
from torch_model_file import read_safetensors, write_safetensors  # noqa: E402

TOOL = os.path.join(os.environ.get("NABLA_BUILD", "build"), "tests", "tool_conv")
RTOL, ATOL = 2e-4, 2e-5
STEP_RTOL, STEP_ATOL = 1e-3, 1e-4   # after several optimiser steps

torch.set_num_threads(1)
# torch notes that padding='same' with an even kernel copies the input: that is the case tested
warnings.filterwarnings("ignore", message="Using padding='same'")
torch.use_deterministic_algorithms(True)


class NetA(nn.Module):
    desc = """x  = input(2, 10, 9)
c1 = conv2d(x, 4, 3, padding=1, bias=false)
b1 = batch_norm(c1)
r1 = relu(b1)
p1 = max_pool2d(r1, 2)
c2 = conv2d(p1, 6, 3x2, stride=2x1, padding=1x0, groups=2, bias=false)
b2 = batch_norm(c2, momentum=0.2)
r2 = relu(b2)
a2 = avg_pool2d(r2, 2, stride=1, padding=1)
fl = flatten(a2)
f1 = linear(fl, 16, bias=false)
b3 = batch_norm(f1)
r3 = relu(b3)
f2 = linear(r3, 5)
"""
    shape = (2, 10, 9)

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(4)
        self.c2 = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), groups=2, bias=False)
        self.b2 = nn.BatchNorm2d(6, momentum=0.2)
        self.f1 = nn.Linear(96, 16, bias=False)
        self.b3 = nn.BatchNorm1d(16)
        self.f2 = nn.Linear(16, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.avg_pool2d(F.relu(self.b2(self.c2(x))), 2, stride=1, padding=1)
        return self.f2(F.relu(self.b3(self.f1(x.flatten(1)))))


class NetB(nn.Module):
    desc = """x  = input(3, 9, 8)
c1 = conv2d(x, 4, 3, dilation=2, padding=same, bias=false)
b1 = batch_norm(c1, eps=1e-3)
r1 = relu(b1)
p1 = max_pool2d(r1, 3, stride=2, padding=1)
c2 = conv2d(p1, 4, 2, padding=same, groups=4)
g  = global_avg_pool(c2)
f  = linear(g, 5)
"""
    shape = (3, 9, 8)

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, dilation=2, padding="same", bias=False)
        self.b1 = nn.BatchNorm2d(4, eps=1e-3)
        self.c2 = nn.Conv2d(4, 4, 2, padding="same", groups=4)
        self.f = nn.Linear(4, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 3, stride=2, padding=1)
        return self.f(self.c2(x).mean(dim=(2, 3)))


class NetC(nn.Module):
    """examples/fashion-cnn.nb at full size, without its dropout (whose draws differ)."""
    desc = """x     = input(1, 28, 28)
conv1 = conv2d(x, 32, 3, padding=1, bias=false)
bn1   = batch_norm(conv1)
relu1 = relu(bn1)
pool1 = max_pool2d(relu1, 2)
conv2 = conv2d(pool1, 64, 3, padding=1, bias=false)
bn2   = batch_norm(conv2)
relu2 = relu(bn2)
pool2 = max_pool2d(relu2, 2)
flat  = flatten(pool2)
fc1   = linear(flat, 128)
relu3 = relu(fc1)
fc2   = linear(relu3, 5)
"""
    shape = (1, 28, 28)

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def compare(case, what, a, b, rtol=RTOL, atol=ATOL):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        fail("%s: %s: shape" % (case, what), b.shape, a.shape)
    if not np.all(np.isfinite(a)):
        fail("%s: %s: nabla has non-finite values" % (case, what))
    diff = np.abs(a - b)
    bad = diff > atol + rtol * np.abs(b)
    worst = float(diff.max()) if diff.size else 0.0
    if bad.any():
        i = np.unravel_index(np.argmax(diff - rtol * np.abs(b)), a.shape)
        fail("%s: %s differs from torch (max |diff| %.3g)" % (case, what, worst),
             "torch %r at %s" % (float(b[i]), i), "nabla %r" % float(a[i]))
    return worst


def load(path, shape):
    return np.fromfile(path, dtype="<f4").reshape(shape)


def run_case(net_cls, tmp, optimizer, steps=4, batch=6):
    name = "%s/%s" % (net_cls.__name__, optimizer)
    torch.manual_seed(11)
    net = net_cls()
    with torch.no_grad():  # γ, β away from 1, 0 so that their gradients matter
        for m in net.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
    data, out = os.path.join(tmp, "data"), os.path.join(tmp, "out-" + optimizer)
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(tmp, "model.nb"), "w") as f:
        f.write(net_cls.desc)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((steps * batch,) + net_cls.shape).astype(np.float32)
    y = rng.integers(0, 5, steps * batch).astype(np.int32)
    x.tofile(os.path.join(data, "x.bin"))
    y.tofile(os.path.join(data, "y.i32"))
    params = {k: v.detach().numpy().copy() for k, v in net.named_parameters()}
    for k, v in params.items():
        v.astype("<f4").tofile(os.path.join(data, k + ".bin"))
    lr, momentum, wd = (0.05, 0.9, 5e-4) if optimizer == "sgd" else (0.01, 0.0, 1e-4)
    p = subprocess.run([TOOL, "train", os.path.join(tmp, "model.nb"), data, out, str(batch),
                        str(steps), optimizer, str(lr), str(momentum), str(wd)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        fail("%s: tool_conv" % name, "exit status 0", "%d: %s" % (p.returncode, p.stderr))
    buffers = {k: v for k, v in net.state_dict().items() if k not in params}
    initial = {k: v.clone() for k, v in net.state_dict().items()}

    # batch 0 from the initial weights, training mode
    net.train()
    xb = torch.tensor(x[:batch], requires_grad=True)
    logits = net(xb)
    loss = F.cross_entropy(logits, torch.tensor(y[:batch], dtype=torch.int64))
    loss.backward()
    worst = compare(name, "logits", load(os.path.join(out, "output.bin"), logits.shape), logits.detach())
    worst = max(worst, compare(name, "loss", load(os.path.join(out, "loss.bin"), (1,)), [loss.item()]))
    worst = max(worst, compare(name, "dC/dx", load(os.path.join(out, "x.grad.bin"), xb.shape), xb.grad))
    for k, v in net.named_parameters():
        worst = max(worst, compare(name, "dC/d" + k, load(os.path.join(out, k + ".grad.bin"), v.shape), v.grad))
    for k, v in net.state_dict().items():
        if k in buffers:
            worst = max(worst, compare(name, k + " after one forward",
                                       load(os.path.join(out, k + ".step0.bin"), v.shape), v.float()))
    print("  %-12s batch 0: logits, loss, %d gradients, %d buffers agree (max |diff| %.2e)"
          % (name, len(params) + 1, len(buffers), worst))

    # the optimiser's steps from the same start
    net.load_state_dict(initial)
    opt = (torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
           if optimizer == "sgd" else torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd))
    for b in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(torch.tensor(x[b * batch:(b + 1) * batch])),
                        torch.tensor(y[b * batch:(b + 1) * batch], dtype=torch.int64)).backward()
        opt.step()
    worst = 0.0
    for k, v in net.state_dict().items():
        worst = max(worst, compare(name, "%s after %d steps" % (k, steps),
                                   load(os.path.join(out, k + ".final.bin"), v.shape), v.float(),
                                   STEP_RTOL, STEP_ATOL))
    net.eval()
    with torch.no_grad():
        ev = net(torch.tensor(x[:batch]))
    worst = max(worst, compare(name, "evaluation logits", load(os.path.join(out, "eval.bin"), ev.shape),
                               ev, STEP_RTOL, STEP_ATOL))
    print("  %-12s %d steps: %d tensors and the evaluation logits agree (max |diff| %.2e)"
          % (name, steps, len(net.state_dict()), worst))

    # nabla's model file into torch, strictly
    tensors, meta = read_safetensors(os.path.join(out, "model.safetensors"))
    if meta.get("nabla.description") != net_cls.desc:
        fail("%s: model file: nabla.description" % name, net_cls.desc, meta.get("nabla.description"))
    fresh = net_cls()
    fresh.load_state_dict({k: torch.tensor(v) for k, v in tensors.items()}, strict=True)
    fresh.eval()
    with torch.no_grad():
        compare(name, "torch with nabla's file", fresh(torch.tensor(x[:batch])), ev, STEP_RTOL, STEP_ATOL)
    for k, v in fresh.state_dict().items():
        if k.endswith("num_batches_tracked") and v.item() != steps:
            fail("%s: %s in torch" % (name, k), steps, v.item())

    # and back: torch's state into a file nabla loads
    state = {k: v.detach().float().numpy() for k, v in net.state_dict().items()}
    back = os.path.join(tmp, "from-torch.safetensors")
    write_safetensors(back, state, {"format": "pt", "nabla.description": net_cls.desc})
    p = subprocess.run([TOOL, "eval", back, data, os.path.join(tmp, "back"), str(batch)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        fail("%s: tool_conv eval" % name, "exit status 0", "%d: %s" % (p.returncode, p.stderr))
    compare(name, "nabla with torch's file", load(os.path.join(tmp, "back", "eval.bin"), ev.shape),
            ev, STEP_RTOL, STEP_ATOL)
    print("  %-12s model file: torch load_state_dict(strict=True) and back, same logits" % name)


def main():
    if not os.path.exists(TOOL):
        fail(TOOL + " is missing (make all)")
    keep = "--keep" in sys.argv
    for net_cls, optimizers in ((NetA, ("sgd", "adam")), (NetB, ("sgd", "adam")), (NetC, ("sgd",))):
        for optimizer in optimizers:
            tmp = tempfile.mkdtemp(prefix="nabla-conv-")
            try:
                run_case(net_cls, tmp, optimizer)
            finally:
                if keep:
                    print("kept", tmp)
                else:
                    shutil.rmtree(tmp)
    print("all passed")


if __name__ == "__main__":
    main()
