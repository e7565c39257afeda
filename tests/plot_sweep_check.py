#!/usr/bin/env python3
"""ctest check of scripts/plot_sweep.py: charts a tiny synthetic sweep and a density sweep, each
in schema-2 measurement records and in the untyped records of earlier versions, and checks that
every PNG and SVG exists, is non-empty and has the right signature, that both schemas give the
same charts, and that a record of a newer schema is refused naming its file and line.
Usage: plot_sweep_check.py PLOT_SCRIPT PYTHON. Exit 77 (ctest SKIP) when no Python with
matplotlib exists (plot_sweep.py exit 3)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def point(index, pattern, n, seconds, density, mode="auto", status="ok", schema=2, times=None,
          recall=None, baseline="dense"):
    """A point record: schema 2 (the measurement record) or 1 (untyped, earlier versions).
    times: the timed calls (default [seconds]); recall: fidelity.recall_mean vs `baseline`."""
    key = "%s/%d/%s" % (pattern, n, mode)
    message = "" if status == "ok" else "killed"
    rss = int(2**20 * (10 + n / 256))
    allowed = int(density * n * n * 8)
    density = allowed / (n * n * 8)  # what the pair count gives, in both schemas
    gflops = 4 * 64 * allowed / seconds / 1e9 if seconds else None
    if schema == 1:
        rec = {"kind": "point", "key": key, "index": index,
               "axes": {"pattern": pattern, "spec": pattern, "n": n, "head_dim": 64, "heads": 8,
                        "kv_heads": 8, "batch": 1, "threads": 2, "block": 64, "tile_mode": mode,
                        "inputs": "random"},
               "status": status, "message": message}
        if status == "ok":
            rec["peak_rss_bytes"] = rss
            rec["wall_seconds"] = 1.0
            # Derived figures deliberately off: the reader recomputes them from "all" and the
            # pair count, as measurement_from_json does.
            rec["measure"] = {"attention_seconds": {"median": 2 * seconds, "min": seconds,
                                                    "max": seconds, "all": [seconds]},
                              "allowed_pairs": allowed, "computed_pairs": allowed,
                              "density": 2 * density, "useful_gflops": 2 * gflops}
        return rec
    ok = status == "ok"
    times = times or [seconds]
    fidelity = None
    if recall is not None:
        fidelity = {"rel_l2_error": 0.1, "recall_mean": recall, "recall_min": recall / 2,
                    "inputs": "synthetic", "baseline": baseline}
    return {"schema": schema, "kind": "point", "source": "sweep", "key": key, "index": index,
            "status": status, "message": message,
            "axes": {"pattern": pattern, "spec": pattern, "n": n, "nk": n, "head_dim": 64,
                     "heads": 8, "kv_heads": 8, "batch": 1, "threads": 2, "block_q": 64,
                     "block_k": 64, "tile_mode": mode, "executor": "flash", "inputs": "random",
                     "seed": 0},
            "layout": {"allowed_pairs": allowed, "computed_pairs": allowed, "density": density},
            "predicted": None,
            "attention": {"warmup": 1, "repeats": len(times), "seconds": times,
                          "median": seconds, "min": min(times), "max": max(times),
                          "useful_gflops": gflops, "computed_gflops": gflops} if ok else None,
            "resources": {"workspace_bytes": None, "peak_rss_bytes": rss if ok else None,
                          "wall_seconds": 1.0 if ok else None},
            "check": None, "fidelity": fidelity, "saved": None}


def write(directory, layout, points):
    os.makedirs(directory)
    with open(os.path.join(directory, "results.jsonl"), "w") as f:
        f.write(json.dumps({"kind": "header", "experiment": "tiny", "stamp": "20260101-000000",
                            "quick": True, "report": {"layout": layout, "baseline": "dense"}})
                + "\n")
        for p in points:
            f.write(json.dumps(p) + "\n")
        f.write('{"kind":"point","key":"trunc')  # an interrupted write: ignored


def run(python, script, directory, expect=0, extra=()):
    r = subprocess.run([python, script, directory] + list(extra), capture_output=True, text=True)
    if r.returncode == 3:
        print("SKIP: no Python with matplotlib:", r.stderr.strip())
        sys.exit(SKIP)
    if expect != 0:
        return r
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


def read_bytes(path):
    """The file's bytes, or None when it does not exist (check() reports it)."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def scaling_points(schema):
    pts, i = [], 0
    for n in (1024, 2048, 4096):
        pts.append(point(i, "dense", n, 2e-10 * n * n, 1.0, schema=schema)); i += 1
    pts.append(point(i, "dense", 8192, 0, 1.0, status="oom", schema=schema)); i += 1
    for n in (1024, 2048, 4096, 8192):
        pts.append(point(i, "sliding(512)", n, 5e-8 * n, 512 / n, schema=schema)); i += 1
    return pts


