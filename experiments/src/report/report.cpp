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
#include "report/published.hpp"
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
  r.file_name = jsonl.filename().string();
  r.truncated_line = lines.partial_line;
  std::map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < lines.records.size(); ++i) {
    json& rec = lines.records[i];
    const std::string where = fmt::format("{} line {}", jsonl.string(), lines.line_numbers[i]);
    const std::string kind = string_at(rec, "kind");
    if (kind == "header") {
      r.header = std::move(rec);
    } else if (kind == "point") {
      Measurement m = measurement_from_json(rec, where);
      const auto it = m.key.empty() ? by_key.end() : by_key.find(m.key);
      if (it != by_key.end()) {
        r.points[it->second] = std::move(m);
        ++r.replaced_records;
      } else {
        if (!m.key.empty()) by_key[m.key] = r.points.size();
        r.points.push_back(std::move(m));
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
  if (h.contains("overrides") && h["overrides"].is_object() && !h["overrides"].empty()) {
    std::string given;
    for (const auto& [k, v] : h["overrides"].items())
      given += fmt::format("{}{} {}", given.empty() ? "" : ", ", k, v.dump());
    out += fmt::format("Set on the command line for every point: {}.\n\n", given);
  }
  if (results.truncated_line > 0)
    out += fmt::format("Line {} of {} is incomplete (an interrupted write) and was ignored.\n\n",
                       results.truncated_line, results.file_name);
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
  if (report.contains("published"))
    out += report::published_section(
        pts, baseline,
        published_from_json(report["published"],
                            fmt::format("{} line 1 (the header)", results.file_name)));
  out += report::failures_section(pts);
  while (out.size() > 1 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n')
    out.pop_back();
  return out;
}

namespace {

// Writes `text` to `path` through a temporary file and a rename.
void write_atomically(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

ReportFiles write_reports(const std::filesystem::path& path) {
  std::error_code ec;
  ReportFiles files;
  std::filesystem::path jsonl;
  if (std::filesystem::is_directory(path, ec)) {
    jsonl = path / "results.jsonl";
    if (!std::filesystem::is_regular_file(jsonl, ec))
      throw UsageError(
          fmt::format("{} not found: a results directory holds the results.jsonl "
                      "that `spattn sweep` writes",
                      jsonl.string()));
    files = {path / "results.csv", path / "table.md"};
  } else if (std::filesystem::is_regular_file(path, ec)) {
    if (path.extension() != ".jsonl")
      throw UsageError(fmt::format(
          "{} is a file but not a .jsonl records file: give a results directory or a .jsonl "
          "file of records (e.g. from `spattn run --json`)",
          path.string()));
    jsonl = path;
    std::filesystem::path csv = path, md = path;
    files = {csv.replace_extension(".csv"), md.replace_extension(".md")};
  } else {
    throw UsageError(fmt::format(
        "{} does not exist or is neither a directory nor a file: give a results directory "
        "(holding results.jsonl) or a .jsonl file of records",
        path.string()));
  }
  const ResultsFile results = read_results(jsonl);
  write_atomically(files.csv, render_csv(results));
  write_atomically(files.table, render_table(results));
  return files;
}

}  // namespace spattn::experiments
