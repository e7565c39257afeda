// results.csv: every field of every point's measurement record, one row per point in index
// order.
#include <fmt/format.h>

#include <map>

#include "report/points.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/report.hpp"

namespace spattn::experiments {

using ojson = nlohmann::ordered_json;

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

std::string csv_value(const ojson& v) {
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

// Flattens an object into dotted keys in record order (nested objects; arrays stay whole).
void flatten(const ojson& j, const std::string& prefix,
             std::vector<std::pair<std::string, const ojson*>>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix + it.key();
    if (it.value().is_object())
      flatten(it.value(), key + ".", out);
    else
      out.emplace_back(key, &it.value());
  }
}

// The record's fields as columns: the axes without a prefix, the groups with theirs; "schema"
// and "kind" (the same in every row) left out.
std::vector<std::pair<std::string, const ojson*>> columns_of(const ojson& rec) {
  std::vector<std::pair<std::string, const ojson*>> all;
  for (auto it = rec.begin(); it != rec.end(); ++it) {
    if (it.key() == "schema" || it.key() == "kind") continue;
    if (it.key() == "axes")
      flatten(it.value(), "", all);
    else if (it.value().is_object())
      flatten(it.value(), it.key() + ".", all);
    else
      all.emplace_back(it.key(), &it.value());
  }
  return all;
}

// A record with every group present: its columns are every column of the file.
Measurement with_every_group() {
  Measurement m;
  m.layout = LayoutFigures{};
  m.predicted = Prediction{};
  m.attention = AttentionTimes{0, {0.0}};
  m.check = CheckFigures{};
  m.fidelity = FidelityFigures{};
  m.decode = DecodeFigures{};
  m.saved = "";
  return m;
}

}  // namespace

std::string render_csv(const ResultsFile& results) {
  const std::vector<report::Point> pts = report::make_points(results);
  const ojson full = to_json(with_every_group());
  std::vector<std::string> head;
  for (const auto& [name, value] : columns_of(full)) head.push_back(name);
  std::string out;
  for (std::size_t c = 0; c < head.size(); ++c) {
    if (c > 0) out += ',';
    out += csv_cell(head[c]);
  }
  out += '\n';
  for (const report::Point& p : pts) {
    const ojson rec = to_json(*p.m);
    std::map<std::string, std::string> cells;
    // A group that is null here (not measured) leaves its sub-columns empty.
    for (const auto& [name, value] : columns_of(rec)) cells[name] = csv_value(*value);
    for (std::size_t c = 0; c < head.size(); ++c) {
      const auto it = cells.find(head[c]);
      if (c > 0) out += ',';
      out += csv_cell(it == cells.end() ? "" : it->second);
    }
    out += '\n';
  }
  return out;
}

}  // namespace spattn::experiments
