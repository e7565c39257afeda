// Log-log slopes of a pattern's figures against N.
#include "report/slopes.hpp"

#include <fmt/format.h>

#include <cmath>

#include "report/markdown.hpp"

namespace spattn::experiments::report {

LineFit slope_vs_n(const std::vector<const Point*>& pts, double (*value)(const Point&)) {
  std::vector<double> x, y;
  for (const Point* p : pts) {
    const double v = value(*p);
    if (std::isfinite(v) && v > 0) {
      x.push_back(static_cast<double>(p->n));
      y.push_back(v);
    }
  }
  return fit_power_law(x, y);
}

std::string fmt_slope(const LineFit& f) {
  return f.valid() ? fmt::format("{:.3f}", f.slope) : kNone;
}
std::string fmt_r2(const LineFit& f) {
  return f.valid() ? fmt::format("{:.4f}", f.r2) : kNone;
}

}  // namespace spattn::experiments::report
