"""Shared by the PyTorch comparison scripts (tests/torch_*.py, which import it from their own
folder): the nabla CLI under test, and the fail and run helpers."""
import os
import subprocess
import sys

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
