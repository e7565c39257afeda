#pragma once
// The block-sparse flash attention executor (the fast path).
//
// For each query tile of the layout it walks the tile's kept key tiles, each by its planned path
// (execution_path.hpp: whole, narrowed to its key run, or its kept columns gathered into a
// packed panel), then the row's diagonals when the pattern has a usable diagonal cover:
// S = scale * Q K^T, the bits applied where rows differ (Full tiles pay no masking unless
// options.mask_full_tiles), online softmax with a running max and sum, O += P V; then O /= l
// and LSE = max + log(l).
// oneTBB runs (batch, K/V head group, query tile) tasks; rows with far more kept tiles than
// average are split over key tiles and merged through their LSE in a fixed order, so the output
// is bitwise identical for every thread count. Workspace is O(threads x tile) plus, when
// diagonals run, a transposed copy of K and V (the size of K and V); never O(nq x nk).
#include <cstdint>
#include <optional>

#include "spattn/attention/execution_path.hpp"
#include "spattn/attention/kv_tensor.hpp"
#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn {

struct AttentionOptions {
  // Softmax scale; default 1 / sqrt(d).
  std::optional<float> scale;
  // Worker threads (0: oneTBB's default, all cores). The result does not depend on it.
  int threads = 0;
  // Heavy-row splitting: key tiles per part; a query tile with more than twice this many kept
  // tiles is split into parts merged through their LSE. 0: automatic, max(64, 4 x the layout's
  // average kept tiles per query tile), which splits global-token rows but never dense or causal
  // ones. Depends on the layout only, so results do not depend on the thread count.
  std::int64_t split_tiles = 0;
  // Treat every kept Full tile as Partial: run it through the masked kernel with an all-ones
  // mask (mask loads and blends included), so that the price of masking can be measured on any
  // layout. The output is bitwise the same as without it; only the time changes.
  bool mask_full_tiles = false;
  // How kept pairs are run (execution_path.hpp): Auto picks per tile and per query-tile row;
  // the others force one path where it applies, for tests and for measuring a path. The output
  // is exact on every path.
  ExecutionPath path = ExecutionPath::Auto;
  // ALiBi, soft-capping and learned sinks (score_mod.hpp), applied exactly on every path.
  ScoreMod mod;
};

// What one call did, for benchmarks and sweeps.
struct AttentionStats {
  std::int64_t workspace_bytes = 0;  // peak bytes the executor itself allocated (all threads)
  std::int64_t tasks = 0;            // parallel tasks (after splitting heavy rows)
  std::int64_t split_rows = 0;       // query tiles split over key tiles (x batch x head groups)
  std::int64_t split_parts = 0;      // parts those rows were split into
  PathPairs paths;                   // pairs computed by each path (all batches and heads)
};

struct AttentionResult {
  Tensor o;    // [B, Hq, nq, d]; a fully masked row is all zeros
  Tensor lse;  // [B, Hq, nq, 1]; natural-log sum of exp(logits) (and of the sink); -inf for a
               // masked row without a sink
  AttentionStats stats;
};

// q [B, Hq, nq, d], k and v [B, Hkv, nk, d] (any strides), layout for (nq, nk, Hq or 1 heads).
// Query i sits at position i + nk - nq (the layout's convention). Throws UsageError on any shape,
// stride or layout mismatch before work starts. Finite inputs give finite outputs (logits of
// magnitude 1e4 included); NaN or Inf inputs propagate into the rows that read them (and a NaN
// or Inf in V also into the other rows of the query tiles whose kept key tiles hold it, as 0 x
// NaN = NaN).
AttentionResult attention(const ConstTensorView& q, const ConstTensorView& k,
                          const ConstTensorView& v, const Layout& layout,
                          const AttentionOptions& options = {});

// The same into caller-owned outputs: o [B, Hq, nq, d] and lse [B, Hq, nq, 1] (any strides that
// do not alias). Returns the stats.
AttentionStats attention(const ConstTensorView& q, const ConstTensorView& k,
                         const ConstTensorView& v, const Layout& layout, const TensorView& o,
                         const TensorView& lse, const AttentionOptions& options = {});

// The same with K and V stored in float32, bfloat16 or int8 with per-token scales (kv_tensor.hpp;
// rows contiguous; each its own dtype). Queries, scores and every accumulation stay float32:
// each K/V row the executor reads is converted to float32 in its per-thread scratch (the packed
// tile, gathered panel or transposed 16 rows it builds anyway) and runs the float32 kernels, so
// the output is that of attention() on the dequantized K/V (dequantize_kv), on every path and
// bitwise the same for every thread count; the extra work is O(rows read x d), never O(nq x nk).
AttentionStats attention(const ConstTensorView& q, const KVView& k, const KVView& v,
                         const Layout& layout, const TensorView& o, const TensorView& lse,
                         const AttentionOptions& options = {});

}  // namespace spattn
