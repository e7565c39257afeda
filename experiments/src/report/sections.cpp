// Sections of table.md that several layouts share.
#include "report/sections.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report/markdown.hpp"
#include "report/slopes.hpp"

namespace spattn::experiments::report {

std::string section_title(const std::string& title, const Group& g) {
  return g.label.empty() ? fmt::format("## {}\n\n", title)
                         : fmt::format("## {} ({})\n\n", title, g.label);
}

// One row per point that ran: time, speedup, memory, rates, fidelity.
std::string points_table(const Group& g, const std::string& baseline) {
  bool check = false, fidelity = false, oracle = false, needle = false, selection = false;
  for (const Point* p : g.points) {
    if (!p->ok()) continue;
    check |= p->m->check && std::isfinite(p->m->check->rel_l2_error);
    fidelity |= p->m->fidelity && (std::isfinite(p->m->fidelity->rel_l2_error) ||
                                   std::isfinite(p->m->fidelity->recall_mean));
    oracle |= p->m->fidelity && p->m->fidelity->oracle_recall_mean.has_value();
    needle |= p->m->fidelity && p->m->fidelity->needle_hit.has_value();
    selection |= p->m->selection.has_value();
  }
  Table t;
  t.head = {"pattern",        "N",          "time ms (median)",
            "min..max ms",    "max/min",    fmt::format("speedup vs {}", baseline),
            "peak RSS",       "workspace",  "layout",
            "useful GFLOP/s", "efficiency", "build ms"};
  if (check) t.head.push_back("check rel L2");
  if (fidelity) {
    t.head.push_back("fidelity baseline");
    t.head.push_back("rel L2 vs baseline");
    t.head.push_back("recall mean");
    t.head.push_back("recall min");
  }
  if (oracle) t.head.push_back("oracle recall (same keys per row)");
  if (needle) t.head.push_back("needle hit");
  if (selection) t.head.push_back("select ms");
  bool any_noisy = false;
  for (const std::string& pattern : g.patterns) {
    for (const Point* p : points_of(g, pattern, true)) {
      const Point* base = baseline_point(g, baseline, p->n);
      any_noisy |= p->noisy();
      std::vector<std::string> row = {
          p->pattern,
          fmt::format("{}", p->n),
          fmt_ms(p->time()),
          fmt::format("{}..{}", fmt_ms(p->min_time()), fmt_ms(p->max_time())),
          fmt_spread(*p),
          fmt_ratio(baseline_time(g, baseline, *p) / p->time()) +
              (base != nullptr ? noisy_mark(*p, base) : ""),
          fmt_bytes(p->rss()),
          fmt_bytes(p->workspace()),
          fmt_bytes(p->layout_bytes()),
          fmt_fixed(p->useful_gflops(), 2),
          fmt_fixed(p->efficiency(), 3),
          fmt_ms(p->build_seconds())};
      if (check) row.push_back(fmt_sci(p->m->check ? p->m->check->rel_l2_error : kNaN));
      if (fidelity) {
        FidelityFigures none;
        none.rel_l2_error = none.recall_mean = none.recall_min = kNaN;
        const FidelityFigures& f = p->m->fidelity ? *p->m->fidelity : none;
        row.push_back(f.baseline.empty() ? kNone : f.baseline);
        row.push_back(fmt_sci(f.rel_l2_error));
        row.push_back(fmt_fixed(f.recall_mean, 4));
        row.push_back(fmt_fixed(f.recall_min, 4));
      }
      const auto& fo = p->m->fidelity;
      if (oracle) row.push_back(fmt_fixed(fo ? fo->oracle_recall_mean.value_or(kNaN) : kNaN, 4));
      if (needle) row.push_back(fmt_fixed(fo ? fo->needle_hit.value_or(kNaN) : kNaN, 3));
      if (selection)
        row.push_back(p->m->selection ? fmt_fixed(p->m->selection->select_ms, 1) : kNone);
      t.rows.push_back(std::move(row));
    }
  }
  if (t.rows.empty()) return "No point of this group ran.\n\n";
  std::string out = t.render() + "\n";
  if (any_noisy)
    out += fmt::format(
        "noisy: the slowest timed call took more than {}x the fastest, so the median is not a "
        "reliable time (a busy machine, or too few repeats); a speedup is marked when its point "
        "or the baseline's is noisy. Rerun on a quiet machine or with more repeats (`spattn "
        "sweep --repeats`).\n\n",
        kNoisySpread);
  return out;
}

std::string noisy_mark(const Point& p, const Point* base) {
  return p.noisy() || (base != nullptr && base->noisy()) ? " (noisy)" : "";
}

std::string fmt_spread(const Point& p) {
  const double s = p.spread();
  if (!std::isfinite(s)) return kNone;
  return fmt_fixed(s, 2) + (p.noisy() ? " noisy" : "");
}

std::string all_points_sections(const std::vector<Point>& pts, const std::string& baseline) {
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("All points that ran", g);
    out += points_table(g, baseline);
  }
  return out;
}

