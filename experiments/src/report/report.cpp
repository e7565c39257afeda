// Reports from results.jsonl: results.csv (every field of every point) and table.md (laid out
// by the experiment's report.layout, one of the layouts of layouts/). Everything printed comes
// from the file with fixed formats, so regenerating a report gives the same bytes.
#include "spattn/experiments/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <system_error>

#include "report/groups.hpp"
#include "report/markdown.hpp"
#include "report/points.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"
#include "spattn/experiments/report_layouts.hpp"
#include "spattn/experiments/results.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::experiments {

using nlohmann::json;
using report::string_at;

ResultsFile read_results(const std::filesystem::path& jsonl) {
  // The sweep's own reader: an incomplete last line (an interrupted write) is left out, every
  // other line must be a JSON object.
  JsonLines lines = read_json_lines(jsonl);
  ResultsFile r;
  r.truncated_line = lines.partial_line;
  std::map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < lines.records.size(); ++i) {
    json& rec = lines.records[i];
    const std::string where = fmt::format("{} line {}", jsonl.string(), lines.line_numbers[i]);
    const std::string kind = string_at(rec, "kind");
    if (kind == "header") {
      r.header = std::move(rec);
    } else if (kind == "point") {
      report::require_point_fields(rec, where);
      const std::string key = string_at(rec, "key");
      const auto it = key.empty() ? by_key.end() : by_key.find(key);
      if (it != by_key.end()) {
        r.points[it->second] = std::move(rec);
        ++r.replaced_records;
      } else {
        if (!key.empty()) by_key[key] = r.points.size();
        r.points.push_back(std::move(rec));
      }
    } else if (kind == "budget") {
      r.budgets.push_back(std::move(rec));
    } else {
      ++r.ignored_records;
    }
  }
  return r;
}

std::string render_table(const ResultsFile& results) {
  const std::vector<report::Point> pts = report::make_points(results);
  const json& h = results.header;
  const json report =
      h.contains("report") && h["report"].is_object() ? h["report"] : json::object();
  std::string layout = string_at(report, "layout");
  std::string baseline = string_at(report, "baseline");
  if (baseline.empty()) baseline = "dense";
  std::string note;
  if (layout.empty()) layout = kDefaultReportLayout;
  const report::Layout* chosen = report::find_layout(layout);
  if (chosen == nullptr) {
    note += fmt::format("Unknown report layout \"{}\": shown as \"{}\".\n\n", layout,
                        kDefaultReportLayout);
    layout = kDefaultReportLayout;
    chosen = report::find_layout(layout);
  }

  std::string out;
  const std::string name = string_at(h, "experiment");
  out += fmt::format("# {}\n\n", name.empty() ? "Sweep results" : name);
  const std::string stamp = string_at(h, "stamp");
  out += fmt::format("Run {} · layout {} · baseline {}{}\n\n",
                     stamp.empty() ? report::kNone : stamp, layout, baseline,
                     h.contains("quick") && h["quick"].is_boolean() && h["quick"].get<bool>()
                         ? " · quick run"
                         : "");
  std::map<std::string, int> by_status;
  for (const report::Point& p : pts) ++by_status[p.status];
  std::string counts;
  for (const auto& [s, c] : by_status)
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", c, s);
  out += fmt::format("Points: {}{}.\n\n", pts.size(), counts.empty() ? "" : " (" + counts + ")");
  if (results.truncated_line > 0)
    out += fmt::format(
        "Line {} of results.jsonl is incomplete (an interrupted write) and was ignored.\n\n",
        results.truncated_line);
  if (results.replaced_records > 0)
    out += fmt::format("{} point record(s) were replaced by a later record with the same key.\n\n",
                       results.replaced_records);
  if (results.ignored_records > 0)
    out += fmt::format("{} record(s) of unknown kinds were ignored.\n\n", results.ignored_records);
  out += note;

  // Axes with one value across the sweep, stated once.
  if (!pts.empty()) {
    const auto vary = report::varying_axes(pts);
    std::string fixed;
    for (const auto& [k, v] : pts.front().axes) {
      if (k == "pattern" || k == "spec" || std::find(vary.begin(), vary.end(), k) != vary.end())
        continue;
      fixed += fmt::format("{}{}={}", fixed.empty() ? "" : ", ", k, v);
    }
    if (!fixed.empty()) out += fmt::format("Fixed axes: {}.\n\n", fixed);
    report::Table specs;
    specs.head = {"pattern", "spec"};
    std::set<std::string> seen;
    for (const report::Point& p : pts)
      if (seen.insert(p.pattern).second) specs.rows.push_back({p.pattern, p.spec});
    out += specs.render() + "\n";
  }

  out += chosen->render({pts, baseline, results});
  out += report::failures_section(pts);
  while (out.size() > 1 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n')
    out.pop_back();
  return out;
}

void write_reports(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw UsageError(
        fmt::format("results directory {} does not exist or is not a directory", dir.string()));
  const std::filesystem::path jsonl = dir / "results.jsonl";
  if (!std::filesystem::is_regular_file(jsonl, ec))
    throw UsageError(
        fmt::format("{} not found: a results directory holds the results.jsonl "
                    "that `spattn sweep` writes",
                    jsonl.string()));
  const ResultsFile results = read_results(jsonl);
  auto write = [&](const std::string& name, const std::string& text) {
    const std::filesystem::path final_path = dir / name;
    const std::filesystem::path tmp = dir / (name + ".tmp");
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      out.flush();
      if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
    }
    std::filesystem::rename(tmp, final_path);
  };
  write("results.csv", render_csv(results));
  write("table.md", render_table(results));
}

}  // namespace spattn::experiments
