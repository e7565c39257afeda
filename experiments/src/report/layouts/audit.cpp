// Report layout "audit": allowed pairs and time per pair against N, their slopes, and the largest N
// within the memory budget.
#include <fmt/format.h>

#include "report/markdown.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"
#include "report/slopes.hpp"

namespace spattn::experiments::report {

namespace {

using nlohmann::json;

std::string render(const LayoutInput& in) {
  const std::vector<Point>& pts = in.points;
  const std::string& baseline = in.baseline;
  const ResultsFile& r = in.results;
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("Allowed pairs (all batches and heads)", g);
    Table a;
    a.head = {"pattern"};
    for (std::int64_t n : g.ns) a.head.push_back(short_n(n));
    for (const std::string& pattern : g.patterns) {
      std::vector<std::string> row = {pattern};
      for (std::int64_t n : g.ns) {
        const Point* p = g.find(pattern, n);
        row.push_back(p == nullptr ? kNone : fmt_count(p->allowed_pairs()));
      }
      a.rows.push_back(std::move(row));
    }
    out += a.render() + "\n";
    out += section_title("Time per allowed pair (ns)", g);
    out += pattern_by_n(
        g, [](const Point& p) { return fmt_fixed(p.time() / p.allowed_pairs() * 1e9, 4); });

    out += section_title("Slopes against N and the largest N within the budget", g);
    Table t;
    t.head = {"pattern", "pairs slope", "R^2",    "points", "time slope",
              "R^2",     "points",      "budget", "max N",  "predicted memory at max N"};
    for (const std::string& pattern : g.patterns) {
      const LineFit pairs = slope_vs_n(points_of(g, pattern, false),
                                       [](const Point& p) { return p.allowed_pairs(); });
      const LineFit time =
          slope_vs_n(points_of(g, pattern, true), [](const Point& p) { return p.time(); });
      std::vector<std::string> row = {pattern,
                                      fmt_slope(pairs),
                                      fmt_r2(pairs),
                                      fmt::format("{}", pairs.points),
                                      fmt_slope(time),
                                      fmt_r2(time),
                                      fmt::format("{}", time.points)};
      const json* budget = nullptr;
      for (const json& b : r.budgets)
        if (string_at(b, "pattern") == pattern) budget = &b;  // the last record wins
      if (budget != nullptr) {
        row.push_back(fmt_bytes(number_at(*budget, "budget_bytes")));
        row.push_back(fmt_count(number_at(*budget, "max_n")));
        row.push_back(fmt_bytes(number_at(*budget, "memory_bytes_at_max_n")));
      } else {
        row.insert(row.end(), {kNone, kNone, kNone});
      }
      t.rows.push_back(std::move(row));
    }
    out +=
        t.render() +
        "\nPairs slope: log-log fit of allowed pairs against N over every point with a count "
        "(measured, or predicted for points that did not run); time slope over the points "
        "that ran. Max N: the largest power of two N whose predicted memory fits the budget.\n\n";
  }
  out += all_points_sections(pts, baseline);
  return out;
}

}  // namespace

Layout report_layout_audit() {
  return {
      "audit",
      "allowed pairs and time per pair per N; their slopes; the largest N within the memory budget",
      render};
}

}  // namespace spattn::experiments::report
