#!/usr/bin/env python3
"""Writes a corpus of malformed IDX and CSV files for tests/test_data_errors.c.

Usage: make-bad-inputs.py DIR

Creates DIR if needed and writes, besides the bad files:
  good-images.idx3.gz, good-labels.idx1.gz  a valid pair (6 images of 2x3, labels 0..2)
  good.csv                                 a valid CSV with a "label" column
  manifest.tsv                             one line per bad case: file name, a tab, and a
                                           substring that the loader's error message must
                                           contain (the message must also name the file)

How the C test loads each case, by the prefix of its name:
  images-*   nb_idx_load(case, NULL)
  labels-*   nb_idx_load(good-images.idx3.gz, case)
  csv-*      nb_csv_load(case, "label")
  csvt-*     nb_csv_load_with(case, targets "y,z", NB_TARGET_VALUES): regression targets
  csvn-*     nb_csv_load_with(case, "label", NB_TARGET_CLASSES, class names cat, dog): labels
             mapped through a trained model's names

Standard library only (gzip, struct), so it runs wherever Python 3 does.
"""
import gzip
import os
import struct
import sys

COUNT, ROWS, COLS = 6, 2, 3


def idx_header(dims, dtype=0x08, ndim=None):
    """The IDX header: two zero bytes, the data type, the dimension count, big-endian sizes."""
    nd = len(dims) if ndim is None else ndim
    return bytes([0, 0, dtype, nd]) + b"".join(struct.pack(">I", d) for d in dims)


def images(count=COUNT, rows=ROWS, cols=COLS):
    return idx_header([count, rows, cols]) + bytes(i % 251 for i in range(count * rows * cols))


def labels(count=COUNT):
    return idx_header([count]) + bytes(i % 3 for i in range(count))


