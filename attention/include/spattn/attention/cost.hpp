#pragma once
// The cost model: what an attention call over a layout must compute, move and hold, from the
// layout's exact counts alone (no tensors, no timing).
//
// Pairs and FLOPs cover every (batch, query head): a layout with one head stands for all Hq query
// heads. Computed pairs follow the flash executor's plan (execution_path.hpp): what its paths
// evaluate, masked lanes included. FLOPs count 2·d for the logit (Q·K) and 2·d for the P·V product
// of one (query, key) pair: 4·d per pair. Softmax, scaling and masking are not counted (as
// FlashAttention's papers count). Useful FLOPs use the allowed pairs, computed FLOPs the area of
// the kept tiles.
//
// Bytes moved (float32, the flash executor's access pattern, no cache reuse assumed, so an upper
// bound on memory traffic): each query head reads its Q rows once (nq·d·4) and, for every kept
// tile, the tile's K and V rows (2·cols·d·4) and, for a Partial tile, its bitset
// (block_q·mask_row_words·8); it writes O (nq·d·4) and LSE (nq·4).
#include <cstdint>

#include "spattn/attention/execution_path.hpp"
#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn {

struct AttentionCost {
  // Work, over all batches and query heads.
  std::int64_t allowed_pairs = 0;    // pairs the pattern allows
  std::int64_t computed_pairs = 0;   // what the flash executor's plan computes: paths.total()
  std::int64_t tile_area_pairs = 0;  // area of kept tiles (what v1's whole-tile executor computed)
  PathPairs paths;                   // computed pairs per execution path
  std::int64_t kept_tiles = 0, full_tiles = 0, partial_tiles = 0;
  double useful_flops = 0;    // 4·d·allowed_pairs
  double computed_flops = 0;  // 4·d·computed_pairs
  // allowed / computed pairs (1 when no tile is kept: nothing is wasted).
  double efficiency = 1;
  double dense_flops = 0;  // 4·d·B·Hq·nq·nk: the work of dense attention
  // Extra work of score modifications (add_score_mod_cost; 0 without them), floating-point
  // operations: per computed pair kSoftcapFlopsPerPair with soft-capping and
  // kAlibiFlopsPerPair with ALiBi, kBiasFlopsPerPair with a bias; per query row d_v + 6 with
  // learned sinks.
  double score_mod_flops = 0;

  // Traffic (see the model above), bytes.
  double bytes_read = 0;
  double bytes_written = 0;

  // Memory estimates, bytes.
  std::int64_t input_bytes = 0;            // q, k, v as contiguous float32
  std::int64_t output_bytes = 0;           // o and lse, float32
  std::int64_t layout_bytes = 0;           // the layout (distinct head layouts once)
  std::int64_t flash_workspace_bytes = 0;  // flash_workspace_estimate
  std::int64_t reference_bytes = 0;        // reference_memory_bytes
  std::int64_t textbook_bytes = 0;         // textbook workspace + its outputs
};

// Cost of attention over `layout` with sizes `s` (layout geometry must match s.nq, s.nk and have
// 1 or s.q_heads heads; throws UsageError otherwise, or when a count overflows int64). `threads`
// (0: oneTBB's default) sets the number of concurrent workspaces in the memory estimates; `path`
// is the executor's AttentionOptions::path (the computed pairs follow its plan).
AttentionCost attention_cost(const Layout& layout, const AttentionShape& s, int threads = 0,
                             ExecutionPath path = ExecutionPath::Auto);

// The same from sizes: B, Hq, Hkv and d (nq and nk come from the layout).
AttentionCost attention_cost(const Layout& layout, std::int64_t batch, std::int64_t q_heads,
                             std::int64_t kv_heads, std::int64_t dim, int threads = 0,
                             ExecutionPath path = ExecutionPath::Auto);

// Operations the kernels spend per score on each modification (src/kernels/score_mod.hpp):
// soft-capping 2 multiplies around a tanh of 2 clamps, 11 multiply-adds, 2 multiplies and a
// division; ALiBi a subtraction, an absolute value and a multiply-add; a bias one addition (its
// value copied into the step's buffer beforehand).
inline constexpr double kSoftcapFlopsPerPair = 18;
inline constexpr double kAlibiFlopsPerPair = 3;
inline constexpr double kBiasFlopsPerPair = 1;

// Sets c.score_mod_flops for modifications `mod` on a call of shape s (c from attention_cost).
void add_score_mod_cost(AttentionCost& c, const ScoreMod& mod, const AttentionShape& s);

// Estimated bytes of the flash executor's workspace, an upper bound for its current buffers
// (src/flash/attention.cpp): per thread, for `lanes` = block_q x min(group, max(1, 256 /
// block_q)) query rows (the query heads of a K/V group, `group` = Hq / Hkv, share one step):
// Q^T and O^T (d x lanes), the score tile (block_k x lanes), four per-lane vectors, K and V
// packing tiles (block_k x d each, used for strided inputs), two tile masks (block_k x lanes
// bits each), the gather panel (64 K and V rows and their lane bits), the diagonal path's
// 64-slot scratch and the residue tracks' 4-vector Q^T, O^T and scratch, float32. Split heavy
// rows add partial results this does not count; the diagonal path's transposed K and V and the
// tracks' per-query (O, m, l) are added by attention_cost when its plan uses them.
std::int64_t flash_workspace_estimate(const Geometry& g, std::int64_t dim, int threads,
                                      std::int64_t group = 1);

// GFLOP/s of `flops` done in `seconds` (0 when seconds <= 0).
double gflops_per_second(double flops, double seconds);
// Useful GFLOP/s: 4·d·allowed pairs / seconds, comparable across patterns.
inline double useful_gflops(const AttentionCost& c, double seconds) {
  return gflops_per_second(c.useful_flops, seconds);
}
inline double computed_gflops(const AttentionCost& c, double seconds) {
  return gflops_per_second(c.computed_flops, seconds);
}

}  // namespace spattn
