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

// One row per point that ran: time, its spread, speedup, memory, rates, and fidelity with the
// baseline each point was compared with. Points whose spread exceeds kNoisySpread are marked
// "noisy", and so are speedups whose point or baseline point is, with a note below the table.
std::string points_table(const Group& g, const std::string& baseline);

// max/min of p's timed calls, "1.08", followed by " noisy" above kNoisySpread; "-" without
// timings.
std::string fmt_spread(const Point& p);

// " (noisy)" when p, or `base` (a baseline point p is compared with, may be null), is noisy;
// else "". For the cells of the layouts' own time and speed tables.
std::string noisy_mark(const Point& p, const Point* base = nullptr);

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
