// Report layout "flash_scaling": time per N, the exponent per doubling of N, and where each pattern
// first beats the baseline.
#include <fmt/format.h>

#include <cmath>

#include "report/markdown.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"
#include "report/slopes.hpp"

namespace spattn::experiments::report {

namespace {

std::string render(const LayoutInput& in) {
  const std::vector<Point>& pts = in.points;
  const std::string& baseline = in.baseline;
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("Time (ms, median)", g);
    out += pattern_by_n(g, [](const Point& p) { return fmt_ms(p.time()) + noisy_mark(p); });

    out += section_title("Exponent per doubling of N", g);
    Table t;
    t.head = {"pattern"};
    for (std::size_t i = 0; i + 1 < g.ns.size(); ++i)
      t.head.push_back(fmt::format("{}->{}", short_n(g.ns[i]), short_n(g.ns[i + 1])));
    t.head.insert(t.head.end(), {"overall (fit)", "R^2", "points"});
    for (const std::string& pattern : g.patterns) {
      std::vector<std::string> row = {pattern};
      for (std::size_t i = 0; i + 1 < g.ns.size(); ++i) {
        const Point* a = g.find(pattern, g.ns[i]);
        const Point* b = g.find(pattern, g.ns[i + 1]);
        double e = kNaN;
        if (a != nullptr && b != nullptr && a->time() > 0 && b->time() > 0)
          e = std::log(b->time() / a->time()) /
              std::log(static_cast<double>(g.ns[i + 1]) / static_cast<double>(g.ns[i]));
        row.push_back(fmt_fixed(e, 2));
      }
      const LineFit f =
          slope_vs_n(points_of(g, pattern, true), [](const Point& p) { return p.time(); });
      row.insert(row.end(), {fmt_slope(f), fmt_r2(f), fmt::format("{}", f.points)});
      t.rows.push_back(std::move(row));
    }
    out += t.render() +
           "\nlog2(time(2N)/time(N)) per step (divided by log2 of the N ratio when it is not 2): "
           "2 for quadratic cost, 1 for linear.\n\n";

    out += section_title(fmt::format("Where each sparse pattern first beats {}", baseline), g);
    Table c;
    c.head = {"pattern", "first N faster", fmt::format("{} ms", baseline), "pattern ms", "speedup"};
    for (const std::string& pattern : g.patterns) {
      if (pattern == baseline) continue;
      std::vector<std::string> row = {pattern, "", kNone, kNone, kNone};
      std::int64_t common_max = 0;
      for (std::int64_t n : g.ns) {
        const Point* p = g.find(pattern, n);
        const Point* b = baseline_point(g, baseline, n);
        if (p == nullptr || b == nullptr || !p->ok()) continue;
        common_max = n;
        if (p->time() < b->time()) {
          row = {pattern, fmt::format("{}", n), fmt_ms(b->time()), fmt_ms(p->time()),
                 fmt_ratio(b->time() / p->time())};
          break;
        }
      }
      if (row[1].empty())
        row[1] = common_max == 0
                     ? "no common N"
                     : fmt::format("not up to N = {} (largest where both ran)", common_max);
      c.rows.push_back(std::move(row));
    }
    if (!c.rows.empty()) out += c.render() + "\n";
  }
  out += all_points_sections(pts, baseline);
  return out;
}

}  // namespace

Layout report_layout_flash_scaling() {
  return {"flash_scaling",
          "patterns x N time; exponent per doubling of N; the first N where each pattern beats the "
          "baseline",
          render};
}

}  // namespace spattn::experiments::report
