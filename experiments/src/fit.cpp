// Least-squares fits. Two passes (means first, then centred sums) keep the sums well conditioned
// when x spans many orders of magnitude, as N does in a sweep.
#include "spattn/experiments/fit.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <vector>

#include "spattn/patterns/error.hpp"

namespace spattn::experiments {

bool LineFit::valid() const {
  return std::isfinite(slope);
}

LineFit fit_linear(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size())
    throw UsageError(fmt::format("fit_linear: x has {} values but y has {}; they must pair up",
                                 x.size(), y.size()));
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i]))
      throw UsageError(
          fmt::format("fit_linear: point {} is ({}, {}); values must be finite", i, x[i], y[i]));
  }
  LineFit fit;
  fit.points = static_cast<int>(x.size());
  const double nan = std::numeric_limits<double>::quiet_NaN();
  fit.intercept = fit.slope = fit.r2 = nan;
  if (x.empty()) return fit;

  const double n = static_cast<double>(x.size());
  double mx = 0, my = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    mx += x[i];
    my += y[i];
  }
  mx /= n;
  my /= n;
  double sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - mx, dy = y[i] - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  // All x equal (or a single point): no line is determined.
  if (!(sxx > 0)) return fit;

  fit.slope = sxy / sxx;
  fit.intercept = my - fit.slope * mx;
  double ss_res = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double r = y[i] - (fit.intercept + fit.slope * x[i]);
    ss_res += r * r;
  }
  fit.r2 = syy > 0 ? std::max(0.0, 1.0 - ss_res / syy) : 1.0;
  return fit;
}

LineFit fit_power_law(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size())
    throw UsageError(fmt::format("fit_power_law: x has {} values but y has {}; they must pair up",
                                 x.size(), y.size()));
  std::vector<double> lx(x.size()), ly(y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!(x[i] > 0) || !(y[i] > 0) || !std::isfinite(x[i]) || !std::isfinite(y[i]))
      throw UsageError(fmt::format(
          "fit_power_law: point {} is ({}, {}); a log-log fit needs finite x > 0 and y > 0", i,
          x[i], y[i]));
    lx[i] = std::log(x[i]);
    ly[i] = std::log(y[i]);
  }
  return fit_linear(lx, ly);
}

}  // namespace spattn::experiments
