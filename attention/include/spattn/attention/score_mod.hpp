#pragma once
// Score modifications every executor applies exactly: ALiBi, soft-capping, an additive bias and
// learned sinks.
//
// With s = scale * q_i . k_j the scaled score of query i (position p = i + nk - nq) and key j,
// on query head h, an allowed pair's logit is
//   z = C tanh(s / C)            when softcap = C (Gemma 2, Grok), else z = s
//   z = z - m_h |p - j|          when ALiBi slopes m are given (for a causal pair: -m_h (p - j))
//   z = z + bias_h(i, j)         when a bias is given (ScoreBias: per element or per tile)
// in that order (FlashAttention's: soft-capping first, then the biases, then the mask); a pair the
// layout does not keep stays -inf. Learned sinks (gpt-oss) add exp(sink_h) to every row's softmax
// denominator of head h, with no value:
//   O_i = sum_j e^(z_j) v_j / (e^(sink_h) + sum_j e^(z_j)),  LSE_i = log(e^(sink_h) + sum_j
//   e^(z_j))
// so a row with no allowed key gives O = 0 and LSE = sink_h (without sinks: O = 0, LSE = -inf).
// Slopes and sinks are per query head (GQA: the query heads of a K/V group have their own).
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace spattn {

// An additive bias on the scaled scores (relative-position tables, T5-style experiments): element
// level [heads][nq][nk] (block_q = block_k = 1), or block level [heads][q_blocks][k_blocks], one
// value per block_q x block_k tile (q_blocks = ceil(nq / block_q)). heads is the query heads, or
// 1 for one bias shared by all. The values are shared between copies (not copied per call).
struct ScoreBias {
  std::shared_ptr<const std::vector<float>> values;  // [heads][rows][cols]; null: no bias
  std::int64_t heads = 0, rows = 0, cols = 0;
  std::int64_t block_q = 1, block_k = 1;  // tokens per row / column of the table

  bool on() const { return values != nullptr; }
  // The bias of query index i (0..nq-1) and key j on query head h.
  float at(std::int64_t h, std::int64_t i, std::int64_t j) const {
    return (*values)[static_cast<std::size_t>(((heads == 1 ? 0 : h) * rows + i / block_q) * cols +
                                              j / block_k)];
  }
};

// A bias from `values` of shape [heads][rows][cols], element level when (rows, cols) = (nq, nk),
// else block level with tiles of ceil(nq / rows) x ceil(nk / cols) tokens; check_score_mod with
// nq and nk checks it against the call.
ScoreBias make_score_bias(std::vector<float> values, std::int64_t heads, std::int64_t rows,
                          std::int64_t cols, std::int64_t block_q, std::int64_t block_k);

struct ScoreMod {
  // ALiBi slope m_h of each query head (empty: no ALiBi). alibi_slopes(H) gives the paper's.
  std::vector<float> alibi_slopes;
  // Soft-capping constant C > 0 (none: no soft-capping).
  std::optional<float> softcap;
  // Learned sink logit of each query head (empty: none).
  std::vector<float> sinks;
  // Additive bias (none: values null).
  ScoreBias bias;

  // Whether the scores themselves change (ALiBi, soft-capping or a bias).
  bool changes_scores() const { return !alibi_slopes.empty() || softcap.has_value() || bias.on(); }
  bool any() const { return changes_scores() || !sinks.empty(); }
};

// The ALiBi paper's slopes for `heads` query heads (>= 1): for H a power of two, m_h =
// 2^(-8 (h + 1) / H); otherwise, with n the largest power of two below H, the n slopes of n
// followed by the slopes of 2n at even indices 0, 2, 4, ... (the first H - n of them).
std::vector<float> alibi_slopes(std::int64_t heads);

// Throws UsageError naming the value when the modification does not fit `q_heads` query heads:
// slopes or sinks of another length, a non-finite slope or sink, C <= 0 or not finite; with nq
// and nk (> 0) also a bias whose shape is not [Hq or 1, nq, nk] or [Hq or 1, q_blocks, k_blocks].
void check_score_mod(const ScoreMod& mod, std::int64_t q_heads, std::int64_t nq = 0,
                     std::int64_t nk = 0);

// The logit of an allowed pair (double; the reference's formula): softcap, then ALiBi, then the
// bias (query index i = qpos - (nk - nq), given as `query`).
double modified_score(const ScoreMod& mod, double s, int head, std::int64_t qpos, std::int64_t key,
                      std::int64_t query);

}  // namespace spattn
