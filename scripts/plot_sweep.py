#!/usr/bin/env python3
"""Charts of a sweep: scripts/plot_sweep.py DIR

Reads DIR/results.jsonl (written by `spattn sweep`; point records of schema 2, or of schema 1 from
earlier spattn versions, read by read_measurement) and writes DIR/charts/*.png and *.svg:
  time_vs_n      median attention time against N, log-log, one line per pattern, min..max of
                 the timed calls as bars (a selector's time includes its selection,
                 selection.select_ms, here and in every speedup), with dashed n and n^2 reference slopes anchored at a
                 data point (clipped to the data's range)
  memory_vs_n    peak RSS of the point's process against N, log-log, same references; each
                 line its own marker and dash pattern, labelled at its last point
  gflops_vs_n    useful GFLOP/s (4·d·allowed pairs / time) against N, linear axis from 0
  recall_vs_speedup  attention-mass recall (mean) against the speedup over the report's
                 baseline at the same N, one point per pattern and N (labelled with N); with
                 fidelity recorded; a hollow marker of the same colour above a point is the
                 oracle ceiling at the same keys per row (fidelity.oracle_recall_mean)
  recall_vs_n    recall (mean) against N, one line per pattern, naming each fidelity baseline
  time_vs_density  median time against measured density (allowed pairs / all pairs), one line
                 per block size and tile mode, for sweeps at fixed N (density experiments)
and prints the files it wrote. Only points with status "ok" are drawn. N axes are labelled
1K, 2K, ...; a point whose slowest timed call took more than 1.5x its fastest (NOISY_SPREAD, as
in table.md) is ringed in red ("noisy") on every chart it appears on.

  plot_sweep.py DIR [--summary FILE]   FILE: what each chart drew, as JSON (series and their
                                       points, axis limits, tick labels, noisy points)

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


NOISY_SPREAD = 1.5  # max/min of a point's timed calls above which it is flagged (as table.md)
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
    executor, inputs), status, index, key, attention.median, min and max (s),
    attention.useful_gflops, layout.density, resources.peak_rss_bytes, fidelity.recall_mean and
    fidelity.baseline."""

    def __init__(self, axes, status, index, key, median, useful_gflops, density, peak_rss_bytes,
                 fastest=None, slowest=None, recall_mean=None, fidelity_baseline=None,
                 oracle_recall=None):
        self.axes, self.status, self.index, self.key = axes, status, index, key
        self.pattern, self.n = axes["pattern"], axes["n"]
        self.median, self.useful_gflops = median, useful_gflops
        self.density, self.peak_rss_bytes = density, peak_rss_bytes
        self.min, self.max = fastest, slowest
        self.recall_mean, self.fidelity_baseline = recall_mean, fidelity_baseline
        self.oracle_recall = oracle_recall

    def noisy(self):
        """max/min of the timed calls above NOISY_SPREAD."""
        return bool(self.min and self.max and self.max / self.min > NOISY_SPREAD)


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
    fastest = number(field(rec, "attention", "min"))
    slowest = number(field(rec, "attention", "max"))
    if isinstance(seconds, list) and seconds and all(number(t) is not None for t in seconds):
        fastest = fastest if fastest is not None else min(seconds)
        slowest = slowest if slowest is not None else max(seconds)
    # A selector's estimation step is part of its time: median, min and max include
    # selection.select_ms, so every speedup and time chart compares end to end.
    select_ms = number(field(rec, "selection", "select_ms"))
    if select_ms is not None:
        med, fastest, slowest = [None if t is None else t + select_ms / 1e3
                                 for t in (med, fastest, slowest)]
    baseline = field(rec, "fidelity", "baseline")
    return Measurement(axes, rec.get("status"), number(rec.get("index")), rec.get("key"), med,
                       gflops, density, number(field(rec, "resources", "peak_rss_bytes")),
                       fastest, slowest, number(field(rec, "fidelity", "recall_mean")),
                       baseline if isinstance(baseline, str) else None,
                       number(field(rec, "fidelity", "oracle_recall_mean")))


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


