#!/usr/bin/env python3
"""Charts of a sweep: scripts/plot_sweep.py DIR

Reads DIR/results.jsonl (written by `spattn sweep`; point records of schema 2, or of schema 1 from
earlier spattn versions, read by read_measurement) and writes DIR/charts/*.png and *.svg:
  time_vs_n      median attention time against N, log-log, one line per pattern, with dashed
                 n and n^2 reference slopes anchored at a data point
  memory_vs_n    peak RSS of the point's process against N, log-log, same references
  gflops_vs_n    useful GFLOP/s (4·d·allowed pairs / time) against N, log-log
  time_vs_density  median time against measured density (allowed pairs / all pairs), one line
                 per block size and tile mode, for sweeps at fixed N (density experiments)
and prints the files it wrote. Only points with status "ok" are drawn.

Needs matplotlib (and only the standard library besides). When the interpreter running it lacks
matplotlib but Debian's /usr/bin/python3 has it (python3-matplotlib), it re-runs itself there.
Exit codes: 0 charts written, 2 bad arguments or a malformed results.jsonl (a record of a schema
newer than 2 included), 3 no Python with matplotlib.
"""
import json
import os
import sys

EXIT_USAGE = 2
EXIT_NO_MATPLOTLIB = 3
SYSTEM_PYTHON = "/usr/bin/python3"
REEXEC_GUARD = "SPATTN_PLOT_REEXEC"


def import_matplotlib():
    """Returns pyplot, re-running the script under Debian's Python when this one lacks it."""
    try:
        import matplotlib
    except ImportError:
        here = os.path.realpath(sys.executable or "")
        if (os.environ.get(REEXEC_GUARD) != "1" and os.path.exists(SYSTEM_PYTHON)
                and os.path.realpath(SYSTEM_PYTHON) != here):
            env = dict(os.environ, **{REEXEC_GUARD: "1"})
            # A pyenv or venv interpreter sets variables that would steer the system Python to
            # the wrong site-packages.
            for var in ("PYTHONHOME", "PYTHONPATH"):
                env.pop(var, None)
            sys.stdout.flush()
            os.execve(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:],
                      env)
        sys.stderr.write(
            "plot_sweep.py: error: matplotlib is not available to %s%s; install it "
            "(Debian: apt-get install python3-matplotlib, or pip install matplotlib)\n"
            % (sys.executable, "" if not os.path.exists(SYSTEM_PYTHON) or
               os.path.realpath(SYSTEM_PYTHON) == here else " nor to " + SYSTEM_PYTHON))
        sys.exit(EXIT_NO_MATPLOTLIB)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # Same data, same SVG bytes: fixed ids instead of random ones.
    matplotlib.rcParams["svg.hashsalt"] = "spattn"
    return plt


def fail(message):
    sys.stderr.write("plot_sweep.py: error: %s\n" % message)
    sys.exit(EXIT_USAGE)


SCHEMA = 2  # the measurement record's version (experiments/README.md, "The measurement record")


