#pragma once
// The block-sparse flash backward pass: dQ, dK and dV of attention() over the same layout.
//
// With P the softmax probabilities recomputed from the forward's LSE (no nq x nk matrix is kept)
// and D_i = sum_x dO[i][x] O[i][x]:
//   P[i][j]  = exp(scale * q_i . k_j - LSE_i)       for allowed (i, j), else 0
//   dV[j]   += sum_i P[i][j] dO[i]
//   dP[i][j] = dO[i] . v_j,   dS[i][j] = P[i][j] (dP[i][j] - D_i)
//   dQ[i]   += scale * sum_j dS[i][j] k_j,   dK[j] += scale * sum_i dS[i][j] q_i
// Every kept tile of the layout (Full or Partial, any head layout, GQA groups, nq < nk) is run
// as a tile: the five products of one (query tile, key tile) pair in register-blocked kernels,
// S and dP formed together so that P and dS are computed once, the Partial tile's bits applied
// to P. A fully masked row (LSE = -inf) has P = 0, so its dQ is zero and it adds nothing to dK
// or dV. With score modifications (BackwardOptions::mod), P uses the modified logit.
//
// Deterministic without atomics: oneTBB runs (batch, K/V head, key-tile part) tasks; a part is a
// contiguous range of key tiles, the ranges cut so that they hold about equal numbers of kept
// tiles (from the layout only). A task owns its key tiles' dK and dV and accumulates them over
// their query tiles (query heads of the group in order, query tiles in increasing order); dQ is
// accumulated per part, in a buffer covering the query blocks the part's tiles reach, and the
// parts are summed in part order. The number of parts depends on the shapes only, so the result
// is bitwise the same for every thread count. Workspace: O(threads x tile) plus the parts' dQ
// buffers (the full dQ per part for dense layouts, about one dQ together for banded ones; a
// tile is zeroed when first written, never up front), plus copies of q, k, v and dO with rows
// padded to a multiple of 16 floats when d is not one or the rows are strided.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn {

struct BackwardOptions {
  // Softmax scale; default 1 / sqrt(d). Must be the forward's.
  std::optional<float> scale;
  // Worker threads (0: oneTBB's default, all cores). The result does not depend on it.
  int threads = 0;
  // Key-tile parts per (batch, K/V head); 0: automatic (enough tasks for 32 workers within the
  // dQ buffer limit). At most 64 and the key tiles. Depends on shapes only; changing it changes
  // dQ's rounding, not its value.
  std::int64_t parts = 0;
  // The forward's score modifications (score_mod.hpp). Their gradients: soft-capping multiplies
  // dS by 1 - tanh^2(s / C) (s the scaled score); ALiBi's bias is constant and passes dS
  // unchanged; a learned sink is one more logit of every row of its head with no value, so
  //   d sink_h = -sum over the head's rows (all batches) of e^(sink_h - LSE_i) D_i
  // (a fully masked row has O = 0, so D_i = 0 and it adds nothing).
  ScoreMod mod;
};

struct BackwardStats {
  std::int64_t tasks = 0;            // parallel tasks
  std::int64_t parts = 0;            // key-tile parts per (batch, K/V head)
  std::int64_t workspace_bytes = 0;  // dQ part buffers and per-task tile buffers
};

struct BackwardResult {
  Tensor dq;                   // [B, Hq, nq, d]
  Tensor dk;                   // [B, Hkv, nk, d]
  Tensor dv;                   // [B, Hkv, nk, d]
  std::vector<float> d_sinks;  // [Hq] gradient of the learned sinks (empty without sinks)
  BackwardStats stats;
};

// q [B, Hq, nq, d], k and v [B, Hkv, nk, d], o and d_o [B, Hq, nq, d], lse [B, Hq, nq, 1] (the
// forward's outputs for q, k, v, layout and scale; any strides). Throws UsageError on any shape
// or layout mismatch (the forward's messages, then o / lse / d_o named) before work starts.
BackwardResult attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                                  const ConstTensorView& v, const ConstTensorView& o,
                                  const ConstTensorView& lse, const ConstTensorView& d_o,
                                  const Layout& layout, const BackwardOptions& options = {});

// The same into caller-owned dq [B, Hq, nq, d], dk and dv [B, Hkv, nk, d] (any strides that do
// not alias), and d_sinks [Hq] (empty without learned sinks). Returns the stats.
BackwardStats attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                                 const ConstTensorView& v, const ConstTensorView& o,
                                 const ConstTensorView& lse, const ConstTensorView& d_o,
                                 const Layout& layout, const TensorView& dq, const TensorView& dk,
                                 const TensorView& dv, const BackwardOptions& options = {},
                                 std::span<float> d_sinks = {});

}  // namespace spattn