// Fitted log-log slopes against N per pattern (patterns with at least two N values that ran).
std::string slopes_table(const Group& g) {
  Table t;
  t.head = {"pattern",
            "points",
            "N range",
            "time slope",
            "R^2",
            "predicted slope (computed FLOPs)",
            "peak RSS slope",
            "R^2",
            "workspace+layout slope",
            "R^2"};
  for (const std::string& pattern : g.patterns) {
    const auto pts = points_of(g, pattern, true);
    const LineFit time = slope_vs_n(pts, [](const Point& p) { return p.time(); });
    if (time.points < 2) continue;
    const LineFit pred =
        slope_vs_n(pts, [](const Point& p) { return p.predicted_computed_flops(); });
    const LineFit rss = slope_vs_n(pts, [](const Point& p) { return p.rss(); });
    const LineFit mem = slope_vs_n(pts, [](const Point& p) { return p.attention_bytes(); });
    std::int64_t lo = 0, hi = 0;
    for (const Point* p : pts) {
      if (!(p->time() > 0)) continue;
      lo = lo == 0 ? p->n : std::min(lo, p->n);
      hi = std::max(hi, p->n);
    }
    t.rows.push_back({pattern, fmt::format("{}", time.points), fmt::format("{}..{}", lo, hi),
                      fmt_slope(time), fmt_r2(time), fmt_slope(pred), fmt_slope(rss), fmt_r2(rss),
                      fmt_slope(mem), fmt_r2(mem)});
  }
  if (t.rows.empty()) return "";
  return t.render() +
         "\nSlopes are least-squares fits of log(value) against log(N) over the points that ran "
         "(2 = quadratic, 1 = linear). Peak RSS includes the inputs and the process's fixed "
         "footprint, which flatten its slope at small N; workspace+layout is the memory the "
         "pattern itself drives.\n\n";
}

// Pattern rows × N columns of cell(point); a point that did not run shows its status.
std::string pattern_by_n(const Group& g, const std::function<std::string(const Point&)>& cell) {
  Table t;
  t.head = {"pattern"};
  for (std::int64_t n : g.ns) t.head.push_back(short_n(n));
  for (const std::string& pattern : g.patterns) {
    std::vector<std::string> row = {pattern};
    for (std::int64_t n : g.ns) {
      const Point* p = g.find(pattern, n);
      row.push_back(p == nullptr ? kNone : (p->ok() ? cell(*p) : p->status));
    }
    t.rows.push_back(std::move(row));
  }
  return t.render() + "\n";
}

std::string failures_section(const std::vector<Point>& pts) {
  Table t;
  t.head = {"pattern", "N", "other axes", "status", "predicted memory", "predicted s", "message"};
  const auto vary = varying_axes(pts);
  for (const Point& p : pts) {
    if (p.ok()) continue;
    std::string other;
    for (const std::string& a : vary) {
      if (a == "n") continue;
      const auto it = p.axes.find(a);
      other += fmt::format("{}{}={}", other.empty() ? "" : ", ", a,
                           it == p.axes.end() ? "-" : it->second);
    }
    t.rows.push_back({p.pattern, fmt::format("{}", p.n), other.empty() ? kNone : other, p.status,
                      fmt_bytes(p.predicted_memory()), fmt_fixed(p.predicted_seconds(), 2),
                      p.m->message.empty() ? kNone : p.m->message});
  }
  if (t.rows.empty()) return "";
  return "## Points that did not run\n\n" + t.render() + "\n";
}

}  // namespace spattn::experiments::report
