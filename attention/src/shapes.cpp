#include "spattn/attention/shapes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

constexpr const char* kAxis[4] = {"batch (axis 0)", "heads (axis 1)", "tokens (axis 2)",
                                  "head dim (axis 3)"};

// Largest element offset of a view, or throws when it overflows int64.
std::int64_t last_offset(const ConstTensorView& t, const char* what) {
  std::int64_t off = 0;
  for (int a = 0; a < 4; ++a) {
    if (t.shape[a] < 0)
      throw UsageError(fmt::format("{} has negative size {} in {}", what, t.shape[a], kAxis[a]));
    if (t.stride[a] < 0)
      throw UsageError(fmt::format("{} has negative stride {} in {}: strides must be >= 0", what,
                                   t.stride[a], kAxis[a]));
    if (t.shape[a] == 0) return -1;
    std::int64_t step = 0;
    if (__builtin_mul_overflow(t.shape[a] - 1, t.stride[a], &step) ||
        __builtin_add_overflow(off, step, &off))
      throw UsageError(fmt::format("{} {} with strides [{}] addresses beyond 2^63 elements", what,
                                   t.shape_string(), fmt::join(t.stride, ", ")));
  }
  return off;
}

void check_data(const ConstTensorView& t, const char* what) {
  if (last_offset(t, what) >= 0 && t.data == nullptr)
    throw UsageError(fmt::format("{} {} has no data (null pointer)", what, t.shape_string()));
}

}  // namespace

AttentionShape check_qkv(const ConstTensorView& q, const ConstTensorView& k,
                         const ConstTensorView& v) {
  check_data(q, "q");
  check_data(k, "k");
  check_data(v, "v");
  for (int a = 0; a < 3; ++a)
    if (k.shape[a] != v.shape[a])
      throw UsageError(fmt::format("k {} and v {} differ in {}: they must be equal",
                                   k.shape_string(), v.shape_string(), kAxis[a]));
  AttentionShape s;
  s.batch = q.batch();
  s.q_heads = q.heads();
  s.kv_heads = k.heads();
  s.nq = q.tokens();
  s.nk = k.tokens();
  s.dim = q.dim();
  s.dim_v = v.dim();
  if (k.batch() != q.batch())
    throw UsageError(fmt::format("q {} has batch {} but k {} has batch {}: they must be equal",
                                 q.shape_string(), q.batch(), k.shape_string(), k.batch()));
  if (k.dim() != q.dim())
    throw UsageError(fmt::format("q {} has head dim {} but k {} has {}: they must be equal",
                                 q.shape_string(), q.dim(), k.shape_string(), k.dim()));
  if (s.batch < 1) throw UsageError(fmt::format("batch is {}: it must be >= 1", s.batch));
  if (s.q_heads < 1) throw UsageError(fmt::format("q has {} heads: it must have >= 1", s.q_heads));
  if (s.kv_heads < 1)
    throw UsageError(fmt::format("k and v have {} heads: they must have >= 1", s.kv_heads));
  if (s.q_heads % s.kv_heads != 0)
    throw UsageError(fmt::format(
        "q has {} heads and k/v have {}: the query heads must be a multiple of the K/V heads "
        "(GQA/MQA)",
        s.q_heads, s.kv_heads));
  if (s.nq < 1) throw UsageError(fmt::format("q has {} tokens: it must have >= 1", s.nq));
  if (s.nk < 1) throw UsageError(fmt::format("k and v have {} tokens: they must have >= 1", s.nk));
  if (s.dim < 1 || s.dim > kMaxHeadDim)
    throw UsageError(fmt::format("head dim is {}: allowed 1..{}", s.dim, kMaxHeadDim));
  if (s.dim_v < 1 || s.dim_v > kMaxHeadDim)
    throw UsageError(fmt::format("value head dim d_v (v {} axis 3) is {}: allowed 1..{}",
                                 v.shape_string(), s.dim_v, kMaxHeadDim));
  return s;
}

AttentionShape check_attention_inputs(const ConstTensorView& q, const ConstTensorView& k,
                                      const ConstTensorView& v, const Layout& layout) {
  const AttentionShape s = check_qkv(q, k, v);
  const Geometry& g = layout.geometry;
  if (g.nq != s.nq || g.nk != s.nk)
    throw UsageError(
        fmt::format("the layout is for nq = {}, nk = {} but q has {} tokens and k/v have {}", g.nq,
                    g.nk, s.nq, s.nk));
  if (g.heads != s.q_heads && g.heads != 1)
    throw UsageError(fmt::format(
        "the layout has {} heads but q has {}: a layout has one head per query head, or 1 for all",
        g.heads, s.q_heads));
  if (static_cast<std::int64_t>(layout.head_to_distinct.size()) != g.heads ||
      layout.distinct.empty())
    throw UsageError("the layout is empty (not made by build_layout)");
  return s;
}

void check_output(const TensorView& out, const std::array<std::int64_t, 4>& shape,
                  const char* what) {
  const ConstTensorView c = out;
  if (out.shape != shape)
    throw UsageError(fmt::format("{} has shape {} but must be [{}]", what, out.shape_string(),
                                 fmt::join(shape, ", ")));
  check_data(c, what);
  // No aliasing: sorted by stride, each axis must step past the whole extent of the smaller ones.
  std::array<int, 4> order{0, 1, 2, 3};
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return out.stride[a] < out.stride[b]; });
  std::int64_t extent = 1;  // elements spanned by the axes so far
  for (int a : order) {
    if (out.shape[a] <= 1) continue;
    if (out.stride[a] < extent)
      throw UsageError(fmt::format(
          "{} strides [{}] make elements share memory (axis {} stride {} < {}): outputs must not "
          "alias",
          what, fmt::join(out.stride, ", "), a, out.stride[a], extent));
    extent = out.stride[a] * (out.shape[a] - 1) + extent;
  }
}

void require_same_value_dim(const AttentionShape& s, const char* who) {
  if (s.dim_v != s.dim)
    throw UsageError(fmt::format(
        "{} needs v with the head dim of q and k ({}), but v has d_v = {}: a separate value head "
        "dim is supported by the forward executors (reference, textbook, flash)",
        who, s.dim, s.dim_v));
}

}  // namespace spattn
