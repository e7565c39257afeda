#pragma once
// The oracle ceiling of a layout: the largest attention-mass recall any choice of the same
// number of keys per row could reach. Beside a selector's own recall it says how much of the
// gap to full attention is the selector's fault and how much is the budget's.
//
// Row i of query head h (batch b) keeps n_i keys in `layouts` (the pairs its BlockLayout
// allows). Over the keys the baseline layout allows in that row, P_ij = softmax_j(scale q_i .
// k_j) (logits in float from the inputs, the softmax in double); the row's ceiling is the sum of
// the min(n_i, keys) largest P_ij (oracle top-k at k = n_i, ties irrelevant to the sum), 1 when
// the row keeps every baseline key, 0 when it keeps none or the baseline allows none.
#include <cstdint>
#include <vector>

#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn::experiments {

struct OracleCeiling {
  double recall_mean = 0;  // mean over rows (B x Hq x nq)
  double recall_min = 0;   // minimum over rows
};

// q [B, Hq, nq, d], k [B, Hkv, nk, d] with rows contiguous (UsageError otherwise or on shapes
// that do not match the layouts). `layouts`: one per batch, or one shared by every batch;
// `baseline`: the full attention compared with (dense or causal), at the same geometry. Parallel
// over (batch, head, query block); the result does not depend on the thread count (threads: 0 =
// oneTBB's default). Time O(baseline pairs x d), memory O(block_q x nk) per thread.
OracleCeiling oracle_ceiling(const ConstTensorView& q, const ConstTensorView& k,
                             const std::vector<const Layout*>& layouts, const Layout& baseline,
                             double scale, int threads = 0);

// Kept keys per query of one head's layout: out[i] for i in [0, nq), O(kept tiles x block_q).
std::vector<std::int64_t> row_key_counts(const BlockLayout& l);

}  // namespace spattn::experiments