def check_content(python, script, tmp):
    """What the charts draw, from plot_sweep.py --summary, against values computed here."""
    errors = []
    d = os.path.join(tmp, "content")
    pts, i = [], 0
    # dense: 2e-10·N^2 s; bigbird at 2K measured 0.62/5.0/9.5 ms (max/min 15.3: noisy);
    # causal compared with causal (recall 1); sliding with dense.
    for n in (1024, 2048, 4096, 8192):
        pts.append(point(i, "dense", n, 2e-10 * n * n, 1.0, recall=1.0)); i += 1
    for n in (1024, 2048, 4096, 8192):
        t = 5e-8 * n
        times = [0.62e-3, 5.0e-3, 9.5e-3] if n == 2048 else [t]
        med = 5.0e-3 if n == 2048 else t
        pts.append(point(i, "bigbird", n, med, 0.5, times=times, recall=0.25)); i += 1
    for n in (1024, 2048, 4096, 8192):
        pts.append(point(i, "causal", n, 1e-10 * n * n, 0.5, recall=1.0, baseline="causal"))
        i += 1
    write(d, "scaling", pts)
    summary_path = os.path.join(tmp, "summary.json")
    printed = run(python, script, d, extra=["--summary", summary_path])
    errors += check(printed, d, ["time_vs_n", "memory_vs_n", "gflops_vs_n", "recall_vs_speedup",
                                 "recall_vs_n"])
    with open(summary_path) as f:
        s = json.load(f)

    def close(a, b):
        return abs(a - b) <= 1e-9 * max(abs(a), abs(b))

    # Recall against speedup: speedup = dense time / time at the same N.
    got = s["recall_vs_speedup"]["series"]
    want = {"dense": [[1.0, 1.0]] * 4,
            "bigbird": sorted([[2e-10 * n * n / (5e-8 * n), 0.25] for n in (1024, 4096, 8192)]
                              + [[2e-10 * 2048 ** 2 / 5.0e-3, 0.25]]),
            "causal": [[2.0, 1.0]] * 4}
    for name, xy in want.items():
        g = got.get(name, [])
        if len(g) != len(xy) or not all(close(a[0], b[0]) and close(a[1], b[1])
                                        for a, b in zip(g, xy)):
            errors.append("recall_vs_speedup %s: %s, want %s" % (name, g, xy))
    # The noisy point is ringed where it is drawn: time (ms) and recall/speedup.
    if s["time_vs_n"]["noisy"] != [[2048, 5.0]]:
        errors.append("time_vs_n noisy points: %s, want [[2048, 5.0]]" % s["time_vs_n"]["noisy"])
    if len(s["recall_vs_speedup"]["noisy"]) != 1:
        errors.append("recall_vs_speedup noisy points: %s" % s["recall_vs_speedup"]["noisy"])
    # Recall against N names each series' baseline.
    if sorted(s["recall_vs_n"]["series"]) != ["bigbird (vs dense)", "causal (vs causal)",
                                              "dense (vs dense)"]:
        errors.append("recall_vs_n series: %s" % sorted(s["recall_vs_n"]["series"]))
    # N axes read 1K..8K; GFLOP/s ticks are plain numbers.
    for name in ("time_vs_n", "memory_vs_n", "gflops_vs_n", "recall_vs_n"):
        if s[name]["xticklabels"] != ["1K", "2K", "4K", "8K"]:
            errors.append("%s x ticks: %s" % (name, s[name]["xticklabels"]))
    for label in s["gflops_vs_n"]["yticklabels"] + s["time_vs_n"]["yticklabels"]:
        try:
            float(label.replace("\u2212", "-"))
        except ValueError:
            errors.append("tick label %r is not a plain number" % label)
    # Memory: each line labelled directly, and the y range is the data's, not the guides'.
    mem = s["memory_vs_n"]
    if sorted(mem["labels"]) != ["bigbird", "causal", "dense"]:
        errors.append("memory_vs_n direct labels: %s" % mem["labels"])
    ys = [y for xy in mem["series"].values() for _, y in xy]
    if not (mem["ylim"][0] >= min(ys) / 1.51 and mem["ylim"][1] <= max(ys) * 1.51):
        errors.append("memory_vs_n y range %s is not the data's %s..%s" % (mem["ylim"], min(ys),
                                                                          max(ys)))
    return errors


