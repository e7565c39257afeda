// Report layout "selectors": content-based selectors against the baseline (dense attention) end
// to end, estimation included: per pattern and N the selection time, attention time, their sum,
// the speedup of the sum over the baseline, the estimation's share of the baseline's time,
// density, recall, the oracle ceiling at the same keys per row and the needle hit rate; then
// each pattern's crossover N.
#include <fmt/format.h>

#include <cmath>

#include "report/markdown.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"

namespace spattn::experiments::report {

namespace {

double select_seconds(const Point& p) {
  return p.ok() && p.m->selection ? p.m->selection->select_ms / 1e3 : 0.0;
}

// Attention plus selection, median attention time (s).
double end_to_end(const Point& p) {
  return p.time() + select_seconds(p);
}

double fidelity_of(const Point& p, double FidelityFigures::*field) {
  return p.ok() && p.m->fidelity ? p.m->fidelity.value().*field : kNaN;
}

double optional_fidelity(const Point& p, std::optional<double> FidelityFigures::*field) {
  return p.ok() && p.m->fidelity ? (p.m->fidelity.value().*field).value_or(kNaN) : kNaN;
}

// The crossover of one pattern against the baseline (ratio r(N) = end-to-end time / baseline
// time at the measured N, ascending): the smallest measured N from which on r < 1 at every
// larger measured N, and the N where the log-log line between the two bracketing points crosses
// r = 1.
std::string crossover(const std::vector<std::pair<std::int64_t, double>>& ratios) {
  if (ratios.empty()) return "no N with both times";
  if (ratios.back().second >= 1)
    return fmt::format("not faster at the largest measured N ({}): above the range",
                       ratios.back().first);
  std::size_t k = ratios.size() - 1;
  while (k > 0 && ratios[k - 1].second < 1) --k;
  if (k == 0) return fmt::format("faster at every measured N (from {})", ratios.front().first);
  const auto [n0, r0] = ratios[k - 1];
  const auto [n1, r1] = ratios[k];
  const double t = std::log(r0) / (std::log(r0) - std::log(r1));  // r0 >= 1 > r1
  const double n = std::exp(std::log(static_cast<double>(n0)) +
                            t * (std::log(static_cast<double>(n1)) - std::log(n0)));
  return fmt::format("faster from N = {} on; crossing near N = {:.0f} (log-log between {} and {})",
                     n1, n, n0, n1);
}

std::string render(const LayoutInput& in) {
  const std::vector<Point>& pts = in.points;
  const std::string& baseline = in.baseline;
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("Selectors end to end (estimation included)", g);
    Table t;
    t.head = {"pattern",
              "N",
              "select ms",
              "attention ms",
              "total ms",
              fmt::format("speedup vs {}", baseline),
              fmt::format("select / {} time", baseline),
              "density",
              "recall mean",
              "oracle recall (same keys per row)",
              "needle hit"};
    Table c;
    c.head = {"pattern", fmt::format("crossover against {}", baseline)};
    for (const std::string& pattern : g.patterns) {
      std::vector<std::pair<std::int64_t, double>> ratios;
      for (const Point* p : points_of(g, pattern, true)) {
        const Point* base = baseline_point(g, baseline, p->n);
        const double bt = base != nullptr ? base->time() : kNaN;
        const double total = end_to_end(*p);
        if (std::isfinite(bt) && std::isfinite(total) && total > 0)
          ratios.emplace_back(p->n, total / bt);
        t.rows.push_back({pattern, fmt::format("{}", p->n),
                          p->m->selection ? fmt_fixed(select_seconds(*p) * 1e3, 1) : kNone,
                          fmt_ms(p->time()), fmt_ms(total),
                          fmt_ratio(bt / total) + noisy_mark(*p, base),
                          p->m->selection ? fmt_fixed(select_seconds(*p) / bt, 3) : kNone,
                          fmt_fixed(p->density(), 4),
                          fmt_fixed(fidelity_of(*p, &FidelityFigures::recall_mean), 4),
                          fmt_fixed(optional_fidelity(*p, &FidelityFigures::oracle_recall_mean), 4),
                          fmt_fixed(optional_fidelity(*p, &FidelityFigures::needle_hit), 3)});
      }
      if (pattern != baseline) c.rows.push_back({pattern, crossover(ratios)});
    }
    if (t.rows.empty()) {
      out += "No point of this group ran.\n\n";
      continue;
    }
    out += t.render() + "\n";
    out += section_title("Crossover N", g);
    out += fmt::format(
        "Where a pattern's end-to-end time (selection + attention, medians) falls below {}'s at "
        "the same N.\n\n",
        baseline);
    out += c.render() + "\n";
  }
  out += all_points_sections(pts, baseline);
  return out;
}

}  // namespace

Layout report_layout_selectors() {
  return {"selectors",
          "selectors end to end against the baseline (estimation included): select and "
          "attention time, speedup, density, recall, oracle ceiling, needle hit; crossover N",
          render};
}

}  // namespace spattn::experiments::report
