#pragma once
// Fidelity: how far a sparse pattern's attention is from full (dense) attention on the same
// inputs.
//
// Two measures over all rows (batch, query head, query):
//   - relative L2 error of the output, ||O_sparse - O_dense||_2 / ||O_dense||_2 over all
//     elements (in double);
//   - attention-mass recall of a row, the share of the dense softmax mass that falls on the
//     pairs the pattern allows: sum_{j allowed} e^{s_ij} / sum_j e^{s_ij} =
//     exp(LSE_sparse - LSE_dense), since each LSE is the log of its row's sum. 0 for a fully
//     masked row (LSE_sparse = -inf); capped at 1 (a pattern allowing every key of a row
//     computes that row's sum in another order, and the rounding may exceed 1 by ~1e-7).
//     Reported as the mean and the minimum over rows.
#include <cstdint>
#include <optional>
#include <string>

#include "spattn/attention/reference.hpp"
#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/geometry.hpp"

namespace spattn::experiments {

struct Fidelity {
  double rel_l2_error = 0;
  double recall_mean = 0;
  double recall_min = 0;
  std::int64_t rows = 0;  // rows averaged over (B x Hq x nq)
};

// Compares a sparse result with the dense one: o_* [B, Hq, nq, d], lse_* [B, Hq, nq, 1], all of
// the same shape (else UsageError).
Fidelity compare_to_dense(const ConstTensorView& o_sparse, const ConstTensorView& lse_sparse,
                          const ConstTensorView& o_dense, const ConstTensorView& lse_dense);

// Full attention to compare with (the flash executor over the pattern `baseline_spec`, usually
// "dense" or "causal", built at g) on q [B, Hq, nq, d], k and v [B, Hkv, nk, d] into
// o [B, Hq, nq, d] and lse [B, Hq, nq, 1]; g gives nq, nk, heads and the tile sizes. `threads` as
// in AttentionOptions; max_layout_bytes bounds the baseline's layout (BudgetError).
void baseline_attention(const ConstTensorView& q, const ConstTensorView& k,
                        const ConstTensorView& v, const std::string& baseline_spec,
                        const Geometry& g, int threads, std::int64_t max_layout_bytes,
                        const TensorView& o, const TensorView& lse);
// The same with score modifications and a scale (none: 1 / sqrt(d)), so that a modified run is
// compared with full attention under the same modifications.
void baseline_attention(const ConstTensorView& q, const ConstTensorView& k,
                        const ConstTensorView& v, const std::string& baseline_spec,
                        const Geometry& g, int threads, std::int64_t max_layout_bytes,
                        const TensorView& o, const TensorView& lse, const ScoreMod& mod,
                        std::optional<float> scale);

// Estimated bytes of a dense layout at g (an upper bound for any baseline without partial
// tiles, causal's diagonal masks aside): its CSR row pointers (8 bytes per query block) and one
// column index and mask index (4 + 4 bytes) per tile.
std::int64_t dense_layout_bytes(const Geometry& g);

// ||o - ref.o||_2 / ||ref.o||_2 over all elements, in double (0 when both are zero). o has
// ref's shape [B, Hq, nq, d] (else UsageError).
double relative_l2_error(const ConstTensorView& o, const ReferenceResult& ref);

}  // namespace spattn::experiments
