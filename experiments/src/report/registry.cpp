// The registry of table layouts: one entry per file of layouts/, listed by the build in
// report_layouts.inc as SPATTN_REPORT_LAYOUT(<name>) lines.
#include "report/registry.hpp"

#include <algorithm>
#include <stdexcept>

#include "spattn/experiments/report_layouts.hpp"

namespace spattn::experiments::report {

#define SPATTN_REPORT_LAYOUT(name) Layout report_layout_##name();
#include "report_layouts.inc"
#undef SPATTN_REPORT_LAYOUT

namespace {

std::vector<Layout> collect() {
  std::vector<Layout> all;
  auto add = [&](Layout l, std::string_view file) {
    if (l.name != file || l.render == nullptr)
      throw std::logic_error("report layout in layouts/" + std::string(file) +
                             ".cpp must be named \"" + std::string(file) +
                             "\" and have a render function");
    all.push_back(l);
  };
#define SPATTN_REPORT_LAYOUT(name) add(report_layout_##name(), #name);
#include "report_layouts.inc"
#undef SPATTN_REPORT_LAYOUT
  std::sort(all.begin(), all.end(),
            [](const Layout& a, const Layout& b) { return a.name < b.name; });
  return all;
}

}  // namespace

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> all = collect();
  return all;
}

const Layout* find_layout(std::string_view name) {
  for (const Layout& l : layouts())
    if (l.name == name) return &l;
  return nullptr;
}

}  // namespace spattn::experiments::report

namespace spattn::experiments {

std::vector<ReportLayoutInfo> report_layouts() {
  std::vector<ReportLayoutInfo> out;
  for (const report::Layout& l : report::layouts())
    out.push_back({std::string(l.name), std::string(l.description)});
  return out;
}

}  // namespace spattn::experiments
