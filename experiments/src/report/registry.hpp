#pragma once
// The registry of table layouts (internal to the report). A layout is one file
// layouts/<name>.cpp that defines
//   Layout report_layout_<name>() { return {"<name>", "one-line description", render}; }
// in this namespace; the build lists the files of layouts/ and registry.cpp calls each such
// function, so no layout can be left out of the library (experiments/README.md, "Adding a
// table").
#include <string>
#include <string_view>
#include <vector>

#include "report/points.hpp"
#include "spattn/experiments/report.hpp"

namespace spattn::experiments::report {

// What a layout renders from.
struct LayoutInput {
  const std::vector<Point>& points;  // index order
  const std::string& baseline;       // pattern name speedups are measured against
  const ResultsFile& results;        // the whole file (header, budget records)
};

// The body of table.md for one layout: Markdown sections between the common head (run, counts,
// fixed axes, specs) and the common tail (points that did not run).
using RenderLayout = std::string (*)(const LayoutInput& in);

struct Layout {
  std::string_view name;         // = the file's name without .cpp
  std::string_view description;  // one line
  RenderLayout render = nullptr;
};

// Every layout, sorted by name. Throws std::logic_error when a layout's name differs from its
// file's name.
const std::vector<Layout>& layouts();

// The layout called `name`, or nullptr.
const Layout* find_layout(std::string_view name);

}  // namespace spattn::experiments::report
