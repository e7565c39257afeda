// The points of a results file as the report's tables read them.
#include "report/points.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace spattn::experiments::report {

using nlohmann::json;

double number_at(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : kNaN;
}

std::string string_at(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

double Point::attention_bytes() const {
  const double w = workspace(), l = layout_bytes();
  return std::isnan(w) && std::isnan(l) ? kNaN : (std::isnan(w) ? 0 : w) + (std::isnan(l) ? 0 : l);
}

double Point::allowed_pairs() const {
  if (m->layout) return static_cast<double>(m->layout->allowed_pairs);
  if (m->predicted && m->axes.head_dim > 0)
    return m->predicted->useful_flops / (4.0 * m->axes.head_dim);
  return kNaN;
}

namespace {

std::map<std::string, std::string> axes_text(const MeasuredAxes& x) {
  std::map<std::string, std::string> a = {
      {"pattern", x.pattern},
      {"spec", x.spec},
      {"n", fmt::format("{}", x.n)},
      {"head_dim", fmt::format("{}", x.head_dim)},
      {"heads", fmt::format("{}", x.heads)},
      {"kv_heads", fmt::format("{}", x.kv_heads)},
      {"batch", fmt::format("{}", x.batch)},
      {"threads", fmt::format("{}", x.threads)},
      {"block", x.block_q == x.block_k ? fmt::format("{}", x.block_q)
                                       : fmt::format("{}x{}", x.block_q, x.block_k)},
      {"tile_mode", x.tile_mode},
      {"executor", std::string(executor_name(x.executor))},
      {"inputs", x.inputs},
      {"seed", fmt::format("{}", x.seed)}};
  if (x.nk != x.n) a["nk"] = fmt::format("{}", x.nk);
  // The decode side: only where a record measured it, so prefill reports read as before.
  if (x.phase != "prefill") a["phase"] = x.phase;
  if (x.kv_dtype != "f32") a["kv_dtype"] = x.kv_dtype;
  if (x.cache) a["cache"] = *x.cache;
  return a;
}

}  // namespace

std::vector<Point> make_points(const ResultsFile& r) {
  std::vector<Point> pts;
  for (const Measurement& m : r.points) {
    Point p;
    p.m = &m;
    p.pattern = m.axes.pattern;
    p.spec = m.axes.spec;
    p.n = m.axes.n;
    p.status = std::string(status_name(m.status));
    p.axes = axes_text(m.axes);
    pts.push_back(std::move(p));
  }
  // Index order (the expansion order: patterns, then N, then the other axes); file order breaks
  // ties (records of `spattn run` all have index 0).
  std::stable_sort(pts.begin(), pts.end(),
                   [](const Point& a, const Point& b) { return a.m->index < b.m->index; });
  for (std::size_t i = 0; i < pts.size(); ++i) pts[i].order = static_cast<int>(i);
  return pts;
}

}  // namespace spattn::experiments::report
