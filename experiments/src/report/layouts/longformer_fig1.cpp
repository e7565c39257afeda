// Report layout "longformer_fig1": time and memory against N, and time against window size (as in
// Longformer, Figure 1).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>

#include "report/markdown.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"
#include "report/slopes.hpp"

namespace spattn::experiments::report {

namespace {

// The window size a pattern's display name (or else its spec) carries: its first integer.
std::optional<double> window_of(const Point& p) {
  for (const std::string* s : {&p.pattern, &p.spec}) {
    for (std::size_t i = 0; i < s->size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>((*s)[i]))) continue;
      std::size_t j = i;
      while (j < s->size() && std::isdigit(static_cast<unsigned char>((*s)[j]))) ++j;
      return std::stod(s->substr(i, j - i));
    }
  }
  return std::nullopt;
}

std::string render(const LayoutInput& in) {
  const std::vector<Point>& pts = in.points;
  const std::string& baseline = in.baseline;
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    // Time and memory against N: patterns that ran at two or more N.
    Group multi = g;
    multi.patterns.clear();
    for (const std::string& pattern : g.patterns) {
      std::set<std::int64_t> ns;
      for (const Point* p : points_of(g, pattern, false)) ns.insert(p->n);
      if (ns.size() >= 2) multi.patterns.push_back(pattern);
    }
    if (!multi.patterns.empty()) {
      out += section_title("Time and memory against N", g);
      Table t;
      t.head = {"pattern",          "N",
                "time ms (median)", fmt::format("speedup vs {}", baseline),
                "peak RSS",         "workspace+layout"};
      for (const std::string& pattern : multi.patterns)
        for (std::int64_t n : g.ns) {
          const Point* p = g.find(pattern, n);
          if (p == nullptr) continue;
          if (!p->ok()) {
            t.rows.push_back({pattern, fmt::format("{}", n), p->status, kNone, kNone, kNone});
            continue;
          }
          t.rows.push_back({pattern, fmt::format("{}", n), fmt_ms(p->time()),
                            fmt_ratio(baseline_time(g, baseline, *p) / p->time()),
                            fmt_bytes(p->rss()), fmt_bytes(p->attention_bytes())});
        }
      out += t.render() + "\n";
      const std::string slopes = slopes_table(multi);
      if (!slopes.empty()) out += section_title("Slopes against N", g) + slopes;
    }
    // Time against window size, at each N where two or more window sizes ran.
    for (std::int64_t n : g.ns) {
      struct W {
        double w;
        const Point* p;
      };
      std::vector<W> ws;
      std::set<double> distinct;
      for (const std::string& pattern : g.patterns) {
        if (pattern == baseline) continue;
        const Point* p = g.find(pattern, n);
        if (p == nullptr) continue;
        const auto w = window_of(*p);
        if (!w) continue;
        ws.push_back({*w, p});
        distinct.insert(*w);
      }
      if (distinct.size() < 2) continue;
      std::stable_sort(ws.begin(), ws.end(), [](const W& a, const W& b) { return a.w < b.w; });
      out += section_title(fmt::format("Time against window size at N = {}", n), g);
      Table t;
      t.head = {"window", "pattern", "time ms (median)", "peak RSS", "allowed pairs"};
      std::vector<double> x, y;
      for (const W& w : ws) {
        t.rows.push_back({fmt_count(w.w), w.p->pattern,
                          w.p->ok() ? fmt_ms(w.p->time()) : w.p->status, fmt_bytes(w.p->rss()),
                          fmt_count(w.p->allowed_pairs())});
        if (w.p->ok() && std::isfinite(w.p->time())) {
          x.push_back(w.w);
          y.push_back(w.p->time() * 1e3);
        }
      }
      out += t.render() + "\n";
      const LineFit f = fit_linear(x, y);
      if (f.valid())
        out += fmt::format(
            "Linear fit time = a + b·window: a = {:.4f} ms, b = {:.6f} ms per key, R^2 = {:.4f} "
            "({} points). The window is the first number in each pattern's name.\n\n",
            f.intercept, f.slope, f.r2, f.points);
    }
  }
  out += all_points_sections(pts, baseline);
  return out;
}

}  // namespace

Layout report_layout_longformer_fig1() {
  return {"longformer_fig1",
          "time and memory against N with slopes; time against window size with a linear fit "
          "(Longformer, Figure 1)",
          render};
}

}  // namespace spattn::experiments::report
