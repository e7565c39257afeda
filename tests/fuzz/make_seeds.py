#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

The committed seeds were made by this script (no third-party modules needed). Re-running it
rewrites the seeds it owns (spec_*, npy_*, layout_*) and leaves other files, such as crash
reproducers added by hand (see README.md), alone.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_spec: every built-in, every combinator, and malformed specs --------------------------
SPECS = [
    # built-ins
    "dense",
    "causal",
    "window(128, 0)",
    "window(left=3)",
    "sliding(4096)",
    "dilated(128, 2)",
    "global(4)",
    "global(tokens=[0, 17, 512])",
    "sink(4)",
    "prefix(256) | causal",
    "chunked(8192) & causal",
    "documents(lengths=[100, 412, 512]) & causal",
    "strided(128) & causal",
    "random(3, block=64, seed=7)",
    'blocks(file="layout.npy", block=64)',
    'blocks(file="a \\"quoted\\" \\\\ path.npy")',
    # combinators and precedence
    "sliding(1024) | sink(4) & causal",
    "dense - window(2) - strided(3)",
    "(window(8) | global(2)) & (causal - sink(1))",
    "heads(0..3: sliding(1024) | sink(4); 4..7: causal)",
    "heads(0, 2: dense; 1: heads(0..1: causal; 2: window(1)))",
    "  causal\t&\n( dense )",
    # malformed
    "",
    "causal |",
    "window(",
    "window(1, 2, 3)",
    "window(-1)",
    "sliding(w=0)",
    "global(tokens=[1, 1])",
    "documents(lengths=[])",
    "random(3, seed=-1)",
    "random(3, block=[1])",
    "casual",
    "dense(1)",
    "heads(0..1: causal; 1..2: dense)",
    "heads(3..1: causal)",
    "heads(0..4096: causal)",
    "window(99999999999999999999)",
    "window(1x)",
    'blocks(file="unterminated)',
    "sink(4) $ causal",
    "\x00\xff\x93",
    "(" * 101 + "causal" + ")" * 101,
]

# ---- fuzz_npy: valid arrays of every dtype and broken images ----------------------------------


def npy(descr, shape, data, version=1, fortran=False, header=None, pad=True):
    if header is None:
        dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
            descr, "True" if fortran else "False", dims)
    prefix = 10 if version == 1 else 12
    if pad:
        total = prefix + len(header) + 1
        header += " " * ((64 - total % 64) % 64)
    header += "\n"
    h = header.encode("latin-1")
    if version == 1:
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h))
    else:
        head = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h))
    return head + h + data