def number(value):
    """value when it is a number (not a bool), else None."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def field(obj, *path):
    """The value at a path of object keys, or None when a step is missing or null."""
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


class Measurement:
    """The fields of one point record that the charts use, named as in the record (schema 2):
    axes (pattern, n, nk, head_dim, heads, kv_heads, batch, threads, block_q, block_k, tile_mode,
    executor, inputs), status, index, key, attention.median (s), attention.useful_gflops,
    layout.density, resources.peak_rss_bytes."""

    def __init__(self, axes, status, index, key, median, useful_gflops, density, peak_rss_bytes):
        self.axes, self.status, self.index, self.key = axes, status, index, key
        self.pattern, self.n = axes["pattern"], axes["n"]
        self.median, self.useful_gflops = median, useful_gflops
        self.density, self.peak_rss_bytes = density, peak_rss_bytes


def median(values):
    """The median of a non-empty list (mean of the two middle values for even counts)."""
    v = sorted(values)
    k = len(v) // 2
    return v[k] if len(v) % 2 == 1 else (v[k - 1] + v[k]) / 2


def upgrade_schema1(rec):
    """An untyped point record of earlier spattn versions (no "schema") in the schema-2 shape,
    for the fields the charts use, as measurement_from_json converts it: axes.block -> block_q
    and block_k, nk = n, measure.attention_seconds.all -> attention.seconds,
    measure.allowed_pairs -> layout.allowed_pairs, peak_rss_bytes -> resources. The derived
    figures are left out: read_measurement recomputes them from these."""
    axes = dict(rec.get("axes") or {})
    if "block" in axes:
        axes["block_q"] = axes["block_k"] = axes.pop("block")
    if "n" in axes:
        axes["nk"] = axes["n"]
    measure = rec.get("measure") if isinstance(rec.get("measure"), dict) else {}
    times = field(measure, "attention_seconds", "all")
    attention = {"seconds": times} if isinstance(times, list) else None
    layout = None
    if "allowed_pairs" in measure:
        layout = {"allowed_pairs": measure["allowed_pairs"]}
    return dict(rec, schema=1, axes=axes, attention=attention, layout=layout,
                resources={"peak_rss_bytes": rec.get("peak_rss_bytes")})


def read_measurement(rec, where):
    """The Measurement of a point record (schema 2, or schema 1 converted); fails naming `where`
    ("FILE line N") for a schema newer than SCHEMA or a record without axes.pattern and axes.n.
    Derived figures (attention.median, layout.density, attention.useful_gflops) are taken as
    written, or recomputed from the times and counts when the record does not carry them (as
    for schema 1): median of attention.seconds, allowed pairs / (batch·heads·n·nk),
    4·head_dim·allowed pairs / median."""
    schema = rec.get("schema", 1)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        fail("%s: \"schema\" must be a positive integer, not %s" % (where, json.dumps(schema)))
    if schema > SCHEMA:
        fail("%s: record schema %d is newer than this script reads (up to %d); use the "
             "plot_sweep.py of the spattn that wrote it" % (where, schema, SCHEMA))
    if schema == 1:
        rec = upgrade_schema1(rec)
    axes = rec.get("axes")
    if (not isinstance(axes, dict) or not isinstance(axes.get("pattern"), str)
            or not isinstance(number(axes.get("n")), int)):
        fail("%s: point record without axes.pattern and axes.n" % where)
    seconds = field(rec, "attention", "seconds")
    med = number(field(rec, "attention", "median"))
    if med is None and isinstance(seconds, list) and seconds and all(
            number(t) is not None for t in seconds):
        med = median(seconds)
    allowed = number(field(rec, "layout", "allowed_pairs"))
    density = number(field(rec, "layout", "density"))
    if density is None and allowed is not None:
        total = 1
        for name in ("batch", "heads", "n", "nk"):
            total *= number(axes.get(name)) or 0
        density = allowed / total if total > 0 else None
    gflops = number(field(rec, "attention", "useful_gflops"))
    if gflops is None and allowed is not None and med:
        gflops = 4 * (number(axes.get("head_dim")) or 0) * allowed / med / 1e9
    return Measurement(axes, rec.get("status"), number(rec.get("index")), rec.get("key"), med,
                       gflops, density, number(field(rec, "resources", "peak_rss_bytes")))


def read_results(path):
    """(header, [Measurement]) of a results.jsonl; an incomplete last line is ignored."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            lines = f.read().split("\n")
    except OSError as e:
        fail("cannot read %s: %s" % (path, e.strerror))
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    header, points, by_key = {}, [], {}
    for pos, (line_no, line) in enumerate(numbered):
        try:
            rec = json.loads(line)
        except ValueError as e:
            if pos + 1 == len(numbered):  # an interrupted write
                sys.stderr.write("plot_sweep.py: note: line %d of %s is incomplete and was "
                                 "ignored\n" % (line_no, path))
                break
            fail("%s line %d: not valid JSON (%s)" % (path, line_no, e))
        if not isinstance(rec, dict):
            fail("%s line %d: not a JSON object" % (path, line_no))
        kind = rec.get("kind")
        if kind == "header":
            header = rec
        elif kind == "point":
            m = read_measurement(rec, "%s line %d" % (path, line_no))
            if m.key and m.key in by_key:
                points[by_key[m.key]] = m
            else:
                if m.key:
                    by_key[m.key] = len(points)
                points.append(m)
    points.sort(key=lambda m: m.index or 0)
    return header, points


# Axes that split a pattern into several series when they vary (nk follows n in sweeps).
OTHER_AXES = ("head_dim", "heads", "kv_heads", "batch", "threads", "block_q", "block_k",
              "tile_mode", "executor", "inputs")


def varying(points, names):
    return [a for a in names if len({str(p.axes.get(a)) for p in points}) > 1]


def series_by(points, group_axes):
    """{label: [points]} per pattern and the varying axes, in first-appearance order."""
    out = {}
    for p in points:
        label = p.pattern
        extra = ", ".join("%s=%s" % (a, p.axes.get(a)) for a in group_axes)
        if extra:
            label = "%s (%s)" % (label, extra)
        out.setdefault(label, []).append(p)
    return out


def reference_lines(ax, anchor_n, anchor_y, n_lo, n_hi):
    """Dashed n and n^2 lines through (anchor_n, anchor_y) over [n_lo, n_hi]."""
    for power, style in ((1, (0, (4, 3))), (2, (0, (1, 2)))):
        xs = [n_lo, n_hi]
        ys = [anchor_y * (x / anchor_n) ** power for x in xs]
        ax.plot(xs, ys, color="0.45", linestyle=style, linewidth=1.0, zorder=1,
                label="∝ n" if power == 1 else "∝ n²")


