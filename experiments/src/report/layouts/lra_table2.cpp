// Report layout "lra_table2": speed and peak memory relative to the baseline, patterns x N (as in
// Long Range Arena, Table 2).
#include <fmt/format.h>

#include "report/markdown.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"

namespace spattn::experiments::report {

namespace {

std::string render(const LayoutInput& in) {
  const std::vector<Point>& pts = in.points;
  const std::string& baseline = in.baseline;
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title(fmt::format("Speed relative to {}", baseline), g);
    out += pattern_by_n(g, [&](const Point& p) {
      if (p.pattern == baseline) return fmt::format("{} ms{}", fmt_ms(p.time()), noisy_mark(p));
      const Point* b = baseline_point(g, baseline, p.n);
      return b == nullptr ? kNone : fmt_ratio(b->time() / p.time()) + noisy_mark(p, b);
    });
    out += fmt::format(
        "Speed = {0} time / pattern time (higher is faster); the {0} row gives its median "
        "attention time; (noisy): its timed calls, or the {0} row's, spread more than 1.5x.\n\n",
        baseline);
    out += section_title(fmt::format("Peak memory relative to {}", baseline), g);
    out += pattern_by_n(g, [&](const Point& p) {
      if (p.pattern == baseline) return fmt_bytes(p.rss());
      const Point* b = baseline_point(g, baseline, p.n);
      return b == nullptr ? kNone : fmt_ratio(p.rss() / b->rss());
    });
    out += fmt::format(
        "Memory = pattern peak RSS / {0} peak RSS (lower is smaller); the {0} row gives its peak "
        "RSS. Peak RSS of the child process includes Q, K, V and O.\n\n",
        baseline);
  }
  out += all_points_sections(pts, baseline);
  return out;
}

}  // namespace

Layout report_layout_lra_table2() {
  return {
      "lra_table2",
      "patterns x N: speed and peak memory relative to the baseline (Long Range Arena, Table 2)",
      render};
}

}  // namespace spattn::experiments::report
