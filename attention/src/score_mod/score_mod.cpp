// Score modifications: the paper's ALiBi slopes, input checks, the double formula.
#include "spattn/attention/score_mod.hpp"

#include <fmt/format.h>

#include <cmath>

#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

std::vector<double> power_of_two_slopes(std::int64_t n) {
  std::vector<double> m(static_cast<std::size_t>(n));
  for (std::int64_t h = 0; h < n; ++h)
    m[static_cast<std::size_t>(h)] =
        std::exp2(-8.0 * static_cast<double>(h + 1) / static_cast<double>(n));
  return m;
}

void check_per_head(const std::vector<float>& values, std::int64_t q_heads, const char* what) {
  if (values.empty()) return;
  if (static_cast<std::int64_t>(values.size()) != q_heads)
    throw UsageError(
        fmt::format("{} has {} values but there are {} query heads: give one per "
                    "query head",
                    what, values.size(), q_heads));
  for (std::size_t h = 0; h < values.size(); ++h)
    if (!std::isfinite(values[h]))
      throw UsageError(
          fmt::format("{} of query head {} is {}: it must be finite", what, h, values[h]));
}

}  // namespace

std::vector<float> alibi_slopes(std::int64_t heads) {
  if (heads < 1)
    throw UsageError(fmt::format("ALiBi slopes for {} heads: the head count must be >= 1", heads));
  std::int64_t n = 1;
  while (n * 2 <= heads) n *= 2;
  std::vector<double> m = power_of_two_slopes(n);
  if (n < heads) {
    const std::vector<double> extra = power_of_two_slopes(2 * n);
    for (std::int64_t i = 0; static_cast<std::int64_t>(m.size()) < heads; i += 2)
      m.push_back(extra[static_cast<std::size_t>(i)]);
  }
  return {m.begin(), m.end()};
}

void check_score_mod(const ScoreMod& mod, std::int64_t q_heads) {
  check_per_head(mod.alibi_slopes, q_heads, "the ALiBi slope list");
  check_per_head(mod.sinks, q_heads, "the sink logit list");
  if (mod.softcap && !(std::isfinite(*mod.softcap) && *mod.softcap > 0))
    throw UsageError(fmt::format("softcap = {}: the soft-capping constant C must be finite and > 0",
                                 *mod.softcap));
}

double modified_score(const ScoreMod& mod, double s, int head, std::int64_t qpos,
                      std::int64_t key) {
  if (mod.softcap) {
    const double c = *mod.softcap;
    s = c * std::tanh(s / c);
  }
  if (!mod.alibi_slopes.empty())
    s -= static_cast<double>(mod.alibi_slopes[static_cast<std::size_t>(head)]) *
         static_cast<double>(qpos > key ? qpos - key : key - qpos);
  return s;
}

}  // namespace spattn