def save(plt, fig, charts, name, written):
    for ext in ("png", "svg"):
        path = os.path.join(charts, "%s.%s" % (name, ext))
        fig.savefig(path, dpi=120, bbox_inches="tight",
                    metadata={"Date": None} if ext == "svg" else None)
        written.append(path)
    plt.close(fig)


def chart_vs_n(plt, points, title, ylabel, value, charts, name, written, references=True):
    group_axes = varying(points, OTHER_AXES)
    series = series_by(points, group_axes)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    all_n, anchor = [], None
    drawn = 0
    for label, pts in series.items():
        xy = sorted((p.n, value(p)) for p in pts)
        xy = [(x, y) for x, y in xy if y is not None and y > 0]
        if not xy:
            continue
        xs, ys = [x for x, _ in xy], [y for _, y in xy]
        ax.plot(xs, ys, marker="o", markersize=4, linewidth=1.5, label=label)
        drawn += 1
        all_n += xs
        # Anchor the references at the smallest N of the first series drawn.
        if anchor is None:
            anchor = (xs[0], ys[0])
    if drawn == 0:
        plt.close(fig)
        return
    if references and anchor is not None and min(all_n) < max(all_n):
        reference_lines(ax, anchor[0], anchor[1], min(all_n), max(all_n))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length N")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8)
    save(plt, fig, charts, name, written)


def chart_density(plt, points, title, charts, written):
    group_axes = [a for a in varying(points, OTHER_AXES + ("n",)) if a != "pattern"]
    groups = {}
    for p in points:
        d, t = p.density, p.median
        if d is None or t is None:
            continue
        label = ", ".join("%s=%s" % (a, p.axes.get(a)) for a in group_axes) or "time"
        groups.setdefault(label, []).append((d, t * 1e3))
    if not groups:
        return
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for label, xy in groups.items():
        xy.sort()
        xs, ys = [x for x, _ in xy], [y for _, y in xy]
        line, = ax.plot(xs, ys, marker="o", markersize=4, linestyle="none", label=label)
        if len(set(xs)) >= 2:  # least-squares line t = a + b·density
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            sxx = sum((x - mx) ** 2 for x in xs)
            b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
            a = my - b * mx
            ax.plot([min(xs), max(xs)], [a + b * min(xs), a + b * max(xs)], linestyle="--",
                    linewidth=1.0, color=line.get_color())
    ax.set_xlabel("density (allowed pairs / all pairs)")
    ax.set_ylabel("attention time, median (ms)")
    ax.set_title(title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8)
    save(plt, fig, charts, "time_vs_density", written)


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: plot_sweep.py DIR   (DIR holds results.jsonl)\n")
        sys.exit(0 if len(argv) == 2 else EXIT_USAGE)
    directory = argv[1]
    if not os.path.isdir(directory):
        fail("results directory %s does not exist" % directory)
    jsonl = os.path.join(directory, "results.jsonl")
    if not os.path.isfile(jsonl):
        fail("%s not found" % jsonl)
    plt = import_matplotlib()  # may re-run the script under another interpreter
    header, points = read_results(jsonl)

    ok = [p for p in points if p.status == "ok"]
    if not ok:
        fail("%s has no point with status ok: nothing to chart" % jsonl)
    name = header.get("experiment", "sweep")
    charts = os.path.join(directory, "charts")
    os.makedirs(charts, exist_ok=True)
    written = []

    layout = (header.get("report") or {}).get("layout", "scaling")
    if len({p.n for p in ok}) >= 2:
        chart_vs_n(plt, ok, "%s: attention time" % name, "median attention time (s)",
                   lambda p: p.median, charts, "time_vs_n",
                   written)
        chart_vs_n(plt, ok, "%s: peak memory" % name, "peak RSS of the process (MiB)",
                   lambda p: p.peak_rss_bytes and p.peak_rss_bytes / 2**20, charts,
                   "memory_vs_n", written)
        # Throughput has no n / n^2 reference: flat is the ideal.
        chart_vs_n(plt, ok, "%s: useful throughput" % name, "useful GFLOP/s",
                   lambda p: p.useful_gflops, charts, "gflops_vs_n", written,
                   references=False)
    densities = {p.density for p in ok} - {None}
    if layout == "density" or (len({p.n for p in ok}) == 1 and len(densities) >= 2):
        chart_density(plt, ok, "%s: time against density" % name, charts, written)
    if not written:
        fail("%s: no chart applies (need two N values, or a density sweep)" % jsonl)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
