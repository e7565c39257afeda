#pragma once
// The point records of a results file as the report's tables read them (internal to the report).
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "spattn/experiments/report.hpp"

namespace spattn::experiments::report {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The number at a path of object keys, or NaN when any step is missing or not a number.
double number_at(const nlohmann::json& j, std::initializer_list<const char*> path);
// The string at `key`, or "" when it is missing or not a string.
std::string string_at(const nlohmann::json& j, const char* key);
// Throws UsageError naming `where` when a point record lacks axes.pattern, axes.n or status.
void require_point_fields(const nlohmann::json& rec, const std::string& where);

struct Point {
  int order = 0;  // position in index order
  std::string key, pattern, spec, status, message;
  std::int64_t n = 0;
  std::map<std::string, std::string> axes;  // every axis as text, "n" included
  const nlohmann::json* rec = nullptr;

  double measure(std::initializer_list<const char*> path) const {
    const auto m = rec->find("measure");
    return m == rec->end() ? kNaN : number_at(*m, path);
  }
  double predicted(const char* field) const { return number_at(*rec, {"predicted", field}); }
  bool ok() const { return status == "ok"; }
  double time() const { return ok() ? measure({"attention_seconds", "median"}) : kNaN; }
  double rss() const { return number_at(*rec, {"peak_rss_bytes"}); }
  double attention_bytes() const;  // workspace + layout: the memory that the pattern drives
  double allowed_pairs() const;    // measured, else predicted
};

// The points of `r` in index order (the expansion order; file order breaks ties). The points
// refer to the records of `r`, which must outlive them.
std::vector<Point> make_points(const ResultsFile& r);

}  // namespace spattn::experiments::report