def gz(data):
    return gzip.compress(data, mtime=0)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: make-bad-inputs.py DIR\n")
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    cases = []

    def write(name, data, expect=None):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        if expect is not None:
            cases.append((name, expect))

    write("good-images.idx3.gz", gz(images()))
    write("good-labels.idx1.gz", gz(labels()))
    write("good.csv", b"a,b,label\n1,2,0\n3,4,1\n")

    img = images()
    good_gz = gz(img)

    # ---- IDX images -----------------------------------------------------------------------
    write("images-empty.idx3", b"", "empty file")
    write("images-empty.idx3.gz", gz(b""), "empty file")
    write("images-trunc-magic.idx3", b"\x00\x00", "truncated header")
    write("images-trunc-magic.idx3.gz", gz(b"\x00\x00\x08"), "truncated header")
    write("images-trunc-dims.idx3", img[:10], "truncated header")
    write("images-trunc-dims.idx3.gz", gz(img[:6]), "truncated header")
    write("images-trunc-data.idx3", img[:-5], "truncated")
    write("images-trunc-data.idx3.gz", gz(img[:20]), "truncated")
    write("images-bad-magic.idx3", b"PK\x03\x04" + img[4:], "bad magic")
    write("images-bad-magic.idx3.gz", gz(b"\x12\x34\x08\x03" + img[4:]), "bad magic")
    write("images-bad-dtype.idx3", idx_header([COUNT, ROWS, COLS], dtype=0x09) + img[16:],
          "data type 0x09")
    write("images-float-dtype.idx3.gz", gz(idx_header([COUNT, ROWS, COLS], dtype=0x0D)
                                           + bytes(4 * COUNT * ROWS * COLS)), "data type 0x0d")
    write("images-too-many-dims.idx3", idx_header([COUNT, 1, ROWS, COLS]) + img[16:],
          "with 4 dimensions")
    write("images-zero-dims.idx3", bytes([0, 0, 8, 0]) + img[16:], "with 0 dimensions")
    write("images-one-dim.idx3", labels(), "with 1 dimension (")
    # Three sizes of 2^32 - 1: the product needs 96 bits and must not wrap around.
    write("images-overflow.idx3", idx_header([0xFFFFFFFF] * 3) + bytes(100), "too large")
    # About 2^40 bytes announced in a 100-byte file.
    write("images-absurd.idx3.gz", gz(idx_header([1 << 24, 1 << 8, 1 << 8]) + bytes(84)),
          "too large")
    # Under the size limit (2^30 bytes) but the file holds 100 bytes: refused as truncated
    # without allocating the announced gigabyte.
    write("images-huge-count.idx3", idx_header([1 << 24, 8, 8]) + bytes(84), "truncated")
    write("images-zero-count.idx3", idx_header([0, ROWS, COLS]), "zero samples")
    write("images-zero-rows.idx3.gz", gz(idx_header([COUNT, 0, COLS])), "dimension 1 (rows) is 0")
    write("images-zero-features.idx2", idx_header([COUNT, 0]), "dimension 1 (features) is 0")
    write("images-trailing.idx3", img + b"\x00", "trailing data")
    write("images-trailing.idx3.gz", gz(img + b"junk"), "trailing data")
    # A gzip header followed by bytes that are not a deflate stream.
    write("images-corrupt.idx3.gz", good_gz[:10] + b"\xff" * 40, "gzip")
    # A gzip stream cut in the middle.
    write("images-cut-gzip.idx3.gz", good_gz[:len(good_gz) // 2], "gzip")
    # A damaged CRC-32 in the gzip trailer: the data decompress but do not check.
    bad_crc = bytearray(good_gz)
    bad_crc[-8] ^= 0xFF
    write("images-bad-crc.idx3.gz", bytes(bad_crc), "gzip")

    # ---- IDX labels (loaded with good-images.idx3.gz: 6 images) --------------------------
    lab = labels()
    write("labels-empty.idx1", b"", "empty file")
    write("labels-bad-magic.idx1.gz", gz(idx_header([COUNT, ROWS, COLS]) + img[16:]),
          "labels file with 3 dimensions")
    write("labels-not-idx.idx1", b"\x89PNG\r\n\x1a\n" + bytes(10), "bad magic")
    write("labels-bad-dtype.idx1", idx_header([COUNT], dtype=0x0C) + bytes(4 * COUNT),
          "data type 0x0c")
    write("labels-count-mismatch.idx1.gz", gz(labels(COUNT + 1)), "expected 6 labels")
    write("labels-count-short.idx1", labels(COUNT - 2), "found 4")
    write("labels-trunc.idx1", lab[:-2], "truncated")
    write("labels-trunc-header.idx1.gz", gz(lab[:6]), "truncated header")
    write("labels-trailing.idx1.gz", gz(lab + b"\x01\x02"), "trailing data")
    write("labels-corrupt.idx1.gz", b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage!" * 4, "gzip")

    # ---- CSV (loaded with label column "label") ------------------------------------------
    write("csv-empty.csv", b"", "empty file")
    write("csv-blank.csv", b"\n\r\n  \n", "empty file")
    write("csv-no-header.csv", b"1,2,0\n3,4,1\n", "header row")
    write("csv-header-only.csv", b"a,b,label\n", "no data rows")
    write("csv-header-only-crlf.csv", b"a,b,label\r\n\r\n", "no data rows")
    write("csv-ragged-short.csv", b"a,b,label\n1,2,0\n3,1\n", "line 3: expected 3 fields")
    write("csv-ragged-long.csv", b"a,b,label\n1,2,0,7\n", "found 4")
    write("csv-non-numeric.csv", b"a,b,label\n1,2,0\n3,abc,1\n", "field 2 (\"b\"): expected a number")
    write("csv-trailing-text.csv", b"a,b,label\n1,2.5x,0\n", "\"2.5x\"")
    write("csv-empty-field.csv", b"a,b,label\n1,,0\n", "empty field")
    write("csv-nan.csv", b"a,b,label\n1,nan,0\n", "finite number")
    write("csv-inf.csv", b"a,b,label\r\n-inf,1,0\r\n", "finite number")
    write("csv-overflow.csv", b"a,b,label\n1e999,1,0\n", "finite number")
    write("csv-float-range.csv", b"a,b,label\n1e39,1,0\n", "float range")
    write("csv-negative-label.csv", b"a,b,label\n1,2,-1\n", "class label")
    write("csv-label-range.csv", b"a,b,label\n1,2,1048576\n", "class label")
    write("csv-label-fraction.csv", b"a,b,label\n1,2,1.5\n", "integer")
    write("csv-label-nan.csv", b"a,b,label\n1,2,nan\n", "class label")
    write("csv-missing-label.csv", b"a,b,c\n1,2,0\n", "no column named \"label\"")
    write("csv-only-label.csv", b"label\n1\n2\n", "no feature columns")
    write("csv-unterminated-quote.csv", b"a,\"b,label\n1,2,0\n", "unterminated quote")
    write("csv-after-quote.csv", b"\"a\"x,b,label\n1,2,0\n", "closing quote")
    write("csv-nul-byte.csv", b"a,b,label\n1,2\x003,0\n", "NUL byte")
    write("csv-ambiguous-label.csv", b"label,a,label\n0,1,0\n", "ambiguous")
    # class labels as names (derived from the data)
    write("csv-name-comma.csv", b'a,label\n1,cat\n2,"b,c"\n', "may not contain commas")
    write("csv-name-empty.csv", b"a,label\n1,cat\n2,\n", "line 3, field 2 (\"label\"): expected a class name, found an empty field")

    # ---- CSV regression targets (loaded with targets "y,z") -----------------------------
    write("csvt-text-target.csv", b"a,y,z\n1,2,3\n4,five,6\n", "line 3, field 2 (\"y\"): expected a number (a regression target)")
    write("csvt-empty-target.csv", b"a,y,z\n1,2,\n", "an empty field")
    write("csvt-nan-target.csv", b"a,y,z\n1,nan,3\n", "finite number")
    write("csvt-inf-target.csv", b"a,y,z\n1,2,-inf\n", "finite number")
    write("csvt-float-range.csv", b"a,y,z\n1,1e39,3\n", "float range")
    write("csvt-missing-z.csv", b"a,y,w\n1,2,3\n", "no column named \"z\"")
    write("csvt-only-targets.csv", b"y,z\n1,2\n", "no feature columns besides the target columns")
    write("csvt-ragged.csv", b"a,y,z\n1,2,3\n4,5\n", "expected 3 fields")
    write("csvt-ambiguous.csv", b"a,y,z,y\n1,2,3,4\n", "ambiguous")
    write("csvt-header-only.csv", b"a,y,z\n", "no data rows")

    # ---- CSV labels through a model's class names "cat", "dog" ---------------------------
    write("csvn-unknown.csv", b"a,label\n1,cat\n2,cow\n", "line 3, field 2 (\"label\"): class \"cow\" is not one of the model's 2 classes (\"cat\", \"dog\")")
    write("csvn-index-beyond.csv", b"a,label\n1,dog\n2,2\n", "class \"2\" is not one of")
    write("csvn-fraction.csv", b"a,label\n1,0.5\n", "class \"0.5\"")
    write("csvn-case.csv", b"a,label\n1,Cat\n", "class \"Cat\"")

    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        for name, expect in cases:
            f.write(f"{name}\t{expect}\n")
    print(f"{len(cases)} bad inputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
