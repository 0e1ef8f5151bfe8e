"""Shared by the PyTorch comparison scripts (tests/torch_*.py, which import it from their own
folder): the nabla CLI under test, the fail and run helpers, and spirals written as CSV."""
import os
import subprocess
import sys

import numpy as np

NABLA = os.environ.get("NABLA") or os.path.join(os.environ.get("NABLA_BUILD", "build"), "nabla")


def fail(what, expected=None, actual=None):
    """Reports a failure with what was expected and what came, and exits 1."""
    print("FAIL:", what, file=sys.stderr)
    if expected is not None:
        print("  expected:", expected, file=sys.stderr)
    if actual is not None:
        print("  actual:  ", actual, file=sys.stderr)
    sys.exit(1)


def run(*args, stderr=False):
    """Runs the CLI; fails the test with its output unless it exits 0. Returns its stdout (or,
    with stderr=True, its stderr)."""
    env = dict(os.environ)
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads crawl on a busy machine
    p = subprocess.run([NABLA, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        fail("nabla " + " ".join(args), "exit status 0",
             "exit status %d\n%s%s" % (p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    return p.stderr if stderr else p.stdout


def spirals_csv(path, per_class, classes=3, seed=5, offset=(0.0, 0.0), scale=(1.0, 1.0)):
    """K interleaved spirals (x0, x1, label) written as CSV with a header, moved by offset and
    stretched by scale per coordinate; returns the points (float32) and their labels."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(classes):
        r = np.linspace(0.05, 1.0, per_class)
        t = np.linspace(k * 4.0, (k + 1) * 4.0, per_class) + rng.normal(0, 0.2, per_class)
        rows += [(offset[0] + scale[0] * ri * np.sin(ti), offset[1] + scale[1] * ri * np.cos(ti), k)
                 for ri, ti in zip(r, t)]
    with open(path, "w") as f:
        f.write("x0,x1,label\n")
        for a, b, k in rows:
            f.write("%r,%r,%d\n" % (float(a), float(b), k))
    return (np.array([(a, b) for a, b, _ in rows], dtype=np.float32),
            np.array([k for _, _, k in rows]))
