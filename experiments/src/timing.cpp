// Warm-up and timed repeats (see timing.hpp).
#include "spattn/experiments/timing.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "spattn/patterns/error.hpp"

namespace spattn::experiments {

RepeatTimes time_repeats(const std::function<void()>& fn, int warmup, int repeats) {
  if (repeats < 1) throw UsageError(fmt::format("repeats = {}: it must be >= 1", repeats));
  if (warmup < 0) throw UsageError(fmt::format("warmup = {}: it must be >= 0", warmup));
  using Clock = std::chrono::steady_clock;
  for (int w = 0; w < warmup; ++w) fn();
  RepeatTimes t;
  t.all.reserve(static_cast<std::size_t>(repeats));
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    fn();
    t.all.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::vector<double> sorted = t.all;
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  t.median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  t.min = sorted.front();
  t.max = sorted.back();
  return t;
}

}  // namespace spattn::experiments
