#pragma once
// Selection: turns the selector nodes of a pattern (spattn/patterns/selector.hpp) into static
// patterns by scoring Q and K, and builds one Layout per batch from them. The executor then runs
// each batch on its own layout (per_batch.hpp) and cannot tell a selected layout from a static
// one. The rules are in patterns/README.md ("Selectors"); every selector is deterministic (ties
// go to the lower key index) and chooses per query head (a GQA group's heads score the shared
// K/V head with their own queries).
#include <cstdint>
#include <vector>

#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/pattern.hpp"

namespace spattn {

// The estimation step's cost, over all batches and query heads.
struct SelectionCost {
  double flops = 0;  // 2 per multiply-add of the scoring (dot products, pooling), sorts excluded
  double bytes = 0;  // float32 bytes of Q and K the scoring reads (each once per head)
  SelectionCost& operator+=(const SelectionCost& o) {
    flops += o.flops;
    bytes += o.bytes;
    return *this;
  }
};

// `pattern` with every selector resolved on batch b of q [B, Hq, nq, d] and k [B, Hkv, nk, d]
// (geometry g: nq, nk, Hq). Adds the scoring's cost to *cost when given. Throws UsageError when
// Q or K holds NaN or Inf, or the shapes do not match g. Heads run in parallel (threads: 0 =
// oneTBB's default); the result does not depend on the thread count.
PatternPtr select_batch(const PatternPtr& pattern, const ConstTensorView& q,
                        const ConstTensorView& k, std::int64_t b, const Geometry& g,
                        SelectionCost* cost = nullptr, int threads = 0);

// One layout per batch (for a pattern without selectors: one layout, shared by every batch).
struct SelectedLayouts {
  std::vector<PatternPtr> patterns;  // the resolved pattern of each batch
  std::vector<Layout> layouts;       // its layout (built with the given options)
  SelectionCost cost;
  double seconds = 0;  // wall time of scoring, resolving and building, all batches
};
SelectedLayouts select_layouts(const PatternPtr& pattern, const ConstTensorView& q,
                               const ConstTensorView& k, const Geometry& g,
                               const BuildOptions& options = {});

}  // namespace spattn
