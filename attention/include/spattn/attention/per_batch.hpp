#pragma once
// Attention with one layout per batch: selected layouts differ between the sequences of a batch.
#include <span>

#include "spattn/attention/attention.hpp"

namespace spattn {

// q [B, Hq, nq, d], k and v [B, Hkv, nk, d], o [B, Hq, nq, d], lse [B, Hq, nq, 1]; layouts
// holds B layouts (batch b runs on layouts[b]) or one (used for every batch). Runs the flash
// executor batch by batch; returns the stats summed over batches (workspace: the largest).
AttentionStats attention_per_batch(const ConstTensorView& q, const ConstTensorView& k,
                                   const ConstTensorView& v, std::span<const Layout> layouts,
                                   const TensorView& o, const TensorView& lse,
                                   const AttentionOptions& options = {});

// Batch b of a [B, H, N, d] view, as a [1, H, N, d] view.
template <class T>
BasicTensorView<T> batch_slice(const BasicTensorView<T>& t, std::int64_t b) {
  BasicTensorView<T> s = t;
  s.data = t.data + b * t.stride[0];
  s.shape[0] = 1;
  return s;
}

}  // namespace spattn
