// The dense double reference of the backward pass: plain loops (see reference_backward.hpp).
#include "spattn/attention/reference_backward.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../saturating.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
using detail::saturating_add;
using detail::saturating_mul;

namespace {

// The shape checks of the float path, on a double view's sizes and strides (data only tested
// for null, never read through the float pointer).
ConstTensorView shape_only(const ConstTensorViewD& t) {
  return {reinterpret_cast<const float*>(t.data), t.shape, t.stride};
}

std::size_t at(const std::array<std::int64_t, 4>& sh, std::int64_t b, std::int64_t h,
               std::int64_t n, std::int64_t x) {
  return static_cast<std::size_t>(((b * sh[1] + h) * sh[2] + n) * sh[3] + x);
}

}  // namespace

std::int64_t reference_backward_memory_bytes(const AttentionShape& s) {
  const std::int64_t scores = saturating_mul(saturating_mul(s.nq, s.nk), 2);
  const std::int64_t q_side =
      saturating_mul(saturating_mul(s.batch, s.q_heads), saturating_mul(s.nq, 2 * s.dim + 1));
  const std::int64_t kv_side =
      saturating_mul(saturating_mul(s.batch, s.kv_heads), saturating_mul(s.nk, 2 * s.dim));
  return saturating_mul(saturating_add(saturating_add(scores, q_side), kv_side), sizeof(double));
}

ReferenceGradients reference_attention_backward(
    const ConstTensorViewD& q, const ConstTensorViewD& k, const ConstTensorViewD& v,
    const ConstTensorViewD& d_o, const MaskPredicate& allowed, const ReferenceOptions& options) {
  const AttentionShape s = check_qkv(shape_only(q), shape_only(k), shape_only(v));
  require_same_value_dim(s, "the reference backward");
  const bool with_grad = d_o.data != nullptr;
  if (with_grad && d_o.shape != q.shape)
    throw UsageError(
        fmt::format("dO has shape {} but must be q's {}", d_o.shape_string(), q.shape_string()));
  if (!allowed) throw UsageError("reference_attention_backward: the mask predicate is empty");
  check_memory_budget("the reference backward", reference_backward_memory_bytes(s),
                      options.max_bytes, "ReferenceOptions::max_bytes or --memory-budget");
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(s.dim)));
  const double inf = std::numeric_limits<double>::infinity();
  const auto [B, Hq, N, D] = q.shape;
  const std::int64_t Hkv = s.kv_heads, Nk = s.nk;

  ReferenceGradients r;
  r.q_shape = q.shape;
  r.kv_shape = k.shape;
  r.o.assign(static_cast<std::size_t>(B * Hq * N * D), 0.0);
  r.lse.assign(static_cast<std::size_t>(B * Hq * N), -inf);
  if (with_grad) {
    r.dq.assign(r.o.size(), 0.0);
    r.dk.assign(static_cast<std::size_t>(B * Hkv * Nk * D), 0.0);
    r.dv.assign(r.dk.size(), 0.0);
  }
  check_score_mod(options.mod, Hq);
  const ScoreMod& mod = options.mod;
  if (with_grad) r.d_sinks.assign(mod.sinks.size(), 0.0);
  // S holds the logits z (modified scores), Z the derivative dz/ds of each (1 without
  // soft-capping; ALiBi's bias does not depend on s).
  std::vector<double> S(static_cast<std::size_t>(N * Nk)), P(S.size()), Z(S.size(), 1.0);

  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t h = 0; h < Hq; ++h) {
      const std::int64_t kh = s.kv_head(h);
      const double sink = mod.sinks.empty() ? -inf : mod.sinks[static_cast<std::size_t>(h)];
      // Forward: S, P = softmax(S) per row (with the sink's logit in the denominator), O = P V,
      // LSE.
      for (std::int64_t i = 0; i < N; ++i) {
        double m = sink;
        for (std::int64_t j = 0; j < Nk; ++j) {
          const auto ij = static_cast<std::size_t>(i * Nk + j);
          double dot = -inf;
          if (allowed(static_cast<int>(h), i, j)) {
            dot = 0;
            for (std::int64_t x = 0; x < D; ++x) dot += q.at(b, h, i, x) * k.at(b, kh, j, x);
            dot *= scale;
            if (mod.softcap) {
              const double t = std::tanh(dot / *mod.softcap);
              Z[ij] = 1 - t * t;
            }
            if (mod.changes_scores())
              dot = modified_score(mod, dot, static_cast<int>(h), i + Nk - N, j, i);
          }
          S[ij] = dot;
          m = std::max(m, dot);
        }
        double l = m == -inf ? 0.0 : std::exp(sink - m);
        for (std::int64_t j = 0; j < Nk; ++j) {
          const double e = m == -inf ? 0.0 : std::exp(S[static_cast<std::size_t>(i * Nk + j)] - m);
          P[static_cast<std::size_t>(i * Nk + j)] = e;
          l += e;
        }
        if (m == -inf) continue;  // no allowed key and no sink: P = 0, O = 0, LSE = -inf
        for (std::int64_t j = 0; j < Nk; ++j) P[static_cast<std::size_t>(i * Nk + j)] /= l;
        for (std::int64_t j = 0; j < Nk; ++j)
          for (std::int64_t x = 0; x < D; ++x)
            r.o[at(q.shape, b, h, i, x)] +=
                P[static_cast<std::size_t>(i * Nk + j)] * v.at(b, kh, j, x);
        r.lse[static_cast<std::size_t>((b * Hq + h) * N + i)] = m + std::log(l);
      }
      if (!with_grad) continue;
      // Backward, row by row: dP, dS, then the three gradients and the sink's.
      for (std::int64_t i = 0; i < N; ++i) {
        std::vector<double> dP(static_cast<std::size_t>(Nk));
        double rowdot = 0;  // sum_l P[i][l] dP[i][l] (= dO_i . O_i)
        for (std::int64_t j = 0; j < Nk; ++j) {
          double dp = 0;
          for (std::int64_t x = 0; x < D; ++x) dp += d_o.at(b, h, i, x) * v.at(b, kh, j, x);
          dP[static_cast<std::size_t>(j)] = dp;
          rowdot += P[static_cast<std::size_t>(i * Nk + j)] * dp;
        }
        // The sink is one more logit with value 0: d sink += P_sink (0 - rowdot).
        const double lse = r.lse[static_cast<std::size_t>((b * Hq + h) * N + i)];
        if (!mod.sinks.empty() && lse != -inf)
          r.d_sinks[static_cast<std::size_t>(h)] -= std::exp(sink - lse) * rowdot;
        for (std::int64_t j = 0; j < Nk; ++j) {
          const auto ij = static_cast<std::size_t>(i * Nk + j);
          const double p = P[ij];
          if (p == 0) continue;
          const double ds = p * (dP[static_cast<std::size_t>(j)] - rowdot) * Z[ij];
          for (std::int64_t x = 0; x < D; ++x) {
            r.dv[at(k.shape, b, kh, j, x)] += p * d_o.at(b, h, i, x);
            r.dq[at(q.shape, b, h, i, x)] += scale * ds * k.at(b, kh, j, x);
            r.dk[at(k.shape, b, kh, j, x)] += scale * ds * q.at(b, h, i, x);
          }
        }
      }
    }
  }
  return r;
}

