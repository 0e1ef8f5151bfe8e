#!/usr/bin/env python3
"""nabla's safetensors files against an independent peer written here.

torch 1.13 has no safetensors package, so this script implements the format by hand with
json + struct + numpy, strictly, following https://github.com/huggingface/safetensors:

1. PyTorch builds fc1 = Linear(784, 64) -> ReLU -> fc2 = Linear(64, 10) and writes its
   state_dict as safetensors (JSON key order differing from data order, as the reference
   writer's may). nabla's tool reads it and writes it back, adding metadata. This script
   parses nabla's file strictly, loads it into a fresh model (load_state_dict, strict) and
   checks the outputs are identical on random input and the metadata preserved.
2. nabla's header is checked byte for byte as a strict reader would: 8-byte little-endian
   size, a multiple of 8, UTF-8, a JSON object without duplicate keys or non-integer numbers,
   compact, padded with spaces only, offsets contiguous from 0 to the end of the file.
3. PyTorch's F16, BF16 and F64 tensors (model.half(), .bfloat16(), .double()) load into
   nabla as float32 equal to torch's own .float() of them, bit for bit.
4. Files that break the format are rejected by nabla with a message naming file and field.

Run with /usr/bin/python3; finds the tool in $NABLA_BUILD/tests (default build/tests).
Exits non-zero on any failure.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

BUILD = os.environ.get("NABLA_BUILD", "build")
TOOL = os.path.join(BUILD, "tests", "tool_safetensors")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 64)
        self.relu = torch.nn.ReLU()
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


# ---- the format, by hand ------------------------------------------------------------------

DTYPES = {np.dtype("<f4"): "F32", np.dtype("<f2"): "F16", np.dtype("<f8"): "F64"}


class BF16:
    """A bfloat16 tensor's raw bits (numpy has no bfloat16), as write_safetensors takes it."""

    def __init__(self, t):
        self.shape = tuple(t.shape)
        self.bits = t.contiguous().view(torch.int16).numpy().astype("<i2")


def write_safetensors(path, tensors, metadata=None, data_order=None, header_order=None):
    """tensors: name -> numpy array. Data is laid out in data_order, the JSON keys listed in
    header_order (both default to the dict's order). The header is padded to 8 bytes."""
    data_order = data_order or list(tensors)
    header_order = header_order or list(tensors)
    offsets, pos, blobs = {}, 0, []
    for name in data_order:
        a = tensors[name]
        if isinstance(a, BF16):
            blob = a.bits.tobytes()
        else:
            a = np.ascontiguousarray(a)
            blob = a.astype(a.dtype.newbyteorder("<")).tobytes()
        offsets[name] = [pos, pos + len(blob)]
        pos += len(blob)
        blobs.append(blob)
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    for name in header_order:
        a = tensors[name]
        dtype = "BF16" if isinstance(a, BF16) else DTYPES[a.dtype.newbyteorder("<")]
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": offsets[name]}
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class Bad(Exception):
    pass


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise Bad(f"duplicate keys in {keys}")
    return dict(pairs)


def _no_constants(name):
    raise Bad(f"non-standard JSON constant {name}")


def _no_floats(text):
    raise Bad(f"number {text} in the header; only integers belong there")


def read_strict(path, require_padding=True):
    """Parses a safetensors file the way the reference does, and stricter: returns
    (tensors as name -> float32 array, metadata, header keys in order, header text)."""
    raw = open(path, "rb").read()
    if len(raw) < 8:
        raise Bad("shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if n == 0 or n > 100_000_000 or 8 + n > len(raw):
        raise Bad(f"header size {n} for a {len(raw)}-byte file")
    if require_padding and (8 + n) % 8:
        raise Bad(f"header size {n}: data does not start at a multiple of 8")
    text = raw[8:8 + n].decode("utf-8")  # strict: raises on invalid UTF-8
    if not text.startswith("{"):
        raise Bad("header does not start with '{'")
    body = text.rstrip(" ")
    if text[len(body):] != " " * (n - len(body.encode())):
        raise Bad("padding is not spaces")
    header = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constants,
                        parse_float=_no_floats)
    if not isinstance(header, dict):
        raise Bad("header is not an object")
    keys = list(header)
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise Bad("__metadata__ is not an object of strings")
    buf = raw[8 + n:]
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise Bad(f"{name}: entry {info!r}")
        shape, off = info["shape"], info["data_offsets"]
        if info["dtype"] != "F32":
            raise Bad(f"{name}: dtype {info['dtype']}")
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            raise Bad(f"{name}: shape {shape!r}")
        if (not isinstance(off, list) or len(off) != 2
                or not all(type(o) is int and o >= 0 for o in off)):
            raise Bad(f"{name}: data_offsets {off!r}")
        if off[1] - off[0] != 4 * int(np.prod(shape, dtype=np.int64)):
            raise Bad(f"{name}: data_offsets {off} do not fit shape {shape}")
        entries.append((off[0], off[1], name, shape))
    entries.sort()
    pos, tensors = 0, {}
    for begin, end, name, shape in entries:
        if begin != pos:
            raise Bad(f"{name}: begins at {begin}, previous tensor ended at {pos}")
        tensors[name] = np.frombuffer(buf[begin:end], dtype="<f4").reshape(shape).copy()
        pos = end
    if pos != len(buf):
        raise Bad(f"tensors cover {pos} of {len(buf)} data bytes")
    return tensors, metadata, keys, body


