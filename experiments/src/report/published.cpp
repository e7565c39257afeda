// Published figures beside the measured ones (see published.hpp).
#include "report/published.hpp"

#include <fmt/format.h>

#include <cmath>

#include "report/groups.hpp"
#include "report/markdown.hpp"
#include "report/sections.hpp"
#include "report/slopes.hpp"

namespace spattn::experiments::report {
namespace {

// The local exponent between two (N, t) points: log(t2/t1) / log(N2/N1).
double exponent(double n1, double t1, double n2, double t2) {
  return std::log(t2 / t1) / std::log(n2 / n1);
}

// The first group holding points of `pattern` that ran.
const Group* group_of(const std::vector<Group>& groups, const std::string& pattern) {
  for (const Group& g : groups)
    if (!points_of(g, pattern, true).empty()) return &g;
  return nullptr;
}

std::string speedup_table(const PublishedFigures& f, const Group& g, const std::string& baseline) {
  Table t;
  t.head = {"N", "published speedup", "measured speedup", "measured / published"};
  double first_pub = kNaN, last_pub = kNaN, first_meas = kNaN, last_meas = kNaN;
  for (std::size_t i = 0; i < f.n.size(); ++i) {
    const Point* p = g.find(f.pattern, f.n[i]);
    const double measured =
        p != nullptr && p->ok() ? baseline_time(g, baseline, *p) / p->time() : kNaN;
    const std::string mark =
        p != nullptr && p->ok() ? noisy_mark(*p, baseline_point(g, baseline, p->n)) : "";
    t.rows.push_back({fmt::format("{}", f.n[i]), fmt_ratio(f.values[i]), fmt_ratio(measured) + mark,
                      fmt_fixed(measured / f.values[i], 2)});
    if (std::isfinite(measured)) {
      if (!std::isfinite(first_meas)) first_pub = f.values[i], first_meas = measured;
      last_pub = f.values[i], last_meas = measured;
    }
  }
  t.rows.push_back({"growth, first to last N measured", fmt_ratio(last_pub / first_pub),
                    fmt_ratio(last_meas / first_meas), "-"});
  return t.render() +
         fmt::format(
             "\nWhat carries over is the growth of the speedup with N (the work ratio); its "
             "size does not have to (the paper may time more than attention).\n\n");
}

std::string time_table(const PublishedFigures& f, const Group& g) {
  Table t;
  t.head = {"N", "published ms", "measured ms", "published exponent", "measured exponent"};
  std::int64_t prev_n = 0;
  double prev_pub = kNaN, prev_meas = kNaN;
  for (std::size_t i = 0; i < f.n.size(); ++i) {
    const Point* p = g.find(f.pattern, f.n[i]);
    const double measured = p != nullptr && p->ok() ? p->time() : kNaN;
    const double pub_exp = prev_n > 0 ? exponent(static_cast<double>(prev_n), prev_pub,
                                                 static_cast<double>(f.n[i]), f.values[i])
                                      : kNaN;
    const double meas_exp = prev_n > 0 ? exponent(static_cast<double>(prev_n), prev_meas,
                                                  static_cast<double>(f.n[i]), measured)
                                       : kNaN;
    t.rows.push_back({fmt::format("{}", f.n[i]), fmt_fixed(f.values[i], 2),
                      fmt_ms(measured) + (p != nullptr && p->ok() ? noisy_mark(*p) : ""),
                      fmt_fixed(pub_exp, 2), fmt_fixed(meas_exp, 2)});
    prev_n = f.n[i], prev_pub = f.values[i], prev_meas = measured;
  }
  return t.render() +
         "\nThe exponent between successive N is log(t2/t1) / log(N2/N1) (2: quadratic, 1: "
         "linear); it is what carries over, not the absolute times.\n\n";
}

std::string slope_table(const PublishedFigures& f, const Group& g) {
  const auto pts = points_of(g, f.pattern, true);
  const LineFit pairs = slope_vs_n(pts, [](const Point& p) { return p.allowed_pairs(); });
  const LineFit time = slope_vs_n(pts, [](const Point& p) { return p.time(); });
  Table t;
  t.head = {"published exponent", "allowed pairs slope", "time slope", "points"};
  t.rows.push_back({fmt_fixed(f.values[0], 2), fmt_slope(pairs), fmt_slope(time),
                    fmt::format("{}", pairs.points)});
  return t.render() +
         "\nThe complexity exponent carries over to the allowed pairs exactly where the paper's "
         "parameters match the spec; the time follows the computed pairs.\n\n";
}

}  // namespace

std::string published_section(const std::vector<Point>& pts, const std::string& baseline,
                              const std::vector<PublishedFigures>& published) {
  if (published.empty()) return "";
  const std::vector<Group> groups = group_points(pts, {"n"});
  std::string out = "## Published against measured\n\n";
  for (const PublishedFigures& f : published) {
    out += fmt::format("### {}: {}\n\n", f.pattern, f.source);
    const Group* g = group_of(groups, f.pattern);
    if (g == nullptr) {
      out += "No point of this pattern ran.\n\n";
      continue;
    }
    if (f.quantity == "speedup")
      out += speedup_table(f, *g, baseline);
    else if (f.quantity == "time_ms")
      out += time_table(f, *g);
    else
      out += slope_table(f, *g);
  }
  return out;
}

}  // namespace spattn::experiments::report
