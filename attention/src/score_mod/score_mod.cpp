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

ScoreBias make_score_bias(std::vector<float> values, std::int64_t heads, std::int64_t rows,
                          std::int64_t cols, std::int64_t block_q, std::int64_t block_k) {
  if (heads < 1 || rows < 1 || cols < 1 || block_q < 1 || block_k < 1 ||
      static_cast<std::int64_t>(values.size()) != heads * rows * cols)
    throw UsageError(fmt::format(
        "a bias of {} values cannot have shape [{}, {}, {}] with tiles of {} x {} tokens",
        values.size(), heads, rows, cols, block_q, block_k));
  for (std::size_t e = 0; e < values.size(); ++e)
    if (!std::isfinite(values[e]))
      throw UsageError(
          fmt::format("the bias value at flat index {} is {}: it must be finite", e, values[e]));
  ScoreBias b;
  b.values = std::make_shared<const std::vector<float>>(std::move(values));
  b.heads = heads, b.rows = rows, b.cols = cols, b.block_q = block_q, b.block_k = block_k;
  return b;
}

void check_score_mod(const ScoreMod& mod, std::int64_t q_heads, std::int64_t nq, std::int64_t nk) {
  const ScoreBias& b = mod.bias;
  if (b.on() && b.heads != 1 && b.heads != q_heads)
    throw UsageError(fmt::format(
        "the bias has shape [{}, {}, {}] but there are {} query heads: its first axis must be {} "
        "or 1",
        b.heads, b.rows, b.cols, q_heads, q_heads));
  if (b.on() && nq > 0 && nk > 0 &&
      (b.rows != (nq + b.block_q - 1) / b.block_q || b.cols != (nk + b.block_k - 1) / b.block_k))
    throw UsageError(fmt::format(
        "the bias has shape [{}, {}, {}] (tiles of {} x {} tokens) but the call has nq = {}, nk = "
        "{}: allowed [{} or 1, {}, {}] (per element) or [{} or 1, ceil(nq / block_q), ceil(nk / "
        "block_k)] (per tile)",
        b.heads, b.rows, b.cols, b.block_q, b.block_k, nq, nk, q_heads, nq, nk, q_heads));
  check_per_head(mod.alibi_slopes, q_heads, "the ALiBi slope list");
  check_per_head(mod.sinks, q_heads, "the sink logit list");
  if (mod.softcap && !(std::isfinite(*mod.softcap) && *mod.softcap > 0))
    throw UsageError(fmt::format("softcap = {}: the soft-capping constant C must be finite and > 0",
                                 *mod.softcap));
}

double modified_score(const ScoreMod& mod, double s, int head, std::int64_t qpos, std::int64_t key,
                      std::int64_t query) {
  if (mod.softcap) {
    const double c = *mod.softcap;
    s = c * std::tanh(s / c);
  }
  if (!mod.alibi_slopes.empty())
    s -= static_cast<double>(mod.alibi_slopes[static_cast<std::size_t>(head)]) *
         static_cast<double>(qpos > key ? qpos - key : key - qpos);
  if (mod.bias.on()) s += static_cast<double>(mod.bias.at(head, query, key));
  return s;
}

}  // namespace spattn