def short_n(n):
    """1K, 3K, 1M for multiples of 1024 (as table.md's headers), else the number."""
    if n % 2**20 == 0:
        return "%dM" % (n // 2**20)
    if n % 1024 == 0:
        return "%dK" % (n // 1024)
    return str(n)


def reference_lines(ax, anchor_n, anchor_y, n_lo, n_hi):
    """Dashed n and n^2 lines through (anchor_n, anchor_y) over [n_lo, n_hi]; the caller fixes
    the y limits to the data first, so the guides are clipped instead of stretching the axis."""
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


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p")
DASHES = ("-", "--", "-.", ":")


def style_of(k):
    """Marker and line style of the k-th series: 12 markers x 4 dash patterns."""
    return MARKERS[k % len(MARKERS)], DASHES[(k // len(MARKERS) + k) % len(DASHES)]


def ring_noisy(ax, xy_noisy, summary):
    """Red rings around noisy points, with one legend entry."""
    if not xy_noisy:
        return
    ax.plot([x for x, _ in xy_noisy], [y for _, y in xy_noisy], linestyle="none", marker="o",
            markersize=11, markerfacecolor="none", markeredgecolor="red", markeredgewidth=1.2,
            zorder=4, label="noisy: max/min > %g" % NOISY_SPREAD)


def n_ticks(ax, ns):
    """Ticks at the N values drawn, labelled 1K, 2K, ... (no powers of ten)."""
    import matplotlib.ticker as ticker
    ns = sorted(set(ns))
    if len(ns) > 12:  # every other one
        ns = ns[::2]
    ax.xaxis.set_major_locator(ticker.FixedLocator(ns))
    ax.xaxis.set_major_formatter(ticker.FixedFormatter([short_n(n) for n in ns]))
    ax.xaxis.set_minor_locator(ticker.NullLocator())


def plain_log_y(ax):
    """Log y axis with plain numbers (0.1, 2, 500) instead of powers of ten; the minor ticks
    labelled too (all of them when the axis spans under 1.5 decades, else 2x and 5x)."""
    import math
    import matplotlib.ticker as ticker
    lo, hi = ax.get_ylim()
    every = math.log10(hi / lo) < 1.5
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: "%g" % y))
    ax.yaxis.set_minor_formatter(ticker.FuncFormatter(
        lambda y, _: "%g" % y if every or ("%g" % y)[0] in "25" else ""))


def place_labels(ax, labels, log_y):
    """Series names right of their last points, (name, x, y, color) each, moved apart
    vertically to at least 4% of the axis height, with a thin line to the point."""
    import math
    if not labels:
        return
    lo, hi = ax.get_ylim()
    to_u = (lambda y: math.log(y)) if log_y else (lambda y: y)
    from_u = (lambda u: math.exp(u)) if log_y else (lambda u: u)
    gap = 0.04 * (to_u(hi) - to_u(lo))
    order = sorted(labels, key=lambda l: to_u(l[2]))
    placed = []
    for name, x, y, color in order:
        u = to_u(y)
        if placed and u < placed[-1] + gap:
            u = placed[-1] + gap
        placed.append(u)
    # Keep the stack inside the axes: shift it down if it runs over the top.
    over = placed[-1] - (to_u(hi) - gap / 2)
    if over > 0:
        placed = [u - over for u in placed]
    for (name, x, y, color), u in zip(order, placed):
        ax.annotate(name, (x, y), xytext=(x * 1.12, from_u(u)), textcoords="data", fontsize=7,
                    color=color, va="center",
                    arrowprops={"arrowstyle": "-", "color": color, "linewidth": 0.5,
                                "relpos": (0, 0.5)})


def describe(fig, ax, name, series, noisy, summary, labels=()):
    """What the chart drew, for --summary."""
    fig.canvas.draw()
    summary[name] = {
        "series": {k: [[x, y] for x, y in v] for k, v in series.items()},
        "xlim": list(ax.get_xlim()), "ylim": list(ax.get_ylim()),
        "xticklabels": [t.get_text() for t in ax.get_xticklabels() if t.get_text()],
        "yticklabels": [t.get_text() for t in ax.get_yticklabels() if t.get_text()],
        "noisy": [[x, y] for x, y in noisy], "labels": list(labels),
        "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel()}


def chart_vs_n(plt, points, title, ylabel, value, charts, name, written, summary,
               references=True, log_y=True, direct_labels=False, bars=None, flag_noisy=True):
    """value(p) against N per series. bars(p) -> (lo, hi) draws a min..max bar per point;
    direct_labels writes each series' name right of its last point (spread apart where they
    would overlap); flag_noisy rings the points whose timings are noisy."""
    group_axes = varying(points, OTHER_AXES)
    series = series_by(points, group_axes)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    all_n, all_y, anchor, drawn, noisy, labels = [], [], None, {}, [], []
    for k, (label, pts) in enumerate(series.items()):
        xy = sorted(((p.n, value(p), p) for p in pts if value(p) is not None and value(p) > 0),
                    key=lambda t: (t[0], t[1]))
        if not xy:
            continue
        xs, ys = [x for x, _, _ in xy], [y for _, y, _ in xy]
        marker, dash = style_of(k)
        # Labelled lines stay out of the legend, which then holds the guides alone.
        line, = ax.plot(xs, ys, marker=marker, markersize=5, linewidth=1.5, linestyle=dash,
                        label="_" + label if direct_labels else label, zorder=3)
        if bars is not None:
            lo_hi = [bars(p) for _, _, p in xy]
            if all(b is not None for b in lo_hi):
                ax.vlines(xs, [b[0] for b in lo_hi], [b[1] for b in lo_hi],
                          color=line.get_color(), linewidth=0.8, alpha=0.6, zorder=2)
                all_y += [b[0] for b in lo_hi] + [b[1] for b in lo_hi]
        if direct_labels:
            labels.append((label, xs[-1], ys[-1], line.get_color()))
        if flag_noisy:
            noisy += [(x, y) for x, y, p in xy if p.noisy()]
        drawn[label] = list(zip(xs, ys))
        all_n += xs
        all_y += ys
        if anchor is None:  # the references go through the first series' smallest N
            anchor = (xs[0], ys[0])
    if not drawn:
        plt.close(fig)
        return
    ax.set_xscale("log", base=2)
    lo_n, hi_n = min(all_n), max(all_n)
    # The data decide the limits; the guides are drawn within them.
    ax.set_xlim(lo_n / 1.15, hi_n * (1.9 if direct_labels else 1.15))
    if log_y:
        ax.set_yscale("log")
        ax.set_ylim(min(all_y) / 1.5, max(all_y) * 1.5)
        plain_log_y(ax)
    else:
        ax.set_ylim(0, max(all_y) * 1.1)
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    if references and anchor is not None and lo_n < hi_n:
        reference_lines(ax, anchor[0], anchor[1], lo_n, hi_n)
    ring_noisy(ax, noisy, summary)
    place_labels(ax, labels, log_y)
    n_ticks(ax, all_n)
    ax.set_xlabel("sequence length N")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8, loc="upper left" if direct_labels else "best")
    describe(fig, ax, name, drawn, noisy, summary, [l[0] for l in labels])
    save(plt, fig, charts, name, written)


def same_point_axes(p):
    """The axes that identify p's comparison group: all but pattern, spec and the seed."""
    return tuple((a, str(p.axes.get(a))) for a in ("n",) + OTHER_AXES)


def speedups(points, baseline):
    """{id(p): baseline median / p's median} where the baseline pattern ran at p's other axes."""
    base = {same_point_axes(p): p.median for p in points
            if p.pattern == baseline and p.median}
    out = {}
    for p in points:
        b = base.get(same_point_axes(p))
        if b and p.median:
            out[id(p)] = b / p.median
    return out


def chart_recall(plt, points, baseline, name, charts, written, summary):
    """recall_vs_speedup and recall_vs_n, for points with a recorded recall."""
    with_recall = [p for p in points if p.recall_mean is not None]
    if not with_recall:
        return
    group_axes = varying(with_recall, OTHER_AXES)
    series = series_by(with_recall, group_axes)
    speed = speedups(points, baseline)
    # Recall against speedup: one point per pattern and N.
    fig, ax = plt.subplots(figsize=(7.5, 5))
    drawn, noisy = {}, []
    for k, (label, pts) in enumerate(series.items()):
        xy = sorted(((speed[id(p)], p.recall_mean, p) for p in pts if id(p) in speed),
                    key=lambda t: (t[0], t[1], t[2].n))
        if not xy:
            continue
        marker, _ = style_of(k)
        line, = ax.plot([x for x, _, _ in xy], [y for _, y, _ in xy], marker=marker,
                        linestyle="none", markersize=6, label=label, zorder=3)
        for x, y, p in xy:
            ax.annotate(short_n(p.n), (x, y), xytext=(4, 3), textcoords="offset points",
                        fontsize=6, color=line.get_color())
        noisy += [(x, y) for x, y, p in xy if p.noisy()]
        drawn[label] = [(x, y) for x, y, _ in xy]
        # The oracle ceiling at the same keys per row, as a hollow marker above each point.
        ceil = [(x, p.oracle_recall) for x, _, p in xy
                if p.oracle_recall is not None and p.pattern != baseline]
        if ceil:
            ax.plot([x for x, _ in ceil], [y for _, y in ceil], marker=marker, linestyle="none",
                    markersize=6, markerfacecolor="none", color=line.get_color(), zorder=2)
            drawn[label + " (oracle)"] = ceil
    if drawn:
        ax.set_xscale("log")
        import matplotlib.ticker as ticker
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: "%gx" % v))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_ylim(0, 1.05)
        ring_noisy(ax, noisy, summary)
        ax.set_xlabel("speedup over %s at the same N (median times)" % baseline)
        ax.set_ylabel("attention-mass recall, mean over rows")
        ax.set_title("%s: recall against speedup (labels: N)" % name)
        ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
        ax.legend(fontsize=8)
        describe(fig, ax, "recall_vs_speedup", drawn, noisy, summary)
        save(plt, fig, charts, "recall_vs_speedup", written)
    else:
        plt.close(fig)
    # Recall against N, naming what each series was compared with.
    if len({p.n for p in with_recall}) < 2:
        return
    fig, ax = plt.subplots(figsize=(7.5, 5))
    drawn = {}
    for k, (label, pts) in enumerate(series.items()):
        xy = sorted((p.n, p.recall_mean) for p in pts)
        bases = sorted({p.fidelity_baseline or "?" for p in pts})
        full = "%s (vs %s)" % (label, "/".join(bases))
        marker, dash = style_of(k)
        ax.plot([x for x, _ in xy], [y for _, y in xy], marker=marker, linestyle=dash,
                markersize=5, label=full)
        drawn[full] = xy
    ax.set_xscale("log", base=2)
    n_ticks(ax, [p.n for p in with_recall])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("sequence length N")
    ax.set_ylabel("attention-mass recall, mean over rows")
    ax.set_title("%s: recall against N" % name)
    ax.grid(True, which="both", linewidth=0.3, alpha=0.5)
    ax.legend(fontsize=8)
    describe(fig, ax, "recall_vs_n", drawn, [], summary)
    save(plt, fig, charts, "recall_vs_n", written)


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
    args = argv[1:]
    summary_path = None
    if len(args) == 3 and args[1] == "--summary":
        summary_path = args[2]
        args = args[:1]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: plot_sweep.py DIR [--summary FILE]   (DIR holds results.jsonl)\n")
        sys.exit(0 if args in (["-h"], ["--help"]) else EXIT_USAGE)
    directory = args[0]
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
    baseline = (header.get("report") or {}).get("baseline", "dense")
    summary = {}
    if len({p.n for p in ok}) >= 2:
        chart_vs_n(plt, ok, "%s: attention time" % name, "median attention time (ms; bars: "
                   "min..max)", lambda p: p.median and p.median * 1e3, charts, "time_vs_n",
                   written, summary,
                   bars=lambda p: (p.min * 1e3, p.max * 1e3) if p.min and p.max else None)
        chart_vs_n(plt, ok, "%s: peak memory" % name, "peak RSS of the process (MiB)",
                   lambda p: p.peak_rss_bytes and p.peak_rss_bytes / 2**20, charts,
                   "memory_vs_n", written, summary, direct_labels=True, flag_noisy=False)
        # Throughput has no n / n^2 reference: flat is the ideal.
        chart_vs_n(plt, ok, "%s: useful throughput" % name, "useful GFLOP/s",
                   lambda p: p.useful_gflops, charts, "gflops_vs_n", written, summary,
                   references=False, log_y=False)
    chart_recall(plt, ok, baseline, name, charts, written, summary)
    densities = {p.density for p in ok} - {None}
    if layout == "density" or (len({p.n for p in ok}) == 1 and len(densities) >= 2):
        chart_density(plt, ok, "%s: time against density" % name, charts, written)
    if not written:
        fail("%s: no chart applies (need two N values, or a density sweep)" % jsonl)
    if summary_path:
        with open(summary_path, "w") as f:
            json.dump(summary, f, indent=1, sort_keys=True)
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
