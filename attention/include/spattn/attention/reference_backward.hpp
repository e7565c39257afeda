#pragma once
// The dense double reference of the backward pass: the oracle attention_backward is tested
// against. Textbook formulas, no autograd, one loop per step, in double from double inputs:
//   S[i][j] = scale * q_i . k_j (allowed pairs), P = row softmax of S (a row with no allowed key
//   is all zero), O = P V, LSE_i = log sum_j exp(S[i][j])
//   dV = P^T dO,  dP = dO V^T,  dS[i][j] = P[i][j] (dP[i][j] - sum_l P[i][l] dP[i][l])
//   dQ = scale dS K,  dK = scale dS^T Q
// Query head h reads K/V head h / (Hq / Hkv); dK and dV of a K/V head sum over its query heads.
// Score modifications (options.mod, score_mod.hpp): S holds the logits z; with soft-capping
// dS[i][j] is multiplied by dz/ds = 1 - tanh^2(s / C); ALiBi's bias is constant. A learned sink is
// one more logit of the row with no value: it joins the softmax (LSE includes it) and
//   d sink_h = -sum over the head's rows of exp(sink_h - LSE_i) sum_l P[i][l] dP[i][l].
#include <array>
#include <cstdint>
#include <vector>

#include "spattn/attention/reference.hpp"
#include "spattn/attention/tensor.hpp"

namespace spattn {

using ConstTensorViewD = BasicTensorView<const double>;

// Forward and backward of the reference in double, C order.
struct ReferenceGradients {
  std::array<std::int64_t, 4> q_shape{};   // B, Hq, nq, d
  std::array<std::int64_t, 4> kv_shape{};  // B, Hkv, nk, d
  std::vector<double> o;                   // [B, Hq, nq, d]
  std::vector<double> lse;                 // [B, Hq, nq]; -inf for a fully masked row
  std::vector<double> dq;                  // [B, Hq, nq, d] (empty without d_o)
  std::vector<double> dk, dv;              // [B, Hkv, nk, d] (empty without d_o)
  std::vector<double> d_sinks;             // [Hq] with learned sinks and d_o, else empty
};

// Bytes held at once: the double nq x nk S and P of one (batch, head) plus the outputs.
std::int64_t reference_backward_memory_bytes(const AttentionShape& s);

// q [B, Hq, nq, d], k and v [B, Hkv, nk, d], d_o [B, Hq, nq, d] or a view with data == nullptr
// (forward only). Throws UsageError on bad shapes (the forward reference's messages) and
// BudgetError beyond options.max_bytes, before any work. options.scale as the forward's.
ReferenceGradients reference_attention_backward(const ConstTensorViewD& q,
                                                const ConstTensorViewD& k,
                                                const ConstTensorViewD& v,
                                                const ConstTensorViewD& d_o,
                                                const MaskPredicate& allowed,
                                                const ReferenceOptions& options = {});

// The mask is the layout (head h's, or head 0's for a one-head layout).
ReferenceGradients reference_attention_backward(const ConstTensorViewD& q,
                                                const ConstTensorViewD& k,
                                                const ConstTensorViewD& v,
                                                const ConstTensorViewD& d_o, const Layout& layout,
                                                const ReferenceOptions& options = {});

// Float inputs, widened to double.
ReferenceGradients reference_attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                                                const ConstTensorView& v,
                                                const ConstTensorView& d_o, const Layout& layout,
                                                const ReferenceOptions& options = {});

}  // namespace spattn
