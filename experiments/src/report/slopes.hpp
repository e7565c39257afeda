#pragma once
// Log-log slopes of a pattern's figures against N (internal to the report).
#include <string>
#include <vector>

#include "report/points.hpp"
#include "spattn/experiments/fit.hpp"

namespace spattn::experiments::report {

// Log-log fit of value(point) against N over the points where value is finite and > 0.
LineFit slope_vs_n(const std::vector<const Point*>& pts, double (*value)(const Point&));

std::string fmt_slope(const LineFit& f);  // "2.000", or "-" when the fit is degenerate
std::string fmt_r2(const LineFit& f);     // "0.9999", or "-"

}  // namespace spattn::experiments::report
