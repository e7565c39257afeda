#pragma once
// Least-squares line fits for sweep reports: the log-log slope of a cost against N (how far a
// pattern has moved away from quadratic cost) and the plain line of time against density.
#include <span>

namespace spattn::experiments {

// y ≈ intercept + slope·x, fitted by ordinary least squares.
struct LineFit {
  double intercept = 0;  // in the units of y (for a power-law fit: ln of the prefactor)
  double slope = 0;      // units of y per unit of x (for a power-law fit: the exponent)
  double r2 = 0;   // coefficient of determination in [0, 1]; 1 when every point is on the line
  int points = 0;  // number of (x, y) pairs used

  // False when the fit is degenerate (fewer than 2 distinct x): then intercept, slope and r2
  // are NaN.
  bool valid() const;
};

// Fits y = a + b·x over the pairs (x[i], y[i]). x and y have the same length (any length).
// Fewer than two distinct x values give a LineFit whose fields are NaN (points still counted).
// When every y is equal, r2 is 1 (the horizontal line explains all there is).
// Throws UsageError on different lengths or a non-finite value.
LineFit fit_linear(std::span<const double> x, std::span<const double> y);

// Fits the power law y = A·x^s, i.e. ln y = ln A + s·ln x, by fit_linear on the logarithms:
// slope = s (the exponent: 2 for quadratic cost, 1 for linear), intercept = ln A, r2 on the log
// scale. Every x and y must be > 0 (throws UsageError naming the first bad value otherwise).
LineFit fit_power_law(std::span<const double> x, std::span<const double> y);

}  // namespace spattn::experiments
