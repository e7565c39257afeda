#pragma once
// The table layouts of table.md (`[report] layout` in an experiment file): one file each under
// experiments/src/report/layouts/, found at build time (experiments/README.md, "Adding a table").
#include <string>
#include <vector>

namespace spattn::experiments {

// The layout of a results file whose header names none (and of a bare records file).
inline constexpr const char* kDefaultReportLayout = "scaling";

struct ReportLayoutInfo {
  std::string name;         // the value of `[report] layout`
  std::string description;  // one line: what the table shows
};

// Every layout, sorted by name.
std::vector<ReportLayoutInfo> report_layouts();

// The names of report_layouts(), sorted: the values `[report] layout` allows.
std::vector<std::string> report_layout_names();

}  // namespace spattn::experiments
