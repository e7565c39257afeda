// Report layout "density": time against measured density per tile mode, the linear fit t = a +
// b·density and the cost of masking (partial/auto).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

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
  for (const Group& g : group_points(pts, {"tile_mode"}, /*split_blocks=*/true)) {
    std::vector<std::string> modes;
    for (const Point* p : g.points) {
      const auto it = p->axes.find("tile_mode");
      const std::string m = it == p->axes.end() ? "" : it->second;
      if (std::find(modes.begin(), modes.end(), m) == modes.end()) modes.push_back(m);
    }
    std::sort(modes.begin(), modes.end());  // "auto" before "partial"
    struct Row {
      std::string pattern;
      std::int64_t n;
      double density, computed_density;
    };
    std::vector<Row> rows;
    for (const std::string& pattern : g.patterns) {
      for (std::int64_t n : g.ns) {
        double d = kNaN, cd = kNaN;
        for (const Point* p : g.points) {
          if (p->pattern != pattern || p->n != n || !p->ok()) continue;
          d = p->density();
          cd = d * p->computed_pairs() / p->allowed_pairs();
          break;
        }
        if (g.find(pattern, n) != nullptr) rows.push_back({pattern, n, d, cd});
      }
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      if (std::isnan(a.density) || std::isnan(b.density))
        return !std::isnan(a.density) && std::isnan(b.density);
      return a.density < b.density;
    });
    const bool two = std::find(modes.begin(), modes.end(), "auto") != modes.end() &&
                     std::find(modes.begin(), modes.end(), "partial") != modes.end();
    out += section_title("Time against density", g);
    Table t;
    t.head = {"pattern", "N", "density", "computed density"};
    for (const std::string& m : modes)
      t.head.push_back(m.empty() ? "time ms" : fmt::format("time ms ({})", m));
    if (two) t.head.push_back("partial/auto");
    std::vector<double> ratios;
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> series;
    for (const Row& r : rows) {
      std::vector<std::string> row = {r.pattern, fmt::format("{}", r.n), fmt_fixed(r.density, 4),
                                      fmt_fixed(r.computed_density, 4)};
      std::map<std::string, double> times;
      for (const std::string& m : modes) {
        const Point* p = g.find(r.pattern, r.n, m);
        times[m] = p == nullptr ? kNaN : p->time();
        row.push_back(p == nullptr ? kNone : (p->ok() ? fmt_ms(p->time()) : p->status));
        if (p != nullptr && p->ok() && std::isfinite(r.density) && std::isfinite(p->time())) {
          series[m].first.push_back(r.density);
          series[m].second.push_back(p->time() * 1e3);
        }
      }
      if (two) {
        const double ratio = times["partial"] / times["auto"];
        if (std::isfinite(ratio)) ratios.push_back(ratio);
        row.push_back(fmt_fixed(ratio, 3));
      }
      t.rows.push_back(std::move(row));
    }
    out += t.render() + "\n";

    out += section_title("Linear fit t = a + b·density", g);
    Table f;
    f.head = {"tile_mode", "points", "a (ms)", "b (ms per unit density)", "R^2"};
    for (const std::string& m : modes) {
      const auto& [x, y] = series[m];
      const LineFit fit = fit_linear(x, y);
      f.rows.push_back({m.empty() ? kNone : m, fmt::format("{}", fit.points),
                        fit.valid() ? fmt::format("{:.4f}", fit.intercept) : kNone,
                        fit.valid() ? fmt::format("{:.4f}", fit.slope) : kNone, fmt_r2(fit)});
    }
    out += f.render() + "\n";
    if (two && !ratios.empty()) {
      double sum = 0;
      for (double r : ratios) sum += r;
      const double mean = sum / static_cast<double>(ratios.size());
      out += fmt::format(
          "Cost of masking (every kept tile treated as Partial): partial/auto time ratio mean "
          "{:.3f} (min {:.3f}, max {:.3f}) over {} densities, i.e. {:+.1f}% time.\n\n",
          mean, *std::min_element(ratios.begin(), ratios.end()),
          *std::max_element(ratios.begin(), ratios.end()), ratios.size(), (mean - 1) * 100);
    }
  }
  out += all_points_sections(pts, baseline);
  return out;
}

}  // namespace

Layout report_layout_density() {
  return {
      "density",
      "time against density per tile mode; fit t = a + b*density; cost of masking (partial/auto)",
      render};
}

}  // namespace spattn::experiments::report