def tool(*args):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


# ---- the tests ------------------------------------------------------------------------------

def test_model_round_trip(tmp):
    torch.manual_seed(0)
    model = Net().eval()
    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    src, out, again = (os.path.join(tmp, f) for f in ("torch.safetensors", "nabla.safetensors",
                                                      "again.safetensors"))
    # The reference writer lays data out sorted by name; our header lists state_dict order.
    write_safetensors(src, sd, {"format": "pt", "note": "π ≈ 3.14159, \"quoted\""},
                      data_order=sorted(sd), header_order=list(sd))
    # The peer reads its own file back (a check on the peer itself).
    mine, _, _, _ = read_strict(src)
    check(all(np.array_equal(mine[k], sd[k]) for k in sd), "peer cannot read its own file")

    rc, stdout, stderr = tool(src, out, "format", "note", "written_by=nabla")
    if not check(rc == 0, f"tool failed on PyTorch's file: {stderr.strip()}"):
        return
    listed = stdout.split("\n")[:-1]
    check(listed == ["fc1.bias [64]", "fc1.weight [64,784]", "fc2.bias [10]",
                     "fc2.weight [10,64]"], f"tool listed {listed} (expected data order)")

    try:
        tensors, meta, keys, body = read_strict(out)
    except (Bad, ValueError) as e:
        check(False, f"nabla's file fails the strict reader: {e}")
        return
    raw = open(out, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    check(n % 8 == 0, f"header size {n} is not a multiple of 8")
    check(n - len(body.encode()) < 8, f"header padded by {n - len(body.encode())} bytes")
    canonical = json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False)
    check(body == canonical, "header is not compact JSON:\n  %s\n  %s" % (body, canonical))
    check(keys == ["__metadata__", "fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"],
          f"header keys {keys}")
    check(meta == {"format": "pt", "note": "π ≈ 3.14159, \"quoted\"", "written_by": "nabla"},
          f"metadata {meta}")
    for k in sd:
        check(k in tensors and tensors[k].shape == sd[k].shape
              and tensors[k].tobytes() == sd[k].astype("<f4").tobytes(),
              f"{k} differs after nabla's round trip")

    fresh = Net().eval()
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    x = torch.randn(32, 784)
    with torch.no_grad():
        check(torch.equal(model(x), fresh(x)), "outputs differ after loading nabla's file")

    # nabla reading its own file and writing it again gives the same bytes.
    rc, _, stderr = tool(out, again, "format", "note", "written_by")
    check(rc == 0 and open(again, "rb").read() == raw,
          f"second round trip differs ({stderr.strip()})")
    print(f"round trip: {len(sd)} tensors, header {n} bytes, outputs identical")


