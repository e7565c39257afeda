#pragma once
// Sections of table.md that several layouts share (internal to the report).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "report/groups.hpp"

namespace spattn::experiments::report {

// "## title\n\n", with the group's label in parentheses when it has one.
std::string section_title(const std::string& title, const Group& g);

// One row per point that ran: time, speedup, memory, rates, fidelity.
std::string points_table(const Group& g, const std::string& baseline);

// "All points that ran": points_table per group of every N (the closing section of the layouts
// other than "scaling", which shows the same table per N as its body).
std::string all_points_sections(const std::vector<Point>& pts, const std::string& baseline);

// Fitted log-log slopes against N per pattern (patterns with at least two N values that ran);
// "" when no pattern has two.
std::string slopes_table(const Group& g);

// Pattern rows × N columns of cell(point); a point that did not run shows its status.
std::string pattern_by_n(const Group& g, const std::function<std::string(const Point&)>& cell);

// "Points that did not run": status, prediction and message of each ("" when every point ran).
std::string failures_section(const std::vector<Point>& pts);

}  // namespace spattn::experiments::report
