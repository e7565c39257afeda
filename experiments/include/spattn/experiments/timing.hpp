#pragma once
// Timing a call the way every spattn measurement does: untimed warm-up calls, then timed repeats
// on a steady clock, summarized by their median, min and max.
#include <functional>
#include <vector>

namespace spattn::experiments {

struct RepeatTimes {
  std::vector<double> all;  // seconds of each timed call, in call order
  double median = 0, min = 0, max = 0;
};

// Calls `fn` `warmup` times untimed (so first-touch page faults and cold caches stay out of the
// figures), then `repeats` times, each timed alone with std::chrono::steady_clock. Throws
// UsageError when repeats < 1 or warmup < 0. The median of an even count is the mean of the two
// middle values.
RepeatTimes time_repeats(const std::function<void()>& fn, int warmup, int repeats);

}  // namespace spattn::experiments
