#pragma once
// The shapes of one attention call, checked once before any work starts.
#include <cstdint>

#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn {

// Sizes of attention(q [B, Hq, nq, d], k [B, Hkv, nk, d], v [B, Hkv, nk, d_v]); the output is
// [B, Hq, nq, d_v]. d_v = d unless the values have their own head size (DeepSeek MLA: 192/128).
struct AttentionShape {
  std::int64_t batch = 0;
  std::int64_t q_heads = 0;   // Hq
  std::int64_t kv_heads = 0;  // Hkv; Hq is a multiple of it (GQA: Hq / Hkv query heads per group)
  std::int64_t nq = 0;
  std::int64_t nk = 0;
  std::int64_t dim = 0;    // d of q and k, 1..kMaxHeadDim
  std::int64_t dim_v = 0;  // d_v of v and o, 1..kMaxHeadDim (0 in a hand-made shape: d)

  std::int64_t value_dim() const { return dim_v > 0 ? dim_v : dim; }  // d_v
  std::int64_t group() const { return q_heads / kv_heads; }           // query heads per K/V head
  // K/V head that query head h reads.
  std::int64_t kv_head(std::int64_t h) const { return h / group(); }
};

inline constexpr std::int64_t kMaxHeadDim = 256;

// Checks q, k and v against each other (batch, heads, tokens; head dim of q and k equal, v's
// own head dim d_v in 1..kMaxHeadDim), non-null data and
// non-negative strides whose largest offset fits in int64, and returns their sizes. Throws
// UsageError naming the tensor, axis, value and what is allowed.
AttentionShape check_qkv(const ConstTensorView& q, const ConstTensorView& k,
                         const ConstTensorView& v);

// check_qkv, plus: layout geometry nq/nk equal the tensors' and layout heads equal Hq or 1 (one
// layout for every head). Throws UsageError naming both values.
AttentionShape check_attention_inputs(const ConstTensorView& q, const ConstTensorView& k,
                                      const ConstTensorView& v, const Layout& layout);

// Checks that an output view has `shape`, non-null data and strides under which no two of its
// elements share memory (so parallel writes cannot race); `what` names it in the message.
void check_output(const TensorView& out, const std::array<std::int64_t, 4>& shape,
                  const char* what);

// For executors without a separate value head size: throws UsageError naming d and d_v when
// they differ (`who` names the executor).
void require_same_value_dim(const AttentionShape& s, const char* who);

}  // namespace spattn
