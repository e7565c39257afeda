#pragma once
// Reports of a sweep: results.csv and table.md, computed from results.jsonl alone (the record
// format is described in experiments/README.md), so `spattn report DIR` can regenerate them at
// any time. table.md is laid out by the header's report.layout, one of report_layouts()
// (report_layouts.hpp).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace spattn::experiments {

// The records of one results.jsonl file.
struct ResultsFile {
  nlohmann::json header = nlohmann::json::object();  // the "header" record ({} when absent)
  std::vector<nlohmann::json> points;   // "point" records, file order; a later record for the
                                        // same key replaces an earlier one
  std::vector<nlohmann::json> budgets;  // "budget" records, file order
  int ignored_records = 0;              // records of other kinds, skipped
  int replaced_records = 0;             // point records replaced by a later one with the same key
  int truncated_line = 0;  // 1-based number of an incomplete last line that was ignored (0: none)
};

// Reads a results.jsonl file through read_json_lines (results.hpp), as --resume does. Empty
// lines are skipped; an incomplete last line (no newline: an interrupted write) is ignored and
// reported in truncated_line. Throws UsageError when the file cannot be
// read, or naming the line number of a malformed line (not JSON, not an object, a point record
// without axes.pattern / axes.n / status) anywhere else.
ResultsFile read_results(const std::filesystem::path& jsonl);

// results.csv: a header row, then one row per point in index order: the axes, status, message,
// peak_rss_bytes, wall_seconds, every field of "measure" flattened with dots (arrays joined by
// ';'), and the "predicted" fields prefixed "predicted.". RFC 4180 quoting.
std::string render_csv(const ResultsFile& results);

// table.md (Markdown) laid out by header.report.layout. Same input, same bytes.
std::string render_table(const ResultsFile& results);

// Reads dir/results.jsonl and writes dir/results.csv and dir/table.md (each replaced atomically
// by a rename). Throws UsageError when dir or the file is missing or a line is malformed, and
// std::runtime_error when a file cannot be written.
void write_reports(const std::filesystem::path& dir);

}  // namespace spattn::experiments