NPYS = {
    "b1_2x3": npy("|b1", (2, 3), bytes([1, 0, 1, 1, 0, 0])),
    "u1_vec": npy("|u1", (5,), bytes(range(5))),
    "i1_2x2": npy("|i1", (2, 2), struct.pack("<4b", -1, 0, 1, 127)),
    "u2_3": npy("<u2", (3,), struct.pack("<3H", 1, 2, 65535)),
    "i2_1x2": npy("<i2", (1, 2), struct.pack("<2h", -32768, 7)),
    "u4_2": npy("<u4", (2,), struct.pack("<2I", 0, 4294967295)),
    "i4_blocks": npy("<i4", (1, 2, 2), struct.pack("<4i", 1, 0, 1, 1)),
    "u8_1": npy("<u8", (1,), struct.pack("<Q", 2**64 - 1)),
    "i8_2": npy("<i8", (2,), struct.pack("<2q", -(2**63), 2**63 - 1)),
    "f4_2x2": npy("<f4", (2, 2), struct.pack("<4f", 0.5, -1.0, float("inf"), float("nan"))),
    "f8_3": npy("<f8", (3,), struct.pack("<3d", 1.0, -0.0, 1e300)),
    "scalar": npy("<i4", (), struct.pack("<i", 42)),
    "empty_0x3": npy("<f4", (0, 3), b""),
    "v2_header": npy("|u1", (2,), b"\x01\x02", version=2),
    "v3_header": npy("<i2", (1,), b"\x05\x00", version=3),
    "eq_descr": npy("=u1", (1,), b"\x09"),
    "unpadded": npy("|u1", (1,), b"\x01", pad=False),
    "dq_keys": npy("", (), b"\x01", header='{"descr": "|u1", "fortran_order": False, '
                   '"shape": (1,)}'),
    # broken
    "bad_magic": b"\x93NUMPZ\x01\x00\x10\x00{}" + b" " * 13 + b"\n",
    "short": b"\x93NUMPY\x01",
    "bad_version": npy("|u1", (1,), b"\x01", version=4),
    "header_too_long": b"\x93NUMPY\x01\x00\xff\xff{'descr'",
    "truncated_data": npy("<f8", (4,), b"\x00" * 9),
    "trailing_data": npy("|u1", (2,), b"\x00\x01\x02"),
    "fortran": npy("<f4", (2, 2), b"\x00" * 16, fortran=True),
    "big_endian": npy(">i4", (1,), b"\x00\x00\x00\x01"),
    "unsupported_dtype": npy("<c8", (1,), b"\x00" * 8),
    "absurd_shape": npy("<f8", (2**50, 2**50, 2**50), b""),
    "over_budget": npy("|u1", (4096, 4096), b""),
    "negative_dim": npy("", (), b"", header="{'descr': '|u1', 'fortran_order': False, "
                        "'shape': (-1,), }"),
    "unknown_key": npy("", (), b"\x00", header="{'descr': '|u1', 'fortran_order': False, "
                       "'shape': (1,), 'extra': 1, }"),
    "missing_key": npy("", (), b"\x00", header="{'descr': '|u1', 'shape': (1,), }"),
    "unterminated": npy("", (), b"", header="{'descr': '|u1"),
    "too_many_dims": npy("|u1", (1,) * 33, b"\x00"),
}

# ---- fuzz_layout_diff: header bytes (nq, nk, heads/blocks, mode) + spec or generator bytes ------


def layout_header(nq, nk, heads, bq, bk, text):
    sizes = [16, 32, 64, 128]
    shape = (heads - 1) + 3 * sizes.index(bq) + 12 * sizes.index(bk)
    return bytes([nq - 1, nk - 1, shape, 1 if text else 0])


LAYOUT_TEXT = [
    ((100, 100, 1, 16, 16), "causal"),
    ((64, 200, 2, 32, 16), "sliding(17) | sink(3)"),
    ((130, 129, 3, 64, 32), "heads(0: window(5, 2); 1..2: dilated(3, 4) - causal)"),
    ((200, 200, 1, 128, 16), "documents(lengths=[50, 70, 80]) & causal"),
    ((37, 150, 2, 16, 64), "global(tokens=[0, 33, 149]) | random(2, block=16, seed=3)"),
    ((199, 61, 1, 32, 128), "(chunked(20) & strided(3)) | prefix(7) - window(1)"),
    ((50, 50, 3, 16, 32), "dense - heads(0..1: sink(9); 2: causal)"),
]
LAYOUT_GEN = [
    ((120, 120, 1, 16, 16), bytes([14, 1, 4, 30, 16, 8, 3])),
    ((90, 180, 3, 32, 64), bytes([17, 0, 1, 2, 16, 5, 3, 2, 13, 2, 16, 9])),
    ((200, 33, 2, 128, 16), bytes([15, 7, 3, 5, 9, 140, 12, 11, 2, 60, 200])),
    ((1, 200, 1, 16, 128), bytes([16, 3, 250, 241, 10, 245])),
]


def main():
    for k, s in enumerate(SPECS):
        write("fuzz_spec", "spec_%02d" % k, s.encode("latin-1"))
    for name, data in NPYS.items():
        write("fuzz_npy", "npy_" + name, data)
    for k, (geo, spec) in enumerate(LAYOUT_TEXT):
        write("fuzz_layout_diff", "layout_text_%d" % k, layout_header(*geo, True) + spec.encode())
    for k, (geo, gen) in enumerate(LAYOUT_GEN):
        write("fuzz_layout_diff", "layout_gen_%d" % k, layout_header(*geo, False) + gen)


if __name__ == "__main__":
    main()
