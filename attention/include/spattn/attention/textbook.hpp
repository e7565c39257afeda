#pragma once
// The textbook (materialized) attention baseline: what benchmarks compare the flash executor to.
//
// For each (batch, query head) it copies Q, K and V into contiguous float32 matrices, forms the
// whole nq x nk score matrix S = scale * Q K^T with one Eigen GEMM, sets every pair the layout
// does not keep to -inf (exact for any layout: Full tiles are kept whole, Partial tiles through
// their bitsets), takes the row softmax and forms O = P V with a second GEMM. oneTBB runs the
// (batch, head) tasks in parallel, each one single-threaded, so the result does not depend on the
// thread count. It costs O(nq x nk) time and memory per concurrent task whatever the layout
// keeps: that is the point of comparison.
#include <cstdint>
#include <optional>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn {

struct TextbookOptions {
  // Softmax scale; default 1 / sqrt(d).
  std::optional<float> scale;
  // ALiBi, soft-capping and learned sinks (score_mod.hpp), applied to the whole score matrix
  // before the mask, and to the row sums.
  ScoreMod mod;
  // Worker threads (0: oneTBB's default, all cores). The result does not depend on it.
  int threads = 0;
  // Refuse calls whose workspace estimate (textbook_workspace_bytes) exceeds this many bytes
  // with BudgetError. Default: default_memory_budget() when the options are made.
  std::int64_t max_bytes = default_memory_budget();
};

// Bytes of the per-task buffers one textbook call materializes: for each of `slots` concurrent
// tasks, the float32 nq x nk score matrix plus contiguous copies of one head's Q [nq, d], K and V
// [nk, d] and its output [nq, d]. `slots` = min(threads, B x Hq).
std::int64_t textbook_workspace_bytes(std::int64_t nq, std::int64_t nk, std::int64_t dim,
                                      std::int64_t slots);

// q [B, Hq, nq, d], k and v [B, Hkv, nk, d] (any strides), layout for (nq, nk, Hq or 1 heads).
// Returns o [B, Hq, nq, d] and lse [B, Hq, nq, 1] (fully masked rows: zeros and -inf), with
// stats.workspace_bytes = textbook_workspace_bytes(...) and stats.tasks = B x Hq. Throws
// UsageError on shape or layout mismatch and BudgetError (with the estimate and the budget) when
// the workspace exceeds options.max_bytes, both before any work.
AttentionResult textbook_attention(const ConstTensorView& q, const ConstTensorView& k,
                                   const ConstTensorView& v, const Layout& layout,
                                   const TextbookOptions& options = {});

}  // namespace spattn
