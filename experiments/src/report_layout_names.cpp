// The values `[report] layout` allows, from the build's list of layout files alone, so that the
// experiment-file loader (and the TOML fuzzer, which compiles it without the report) needs none
// of the layouts' code. report/registry.cpp checks that every file defines the layout it names.
#include <algorithm>
#include <string>
#include <vector>

#include "spattn/experiments/report_layouts.hpp"

namespace spattn::experiments {

std::vector<std::string> report_layout_names() {
  std::vector<std::string> out;
#define SPATTN_REPORT_LAYOUT(name) out.emplace_back(#name);
#include "report_layouts.inc"
#undef SPATTN_REPORT_LAYOUT
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace spattn::experiments