def test_dtypes(tmp):
    """torch's half, bfloat16 and double weights, read by nabla and written back as F32, equal
    torch's .float() of them bit for bit (F64 rounds to nearest, as .float() does)."""
    torch.manual_seed(2)
    model = Net()
    for dtype, name in ((torch.float16, "F16"), (torch.bfloat16, "BF16"), (torch.float64, "F64")):
        state = {k: v.detach().to(dtype) for k, v in model.state_dict().items()}
        # values where the conversion is delicate: subnormals, the largest finite, -0
        edge = {torch.float16: [6e-8, -6.1e-5, 65504.0, -0.0, 1 / 3],
                torch.bfloat16: [1e-39, -3.3895e38, -0.0, 1 / 3],
                torch.float64: [1e-46, -1.0000000596046448, 3.4028234663852886e38, -0.0, 0.1]}
        state["edge"] = torch.tensor(edge[dtype], dtype=dtype)
        src, out = os.path.join(tmp, name + ".safetensors"), os.path.join(tmp, name + "-f32.safetensors")
        arrays = {k: BF16(v) if dtype == torch.bfloat16 else v.numpy() for k, v in state.items()}
        write_safetensors(src, arrays, {"format": "pt"})
        rc, _, stderr = tool(src, out)
        if not check(rc == 0, f"nabla rejected torch's {name} file: {stderr.strip()}"):
            continue
        got, _, _, _ = read_strict(out)
        for k, v in state.items():
            want = v.float().numpy()
            check(k in got and got[k].shape == want.shape and got[k].tobytes() == want.tobytes(),
                  f"{name} tensor {k}: nabla's float32 differs from torch's .float()")
        print(f"{name}: {len(state)} tensors equal to torch's .float() bit for bit")


def test_rejections(tmp):
    rng = np.random.default_rng(1)
    good = {"fc1.weight": rng.standard_normal((4, 3)).astype("<f4"),
            "fc2.bias": rng.standard_normal(5).astype("<f4")}

    def expect(name, build, *substrings):
        path = os.path.join(tmp, name + ".safetensors")
        build(path)
        rc, _, stderr = tool(path)
        ok = check(rc == 1, f"{name}: tool exit status {rc}, expected 1 ({stderr.strip()})")
        for s in (path,) + substrings:
            ok &= check(s in stderr, f"{name}: message {stderr.strip()!r} lacks {s!r}")
        if ok:
            print(f"rejected {name}: {stderr.strip()}")

    def i32(path):
        write_safetensors(path, good)
        raw = open(path, "rb").read()
        open(path, "wb").write(raw.replace(b'"F32"', b'"I32"', 1))

    def f64_huge(path):
        write_safetensors(path, {**good, "fc2.bias": np.array([1, 2, 3, 1e300, 5], dtype="<f8")})

    def nan(path):
        bias = good["fc2.bias"].copy()
        bias[3] = np.nan
        write_safetensors(path, {**good, "fc2.bias": bias})

    def hole(path):
        write_safetensors(path, good)
        raw = bytearray(open(path, "rb").read())
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        header["fc2.bias"]["data_offsets"] = [52, 72]  # fc1.weight ends at 48
        text = json.dumps(header).encode()
        open(path, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:] + b"\0" * 4)

    def duplicate(path):
        write_safetensors(path, good)
        raw = open(path, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        text = raw[8:8 + n].rstrip(b" ").replace(b'"fc2.bias"', b'"fc1.weight"')
        open(path, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])

    def too_long(path):
        write_safetensors(path, good)
        raw = bytearray(open(path, "rb").read())
        raw[:8] = struct.pack("<Q", len(raw))
        open(path, "wb").write(raw)

    def wrong_size(path):
        write_safetensors(path, good)
        raw = open(path, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        text = raw[8:8 + n].replace(b"[4,3]", b"[4,4]")
        open(path, "wb").write(raw[:8] + text + raw[8 + n:])

    expect("i32", i32, "tensor 'fc1.weight'", "expected F32, F16, BF16, F64 or I64, found I32")
    expect("f64-beyond-f32", f64_huge, "tensor 'fc2.bias': element 3 [3]",
           "is 1.0000000000000001e+300 in F64, beyond float32's range")
    expect("nan", nan, "tensor 'fc2.bias': element 3 [3]", "is NaN")
    expect("hole", hole, "data bytes [48, 52)", "belong to no tensor")
    expect("duplicate", duplicate, "duplicate tensor name 'fc1.weight'")
    expect("header-too-long", too_long, "header size (bytes 0-7)", "bytes follow")
    expect("wrong-size", wrong_size, "tensor 'fc1.weight': data_offsets [0, 48] hold 48 bytes, "
           "shape [4,4] needs 64")


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"{TOOL} not found; build it with make {TOOL}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        test_model_round_trip(tmp)
        test_dtypes(tmp)
        test_rejections(tmp)
    print(f"torch_safetensors: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
