// Counter-based normal samples (see random.hpp).
#include "spattn/attention/random.hpp"

#include <fmt/format.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_for.h>

#include <cmath>
#include <numbers>

#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1]: 53 random bits, never 0 (Box-Muller takes its log).
double uniform(std::uint64_t bits) {
  return (static_cast<double>(bits >> 11) + 1.0) * 0x1.0p-53;
}

float normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t k) {
  const std::uint64_t key = splitmix64(splitmix64(seed) ^ (stream * 0xd1b54a32d192ed03ull));
  const double u1 = uniform(splitmix64(key ^ (2 * k)));
  const double u2 = uniform(splitmix64(key ^ (2 * k + 1)));
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

}  // namespace

void fill_normal(const TensorView& t, std::uint64_t seed, std::uint64_t stream) {
  fill_normal_rows(t, seed, stream, t.shape[2], 0);
}

void fill_normal_rows(const TensorView& t, std::uint64_t seed, std::uint64_t stream,
                      std::int64_t total_tokens, std::int64_t first_token) {
  if (first_token < 0 || first_token + t.shape[2] > total_tokens)
    throw UsageError(fmt::format("fill_normal_rows: rows [{}, {}) are not within a sequence of {}",
                                 first_token, first_token + t.shape[2], total_tokens));
  const std::int64_t rows = t.shape[0] * t.shape[1] * t.shape[2];
  tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, rows, 256),
                    [&](const tbb::blocked_range<std::int64_t>& range) {
                      for (std::int64_t r = range.begin(); r < range.end(); ++r) {
                        const std::int64_t n = r % t.shape[2];
                        const std::int64_t h = (r / t.shape[2]) % t.shape[1];
                        const std::int64_t b = r / (t.shape[2] * t.shape[1]);
                        const std::int64_t global =
                            (b * t.shape[1] + h) * total_tokens + first_token + n;
                        for (std::int64_t x = 0; x < t.shape[3]; ++x)
                          t.at(b, h, n, x) = normal(
                              seed, stream, static_cast<std::uint64_t>(global * t.shape[3] + x));
                      }
                    });
}

}  // namespace spattn
