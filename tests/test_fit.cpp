// Least-squares fits used by the sweep reports: known exponents are recovered from synthetic data.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>
#include <vector>

#include "spattn/experiments/fit.hpp"
#include "spattn/patterns/error.hpp"

using spattn::experiments::fit_linear;
using spattn::experiments::fit_power_law;
using spattn::experiments::LineFit;

namespace {
std::vector<double> geometric_n(double from, int count) {
  std::vector<double> n;
  for (int i = 0; i < count; ++i) n.push_back(from * std::pow(2.0, i));
  return n;
}
}  // namespace

TEST_CASE("fit_power_law recovers the exponent of exact power laws", "[fit]") {
  const std::vector<double> n = geometric_n(1024, 11);  // 1K .. 1M
  for (const double exponent : {2.0, 1.5, 1.0, 0.5, 0.0}) {
    std::vector<double> t;
    for (const double x : n) t.push_back(3e-9 * std::pow(x, exponent));
    const LineFit f = fit_power_law(n, t);
    CAPTURE(exponent);
    REQUIRE(f.valid());
    CHECK(f.points == 11);
    CHECK(f.slope == Approx(exponent).margin(1e-9));
    CHECK(f.intercept == Approx(std::log(3e-9)).epsilon(1e-9));
    CHECK(f.r2 == Approx(1.0).margin(1e-12));
  }
}

TEST_CASE("fit_power_law on noisy data stays within tolerance", "[fit]") {
  // Multiplicative noise of ±5% (uniform in log space) around c·N^s: the slope estimate over
  // 2^10..2^20 cannot move by more than log(1.05/0.95)/log(2^10) ≈ 0.0144 in the worst case.
  std::mt19937_64 rng(20240607);
  std::uniform_real_distribution<double> noise(std::log(0.95), std::log(1.05));
  const std::vector<double> n = geometric_n(1024, 11);
  for (const double exponent : {2.0, 1.0}) {
    std::vector<double> t;
    for (const double x : n) t.push_back(1e-7 * std::pow(x, exponent) * std::exp(noise(rng)));
    const LineFit f = fit_power_law(n, t);
    CAPTURE(exponent);
    CHECK(std::abs(f.slope - exponent) < 0.015);
    CHECK(f.r2 > 0.99);
    CHECK(f.r2 < 1.0);  // noise is present, so the fit cannot be perfect
  }
}

TEST_CASE("fit_linear matches a hand-computed example", "[fit]") {
  // x = 1,2,3; y = 1,3,2. Means 2 and 2; centred x = -1,0,1, centred y = -1,1,0.
  // Sxx = 2, Sxy = 1 -> slope 0.5, intercept 2 - 0.5·2 = 1.
  // Residuals y - (1 + 0.5x) = -0.5, 1, -0.5 -> SSres = 1.5; SStot = 1+1+0 = 2 -> R^2 = 0.25.
  const std::vector<double> x{1, 2, 3}, y{1, 3, 2};
  const LineFit f = fit_linear(x, y);
  CHECK(f.points == 3);
  CHECK(f.slope == Approx(0.5));
  CHECK(f.intercept == Approx(1.0));
  CHECK(f.r2 == Approx(0.25));
}

TEST_CASE("fit_linear recovers an exact line and a noisy one", "[fit]") {
  // t = 0.2 + 3·density, as time against block density.
  std::vector<double> d, t, tn;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> noise(-0.01, 0.01);
  for (int i = 1; i <= 10; ++i) {
    d.push_back(i / 10.0);
    t.push_back(0.2 + 3.0 * (i / 10.0));
    tn.push_back(t.back() + noise(rng));
  }
  const LineFit exact = fit_linear(d, t);
  CHECK(exact.slope == Approx(3.0));
  CHECK(exact.intercept == Approx(0.2));
  CHECK(exact.r2 == Approx(1.0).margin(1e-12));
  // Noise of ±0.01 over a density span of 0.9: slope error well under 0.05.
  const LineFit noisy = fit_linear(d, tn);
  CHECK(std::abs(noisy.slope - 3.0) < 0.05);
  CHECK(std::abs(noisy.intercept - 0.2) < 0.05);
  CHECK(noisy.r2 > 0.999);
}

TEST_CASE("degenerate fits give NaN, bad input throws", "[fit]") {
  SECTION("fewer than two distinct x") {
    const std::vector<double> one{4096}, y1{0.5};
    const LineFit f1 = fit_power_law(one, y1);
    CHECK_FALSE(f1.valid());
    CHECK(f1.points == 1);
    CHECK(std::isnan(f1.slope));
    CHECK(std::isnan(f1.r2));
    const std::vector<double> same{4096, 4096, 4096}, y3{1, 2, 3};
    const LineFit f3 = fit_linear(same, y3);
    CHECK_FALSE(f3.valid());
    CHECK(f3.points == 3);
    CHECK(std::isnan(f3.intercept));
    const LineFit f0 = fit_linear(std::vector<double>{}, std::vector<double>{});
    CHECK_FALSE(f0.valid());
    CHECK(f0.points == 0);
  }
  SECTION("constant y is a perfect horizontal fit") {
    const std::vector<double> x{1, 2, 4}, y{5, 5, 5};
    const LineFit f = fit_linear(x, y);
    CHECK(f.slope == 0.0);
    CHECK(f.intercept == 5.0);
    CHECK(f.r2 == 1.0);
  }
  SECTION("mismatched lengths, non-positive or non-finite values") {
    const std::vector<double> x{1, 2}, y{1};
    CHECK_THROWS_AS(fit_linear(x, y), spattn::UsageError);
    CHECK_THROWS_AS(fit_power_law(x, y), spattn::UsageError);
    const std::vector<double> zero{1, 0}, pos{1, 2};
    CHECK_THROWS_WITH(fit_power_law(zero, pos), Catch::Contains("x > 0"));
    CHECK_THROWS_AS(fit_power_law(pos, zero), spattn::UsageError);
    const std::vector<double> inf{1, INFINITY};
    CHECK_THROWS_AS(fit_linear(inf, pos), spattn::UsageError);
  }
}
