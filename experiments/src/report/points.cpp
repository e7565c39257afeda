// The point records of a results file as the report's tables read them.
#include "report/points.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "spattn/patterns/error.hpp"

namespace spattn::experiments::report {

using nlohmann::json;

namespace {

// An axis value as text: strings as they are, numbers and the rest as JSON.
std::string axis_text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

double number_at(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return kNaN;
    const auto it = cur->find(key);
    if (it == cur->end()) return kNaN;
    cur = &*it;
  }
  return cur->is_number() ? cur->get<double>() : kNaN;
}

std::string string_at(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void require_point_fields(const json& rec, const std::string& where) {
  const auto axes = rec.find("axes");
  if (axes == rec.end() || !axes->is_object())
    throw UsageError(fmt::format("{}: point record has no \"axes\" object", where));
  const auto pattern = axes->find("pattern");
  if (pattern == axes->end() || !pattern->is_string())
    throw UsageError(fmt::format("{}: point record has no string axes.pattern", where));
  const auto n = axes->find("n");
  if (n == axes->end() || !n->is_number_integer() || n->get<std::int64_t>() <= 0)
    throw UsageError(fmt::format("{}: point record has no positive integer axes.n", where));
  const auto status = rec.find("status");
  if (status == rec.end() || !status->is_string())
    throw UsageError(fmt::format("{}: point record has no string \"status\"", where));
}

double Point::attention_bytes() const {
  const double w = measure({"workspace_bytes"}), l = measure({"layout_bytes"});
  return std::isnan(w) && std::isnan(l) ? kNaN : (std::isnan(w) ? 0 : w) + (std::isnan(l) ? 0 : l);
}

double Point::allowed_pairs() const {
  const double m = measure({"allowed_pairs"});
  return std::isnan(m) ? predicted("allowed_pairs") : m;
}

std::vector<Point> make_points(const ResultsFile& r) {
  std::vector<Point> pts;
  for (const json& rec : r.points) {
    Point p;
    p.rec = &rec;
    const json& axes = rec.at("axes");
    p.pattern = axes.at("pattern").get<std::string>();
    p.spec = axes.contains("spec") ? axis_text(axes.at("spec")) : p.pattern;
    p.n = axes.at("n").get<std::int64_t>();
    for (auto it = axes.begin(); it != axes.end(); ++it) p.axes[it.key()] = axis_text(it.value());
    p.key = string_at(rec, "key");
    p.status = rec.at("status").get<std::string>();
    p.message = string_at(rec, "message");
    pts.push_back(std::move(p));
  }
  // Index order (the expansion order: patterns, then N, then the other axes); file order breaks
  // ties and covers records without an index.
  std::vector<std::size_t> idx(pts.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const double ia = number_at(*pts[a].rec, {"index"}), ib = number_at(*pts[b].rec, {"index"});
    if (std::isnan(ia) || std::isnan(ib)) return !std::isnan(ia) && std::isnan(ib);
    return ia < ib;
  });
  std::vector<Point> sorted;
  for (std::size_t i : idx) sorted.push_back(pts[i]);
  for (std::size_t i = 0; i < sorted.size(); ++i) sorted[i].order = static_cast<int>(i);
  return sorted;
}

}  // namespace spattn::experiments::report
