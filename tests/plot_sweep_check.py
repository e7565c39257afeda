#!/usr/bin/env python3
"""ctest check of scripts/plot_sweep.py: charts a tiny synthetic sweep and a density sweep and
checks that every PNG and SVG exists, is non-empty and has the right signature.
Usage: plot_sweep_check.py PLOT_SCRIPT PYTHON. Exit 77 (ctest SKIP) when no Python with
matplotlib exists (plot_sweep.py exit 3)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def point(index, pattern, n, seconds, density, mode="auto", status="ok"):
    rec = {"kind": "point", "key": "%s/%d/%s" % (pattern, n, mode), "index": index,
           "axes": {"pattern": pattern, "spec": pattern, "n": n, "head_dim": 64, "heads": 8,
                    "kv_heads": 8, "batch": 1, "threads": 2, "block": 64, "tile_mode": mode,
                    "inputs": "random"},
           "status": status, "message": "" if status == "ok" else "killed"}
    if status == "ok":
        rec["peak_rss_bytes"] = int(2**20 * (10 + n / 256))
        rec["wall_seconds"] = 1.0
        rec["measure"] = {"attention_seconds": {"median": seconds, "min": seconds,
                                                "max": seconds, "all": [seconds]},
                          "density": density, "useful_gflops": 4 * 64 * density * n * n * 8
                          / seconds / 1e9}
    return rec


def write(directory, layout, points):
    os.makedirs(directory)
    with open(os.path.join(directory, "results.jsonl"), "w") as f:
        f.write(json.dumps({"kind": "header", "experiment": "tiny", "stamp": "20260101-000000",
                            "quick": True, "report": {"layout": layout, "baseline": "dense"}})
                + "\n")
        for p in points:
            f.write(json.dumps(p) + "\n")
        f.write('{"kind":"point","key":"trunc')  # an interrupted write: ignored


def run(python, script, directory):
    r = subprocess.run([python, script, directory], capture_output=True, text=True)
    if r.returncode == 3:
        print("SKIP: no Python with matplotlib:", r.stderr.strip())
        sys.exit(SKIP)
    if r.returncode != 0:
        print("plot_sweep.py failed with exit %d:\n%s%s" % (r.returncode, r.stdout, r.stderr))
        sys.exit(1)
    return [line for line in r.stdout.splitlines() if line]


def check(printed, directory, names):
    errors = []
    for name in names:
        for ext, magic in (("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<?xml")):
            path = os.path.join(directory, "charts", "%s.%s" % (name, ext))
            if path not in printed:
                errors.append("not printed: " + path)
            if not os.path.isfile(path) or os.path.getsize(path) == 0:
                errors.append("missing or empty: " + path)
                continue
            with open(path, "rb") as f:
                if not f.read(len(magic)) == magic:
                    errors.append("not a %s file: %s" % (ext.upper(), path))
    return errors


def main():
    script, python = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="spattn_plot_")
    try:
        scaling = os.path.join(tmp, "scaling")
        pts, i = [], 0
        for n in (1024, 2048, 4096):
            pts.append(point(i, "dense", n, 2e-10 * n * n, 1.0)); i += 1
        pts.append(point(i, "dense", 8192, 0, 1.0, status="oom")); i += 1
        for n in (1024, 2048, 4096, 8192):
            pts.append(point(i, "sliding(512)", n, 5e-8 * n, 512 / n)); i += 1
        write(scaling, "scaling", pts)
        printed = run(python, script, scaling)
        errors = check(printed, scaling, ["time_vs_n", "memory_vs_n", "gflops_vs_n"])
        svg = open(os.path.join(scaling, "charts", "time_vs_n.svg"), "rb").read()
        run(python, script, scaling)
        if open(os.path.join(scaling, "charts", "time_vs_n.svg"), "rb").read() != svg:
            errors.append("time_vs_n.svg differs between two runs on the same data")

        density = os.path.join(tmp, "density")
        pts, i = [], 0
        for pct in (10, 40, 70, 100):
            for mode, factor in (("auto", 1.0), ("partial", 1.2)):
                d = pct / 100
                pts.append(point(i, "blocks %d%%" % pct, 4096, factor * (1e-3 + 4e-3 * d), d,
                                 mode)); i += 1
        write(density, "density", pts)
        errors += check(run(python, script, density), density, ["time_vs_density"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for e in errors:
        print("FAIL:", e)
    print("ok" if not errors else "%d failure(s)" % len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