def main():
    script, python = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="spattn_plot_")
    errors = []
    try:
        scaling = os.path.join(tmp, "scaling")
        write(scaling, "scaling", scaling_points(2))
        printed = run(python, script, scaling)
        errors += check(printed, scaling, ["time_vs_n", "memory_vs_n", "gflops_vs_n"])
        svg = {}
        for name in ("time_vs_n", "memory_vs_n", "gflops_vs_n"):
            svg[name] = read_bytes(os.path.join(scaling, "charts", name + ".svg"))
        run(python, script, scaling)
        if read_bytes(os.path.join(scaling, "charts", "time_vs_n.svg")) != svg["time_vs_n"]:
            errors.append("time_vs_n.svg differs between two runs on the same data")

        # The same sweep in the untyped records of earlier versions (no "schema") reads the same:
        # identical charts, byte for byte.
        legacy = os.path.join(tmp, "legacy")
        write(legacy, "scaling", scaling_points(1))
        errors += check(run(python, script, legacy), legacy,
                        ["time_vs_n", "memory_vs_n", "gflops_vs_n"])
        for name in svg:
            if read_bytes(os.path.join(legacy, "charts", name + ".svg")) != svg[name]:
                errors.append("%s.svg of the schema-1 records differs from schema 2's" % name)

        # A record of a newer schema is refused, naming the file and the line (3: header first).
        newer = os.path.join(tmp, "newer")
        pts = scaling_points(2)
        pts[1]["schema"] = 3
        write(newer, "scaling", pts)
        r = run(python, script, newer, expect=2)
        jsonl = os.path.join(newer, "results.jsonl")
        if r.returncode != 2 or "%s line 3" % jsonl not in r.stderr or "schema 3" not in r.stderr:
            errors.append("schema 3 not refused with exit 2 naming %s line 3: exit %d, %s"
                          % (jsonl, r.returncode, r.stderr.strip()))
        if os.path.exists(os.path.join(newer, "charts")):
            errors.append("charts written for a file with a schema-3 record")

        errors += check_content(python, script, tmp)

        for schema in (2, 1):
            density = os.path.join(tmp, "density%d" % schema)
            pts, i = [], 0
            for pct in (10, 40, 70, 100):
                for mode, factor in (("auto", 1.0), ("partial", 1.2)):
                    d = pct / 100
                    pts.append(point(i, "blocks %d%%" % pct, 4096, factor * (1e-3 + 4e-3 * d), d,
                                     mode, schema=schema)); i += 1
            write(density, "density", pts)
            errors += check(run(python, script, density), density, ["time_vs_density"])
        if (read_bytes(os.path.join(tmp, "density1", "charts", "time_vs_density.svg"))
                != read_bytes(os.path.join(tmp, "density2", "charts", "time_vs_density.svg"))):
            errors.append("time_vs_density.svg of the schema-1 records differs from schema 2's")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for e in errors:
        print("FAIL:", e)
    print("ok" if not errors else "%d failure(s)" % len(errors))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