ReferenceGradients reference_attention_backward(const ConstTensorViewD& q,
                                                const ConstTensorViewD& k,
                                                const ConstTensorViewD& v,
                                                const ConstTensorViewD& d_o, const Layout& layout,
                                                const ReferenceOptions& options) {
  const AttentionShape s = check_qkv(shape_only(q), shape_only(k), shape_only(v));
  require_same_value_dim(s, "the reference backward");
  if (layout.geometry.nq != s.nq || layout.geometry.nk != s.nk)
    throw UsageError(
        fmt::format("the layout is for nq = {}, nk = {} but q has {} tokens and k/v have {}",
                    layout.geometry.nq, layout.geometry.nk, s.nq, s.nk));
  if (layout.geometry.heads != s.q_heads && layout.geometry.heads != 1)
    throw UsageError(fmt::format("the layout has {} heads but q has {}: use {} or 1",
                                 layout.geometry.heads, s.q_heads, s.q_heads));
  const bool shared = layout.geometry.heads == 1;
  return reference_attention_backward(
      q, k, v, d_o,
      [&layout, shared](int h, std::int64_t i, std::int64_t j) {
        return layout.head(shared ? 0 : h).allows(i, j);
      },
      options);
}

ReferenceGradients reference_attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                                                const ConstTensorView& v,
                                                const ConstTensorView& d_o, const Layout& layout,
                                                const ReferenceOptions& options) {
  const AttentionShape s = check_attention_inputs(q, k, v, layout);
  require_same_value_dim(s, "the reference backward");
  check_memory_budget("the reference backward", reference_backward_memory_bytes(s),
                      options.max_bytes, "ReferenceOptions::max_bytes or --memory-budget");
  auto widen = [](const ConstTensorView& t, std::vector<double>& store) {
    store.resize(static_cast<std::size_t>(t.shape[0] * t.shape[1] * t.shape[2] * t.shape[3]));
    std::size_t n = 0;
    for (std::int64_t b = 0; b < t.shape[0]; ++b)
      for (std::int64_t h = 0; h < t.shape[1]; ++h)
        for (std::int64_t i = 0; i < t.shape[2]; ++i)
          for (std::int64_t x = 0; x < t.shape[3]; ++x) store[n++] = t.at(b, h, i, x);
    return view_bhnd(static_cast<const double*>(store.data()), t.shape[0], t.shape[1], t.shape[2],
                     t.shape[3]);
  };
  std::vector<double> qd, kd, vd, dod;
  const ConstTensorViewD qv = widen(q, qd), kv = widen(k, kd), vv = widen(v, vd);
  ConstTensorViewD dov{};
  if (d_o.data != nullptr) {
    if (d_o.shape != q.shape)
      throw UsageError(
          fmt::format("dO has shape {} but must be q's {}", d_o.shape_string(), q.shape_string()));
    dov = widen(d_o, dod);
  }
  return reference_attention_backward(qv, kv, vv, dov, layout, options);
}

}  // namespace spattn
