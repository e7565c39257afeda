#pragma once
// The dense reference executor: the oracle every test compares the fast paths to.
//
// For each (batch, query head) it materializes the masked score matrix in double, takes the row
// softmax and multiplies by V, one loop per step, nothing clever. Read it to see what the flash
// executor must equal:
//   S[i][j] = f(scale * sum_x q[i][x] k[j][x])         for allowed (i, j), else -inf
//   m_i = max_j S[i][j],  l_i = sum_j exp(S[i][j] - m_i) (+ exp(sink_h - m_i) with sinks)
//   O[i][x] = sum_j exp(S[i][j] - m_i) v[j][x] / l_i,   LSE_i = m_i + log(l_i)
// f is the identity or options.mod's soft-capping and ALiBi (score_mod.hpp). A row with no
// allowed key has O = 0 and LSE = -inf (sink_h with sinks). Query head h reads K/V head
// h / (Hq / Hkv).
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/pattern.hpp"

namespace spattn {

struct ReferenceOptions {
  // Softmax scale; default 1 / sqrt(d) (computed in double).
  std::optional<double> scale;
  // ALiBi, soft-capping and learned sinks (score_mod.hpp), evaluated in double.
  ScoreMod mod;
  // Refuse calls whose estimate (reference_memory_bytes) exceeds this many bytes with
  // BudgetError. Default: default_memory_budget() when the options are made.
  std::int64_t max_bytes = default_memory_budget();
};

// Output of the reference executor, in double, C order.
struct ReferenceResult {
  std::array<std::int64_t, 4> shape{};  // B, Hq, nq, d
  std::vector<double> o;                // [B, Hq, nq, d]
  std::vector<double> lse;              // [B, Hq, nq]; -inf for a fully masked row

  double o_at(std::int64_t b, std::int64_t h, std::int64_t i, std::int64_t x) const {
    return o[static_cast<std::size_t>(((b * shape[1] + h) * shape[2] + i) * shape[3] + x)];
  }
  double lse_at(std::int64_t b, std::int64_t h, std::int64_t i) const {
    return lse[static_cast<std::size_t>((b * shape[1] + h) * shape[2] + i)];
  }
};

// Whether query i may attend to key j on query head `head` (0 <= head < Hq).
using MaskPredicate = std::function<bool(int head, std::int64_t i, std::int64_t j)>;

// Bytes the reference executor holds at once: the double nq x nk score matrix of one (batch,
// head) (it runs them one after another) plus the double outputs, B x Hq x nq x (d + 1) values.
// Saturates at INT64_MAX instead of overflowing.
std::int64_t reference_memory_bytes(const AttentionShape& s);

// q [B, Hq, nq, d], k and v [B, Hkv, nk, d] (any strides). The mask is `allowed`. Throws
// UsageError on bad shapes and BudgetError (with the estimate and the budget) when
// reference_memory_bytes exceeds options.max_bytes, both before any work.
ReferenceResult reference_attention(const ConstTensorView& q, const ConstTensorView& k,
                                    const ConstTensorView& v, const MaskPredicate& allowed,
                                    const ReferenceOptions& options = {});

// The mask is the layout: BlockLayout::allows of head h (or of head 0 for a one-head layout).
ReferenceResult reference_attention(const ConstTensorView& q, const ConstTensorView& k,
                                    const ConstTensorView& v, const Layout& layout,
                                    const ReferenceOptions& options = {});

// The mask is the pattern's ground truth Pattern::allows at geometry g (independent of the layout
// builder, so comparing against it checks the layout too). g.nq and g.nk must equal the tensors'
// and g.heads must be Hq or 1 (then head 0 is asked for every query head).
ReferenceResult reference_attention(const ConstTensorView& q, const ConstTensorView& k,
                                    const ConstTensorView& v, const Pattern& pattern,
                                    const Geometry& g, const ReferenceOptions& options = {});

// How far a float32 result is from the reference.
struct ReferenceError {
  double max_abs = 0;  // max over elements of |o - ref|
  // Max over (batch, head) of max |o - ref| / max(max |ref|, 1e-30), the maxima over that head's
  // nq x d outputs: a normwise relative error per head. (Elementwise relative error is not used
  // because an output that is a near-cancelling sum of V rows is tiny next to its own rounding.)
  double max_rel = 0;
  // Max over rows of |lse - ref| / max(1, |ref|); a -inf on one side only counts as +inf.
  double lse_max = 0;
  bool finite = true;  // o and lse hold no NaN (and no +-inf other than -inf LSE of masked rows)
};

// Compares o [B, Hq, nq, d] and lse [B, Hq, nq, 1] to `ref` (shapes must match: UsageError).
ReferenceError compare_to_reference(const ConstTensorView& o, const ConstTensorView& lse,
                                    const ReferenceResult& ref);

}  // namespace spattn
