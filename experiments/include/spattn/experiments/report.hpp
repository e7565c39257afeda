#pragma once
// Reports of a sweep: results.csv and table.md, computed from results.jsonl alone (the records
// are described in experiments/README.md), so `spattn report DIR` can regenerate them at any
// time; also from any file of measurement records (`spattn run --json >> runs.jsonl`). table.md
// is laid out by the header's report.layout, one of report_layouts() (report_layouts.hpp).
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "spattn/experiments/measurement.hpp"

namespace spattn::experiments {

// The records of one results file.
struct ResultsFile {
  std::string file_name = "results.jsonl";           // the file's name, for notes in table.md
  nlohmann::json header = nlohmann::json::object();  // the "header" record ({} when absent)
  std::vector<Measurement> points;      // "point" records, file order; a later record for the
                                        // same key replaces an earlier one
  std::vector<nlohmann::json> budgets;  // "budget" records, file order
  int ignored_records = 0;              // records of other kinds, skipped
  int replaced_records = 0;             // point records replaced by a later one with the same key
  int truncated_line = 0;  // 1-based number of an incomplete last line that was ignored (0: none)
};

// Reads a results file through read_json_lines (results.hpp), as --resume does, and each point
// record through measurement_from_json (schema 2, or schema 1 converted). Empty lines are
// skipped; an incomplete last line (no newline: an interrupted write) is ignored and reported
// in truncated_line. Throws UsageError when the file cannot be read, or naming the file and line
// number of a malformed line (not JSON, not an object, a point record that is not a valid
// measurement record) anywhere else.
ResultsFile read_results(const std::filesystem::path& jsonl);

// results.csv: a header row, then one row per point in index order: index, key, source, the
// axes, status, message, then every other field of the measurement record flattened with dots
// (layout.*, predicted.*, attention.*, resources.*, check.*, fidelity.*, saved; arrays joined
// by ';', absent figures as empty cells). The same columns for every file. RFC 4180 quoting.
std::string render_csv(const ResultsFile& results);

// table.md (Markdown) laid out by header.report.layout (default "scaling"; baseline "dense"
// unless header.report.baseline names another). Same input, same bytes.
std::string render_table(const ResultsFile& results);

// Where write_reports wrote.
struct ReportFiles {
  std::filesystem::path csv, table;
};

// `path` is a results directory: reads path/results.jsonl and writes path/results.csv and
// path/table.md. `path` is a records file NAME.jsonl (e.g. lines of `spattn run --json`, with
// or without a header): writes NAME.csv and NAME.md beside it. Each file is replaced atomically
// by a rename. Throws UsageError when the path is missing or neither a directory nor a .jsonl
// file, when results.jsonl is missing or a line is malformed, and std::runtime_error when a
// file cannot be written.
ReportFiles write_reports(const std::filesystem::path& path);

}  // namespace spattn::experiments
