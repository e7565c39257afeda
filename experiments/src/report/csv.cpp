// results.csv: every field of every point, one row per point in index order.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "report/points.hpp"
#include "spattn/experiments/report.hpp"

namespace spattn::experiments {

using nlohmann::json;

namespace {

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

std::string csv_value(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ';';
      out += csv_value(v[i]);
    }
    return out;
  }
  return v.dump();
}

// Flattens an object into dotted keys (nested objects; arrays stay whole).
void flatten(const json& j, const std::string& prefix, std::map<std::string, const json*>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix + it.key();
    if (it.value().is_object())
      flatten(it.value(), key + ".", out);
    else
      out[key] = &it.value();
  }
}

}  // namespace

std::string render_csv(const ResultsFile& results) {
  const std::vector<report::Point> pts = report::make_points(results);
  const std::vector<std::string> known_axes = {"pattern", "spec",      "n",     "head_dim",
                                               "heads",   "kv_heads",  "batch", "threads",
                                               "block",   "tile_mode", "inputs"};
  std::set<std::string> extra_axes, measure_cols, predicted_cols;
  std::vector<std::map<std::string, const json*>> measures(pts.size()), predicted(pts.size());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const json& rec = *pts[i].rec;
    for (const auto& [k, v] : pts[i].axes)
      if (std::find(known_axes.begin(), known_axes.end(), k) == known_axes.end())
        extra_axes.insert(k);
    if (rec.contains("measure") && rec["measure"].is_object())
      flatten(rec["measure"], "", measures[i]);
    if (rec.contains("predicted") && rec["predicted"].is_object())
      flatten(rec["predicted"], "predicted.", predicted[i]);
    for (const auto& [k, v] : measures[i]) measure_cols.insert(k);
    for (const auto& [k, v] : predicted[i]) predicted_cols.insert(k);
  }
  // A field that is null in some records and an object in others has only its sub-columns.
  for (std::set<std::string>* cols : {&measure_cols, &predicted_cols}) {
    for (auto it = cols->begin(); it != cols->end();) {
      const auto next = cols->lower_bound(*it + ".");
      if (next != cols->end() && next->rfind(*it + ".", 0) == 0)
        it = cols->erase(it);
      else
        ++it;
    }
  }
  std::vector<std::string> head = {"index", "key"};
  head.insert(head.end(), known_axes.begin(), known_axes.end());
  head.insert(head.end(), extra_axes.begin(), extra_axes.end());
  head.insert(head.end(), {"status", "message", "peak_rss_bytes", "wall_seconds"});
  head.insert(head.end(), measure_cols.begin(), measure_cols.end());
  head.insert(head.end(), predicted_cols.begin(), predicted_cols.end());

  std::string out;
  for (std::size_t c = 0; c < head.size(); ++c) {
    if (c > 0) out += ',';
    out += csv_cell(head[c]);
  }
  out += '\n';
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const report::Point& p = pts[i];
    const json& rec = *p.rec;
    std::vector<std::string> row;
    row.push_back(rec.contains("index") ? csv_value(rec["index"]) : "");
    row.push_back(p.key);
    for (const std::string& a : known_axes) {
      const auto it = p.axes.find(a);
      row.push_back(it == p.axes.end() ? "" : it->second);
    }
    for (const std::string& a : extra_axes) {
      const auto it = p.axes.find(a);
      row.push_back(it == p.axes.end() ? "" : it->second);
    }
    row.push_back(p.status);
    row.push_back(p.message);
    row.push_back(rec.contains("peak_rss_bytes") ? csv_value(rec["peak_rss_bytes"]) : "");
    row.push_back(rec.contains("wall_seconds") ? csv_value(rec["wall_seconds"]) : "");
    for (const std::string& c : measure_cols) {
      const auto it = measures[i].find(c);
      row.push_back(it == measures[i].end() ? "" : csv_value(*it->second));
    }
    for (const std::string& c : predicted_cols) {
      const auto it = predicted[i].find(c);
      row.push_back(it == predicted[i].end() ? "" : csv_value(*it->second));
    }
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out += ',';
      out += csv_cell(row[c]);
    }
    out += '\n';
  }
  return out;
}

}  // namespace spattn::experiments
