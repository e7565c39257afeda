// Report layout "scaling": time, speed and memory of every pattern per N, then the slopes against
// N.
#include <fmt/format.h>

#include "report/markdown.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"

namespace spattn::experiments::report {

namespace {

std::string render(const LayoutInput& in) {
  const std::vector<Point>& pts = in.points;
  const std::string& baseline = in.baseline;
  std::string out;
  // N is a row of the table, never a group.
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("Time, speed and memory per N", g);
    out += points_table(g, baseline);
    const std::string slopes = slopes_table(g);
    if (!slopes.empty()) out += section_title("Slopes against N", g) + slopes;
  }
  return out;
}

}  // namespace

Layout report_layout_scaling() {
  return {"scaling",
          "per pattern and N: time, speedup, memory, rates, fidelity; log-log slopes of time and "
          "memory against N",
          render};
}

}  // namespace spattn::experiments::report
