#pragma once
// The points of a results file as the report's tables read them: the typed measurement record,
// its axes as text for grouping, and its figures as numbers, NaN where the record has none (a
// "-" cell). Internal to the report.
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/report.hpp"

namespace spattn::experiments::report {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A point whose slowest timed call took more than this many times its fastest is flagged
// "noisy": its median (and a speedup from it) may say more about the machine than the pattern.
// scripts/plot_sweep.py uses the same threshold.
inline constexpr double kNoisySpread = 1.5;

// The value, or NaN when there is none.
template <class T>
double or_nan(const std::optional<T>& v) {
  return v ? static_cast<double>(*v) : kNaN;
}

// The number at `key` of a JSON object (header and budget records), or NaN when it is missing
// or not a number.
double number_at(const nlohmann::json& j, const char* key);
// The string at `key`, or "" when it is missing or not a string.
std::string string_at(const nlohmann::json& j, const char* key);

struct Point {
  int order = 0;  // position in index order
  const Measurement* m = nullptr;
  std::string pattern, spec, status;
  std::int64_t n = 0;
  // The axes as text, "n" included: pattern, spec, n, nk (only when it differs from n),
  // head_dim, heads, kv_heads, batch, threads, block ("64", or "64x32" for block_q x block_k),
  // tile_mode, executor, inputs, seed; phase and kv_dtype only when not prefill and f32, cache
  // in decode records.
  std::map<std::string, std::string> axes;

  bool ok() const { return m->status == Status::Ok; }
  // Median, min and max attention time (s) of a point that ran.
  double time() const { return ok() && m->attention ? m->attention->median() : kNaN; }
  double min_time() const { return ok() && m->attention ? m->attention->min() : kNaN; }
  double max_time() const { return ok() && m->attention ? m->attention->max() : kNaN; }
  // max / min of the timed calls (NaN without timings or with a zero minimum).
  double spread() const { return min_time() > 0 ? max_time() / min_time() : kNaN; }
  bool noisy() const { return spread() > kNoisySpread; }
  double rss() const { return or_nan(m->resources.peak_rss_bytes); }         // bytes
  double workspace() const { return or_nan(m->resources.workspace_bytes); }  // bytes
  double layout_bytes() const { return m->layout ? m->layout->layout_bytes : kNaN; }
  double attention_bytes() const;  // workspace + layout: the memory that the pattern drives
  // Allowed pairs (all batches and heads): the layout's count, else the prediction's useful
  // FLOPs / (4·head_dim).
  double allowed_pairs() const;
  double computed_pairs() const { return m->layout ? m->layout->computed_pairs : kNaN; }
  double build_seconds() const { return m->layout ? m->layout->build_seconds : kNaN; }
  double density() const { return or_nan(m->density()); }
  double efficiency() const { return or_nan(m->efficiency()); }
  double useful_gflops() const { return or_nan(m->useful_gflops()); }
  double predicted_computed_flops() const {
    return m->predicted ? m->predicted->computed_flops : kNaN;
  }
  double predicted_memory() const {
    return m->predicted ? static_cast<double>(m->predicted->memory_bytes) : kNaN;
  }
  double predicted_seconds() const { return m->predicted ? m->predicted->seconds : kNaN; }
};

// The points of `r` in index order (the expansion order; file order breaks ties). The points
// refer to the records of `r`, which must outlive them.
std::vector<Point> make_points(const ResultsFile& r);

}  // namespace spattn::experiments::report
