#pragma once
// Score modifications every executor applies exactly: ALiBi, soft-capping and learned sinks.
//
// With s = scale * q_i . k_j the scaled score of query i (position p = i + nk - nq) and key j,
// on query head h, an allowed pair's logit is
//   z = C tanh(s / C)            when softcap = C (Gemma 2, Grok), else z = s
//   z = z - m_h |p - j|          when ALiBi slopes m are given (for a causal pair: -m_h (p - j))
// in that order (FlashAttention's: soft-capping first, then the bias, then the mask); a pair the
// layout does not keep stays -inf. Learned sinks (gpt-oss) add exp(sink_h) to every row's softmax
// denominator of head h, with no value:
//   O_i = sum_j e^(z_j) v_j / (e^(sink_h) + sum_j e^(z_j)),  LSE_i = log(e^(sink_h) + sum_j
//   e^(z_j))
// so a row with no allowed key gives O = 0 and LSE = sink_h (without sinks: O = 0, LSE = -inf).
// Slopes and sinks are per query head (GQA: the query heads of a K/V group have their own).
#include <cstdint>
#include <optional>
#include <vector>

namespace spattn {

struct ScoreMod {
  // ALiBi slope m_h of each query head (empty: no ALiBi). alibi_slopes(H) gives the paper's.
  std::vector<float> alibi_slopes;
  // Soft-capping constant C > 0 (none: no soft-capping).
  std::optional<float> softcap;
  // Learned sink logit of each query head (empty: none).
  std::vector<float> sinks;

  // Whether the scores themselves change (ALiBi or soft-capping).
  bool changes_scores() const { return !alibi_slopes.empty() || softcap.has_value(); }
  bool any() const { return changes_scores() || !sinks.empty(); }
};

// The ALiBi paper's slopes for `heads` query heads (>= 1): for H a power of two, m_h =
// 2^(-8 (h + 1) / H); otherwise, with n the largest power of two below H, the n slopes of n
// followed by the slopes of 2n at even indices 0, 2, 4, ... (the first H - n of them).
std::vector<float> alibi_slopes(std::int64_t heads);

// Throws UsageError naming the value when the modification does not fit `q_heads` query heads:
// slopes or sinks of another length, a non-finite slope or sink, C <= 0 or not finite.
void check_score_mod(const ScoreMod& mod, std::int64_t q_heads);

// The logit of an allowed pair (double; the reference's formula): softcap, then ALiBi.
double modified_score(const ScoreMod& mod, double s, int head, std::int64_t qpos, std::int64_t key);

}  // namespace spattn
