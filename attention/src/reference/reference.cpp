// The dense reference executor: deliberately plain loops in double (see reference.hpp).
#include "spattn/attention/reference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "../saturating.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
using detail::saturating_add;
using detail::saturating_mul;

std::int64_t reference_memory_bytes(const AttentionShape& s) {
  const std::int64_t scores = saturating_mul(s.nq, s.nk);
  const std::int64_t outputs =
      saturating_mul(saturating_mul(s.batch, s.q_heads), saturating_mul(s.nq, s.value_dim() + 1));
  return saturating_mul(saturating_add(scores, outputs), sizeof(double));
}

ReferenceResult reference_attention(const ConstTensorView& q, const ConstTensorView& k,
                                    const ConstTensorView& v, const MaskPredicate& allowed,
                                    const ReferenceOptions& options) {
  const AttentionShape s = check_qkv(q, k, v);
  if (!allowed) throw UsageError("reference_attention: the mask predicate is empty");
  check_memory_budget("the reference executor", reference_memory_bytes(s), options.max_bytes,
                      "ReferenceOptions::max_bytes or --memory-budget");
  check_score_mod(options.mod, s.q_heads, s.nq, s.nk);
  const ScoreMod& mod = options.mod;
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(s.dim)));
  const double inf = std::numeric_limits<double>::infinity();

  ReferenceResult r;
  r.shape = {s.batch, s.q_heads, s.nq, s.dim_v};
  r.o.assign(static_cast<std::size_t>(s.batch * s.q_heads * s.nq * s.dim_v), 0.0);
  r.lse.assign(static_cast<std::size_t>(s.batch * s.q_heads * s.nq), -inf);
  std::vector<double> scores(static_cast<std::size_t>(s.nq * s.nk));

  for (std::int64_t b = 0; b < s.batch; ++b) {
    for (std::int64_t h = 0; h < s.q_heads; ++h) {
      const std::int64_t kh = s.kv_head(h);
      // 1. The masked score matrix.
      for (std::int64_t i = 0; i < s.nq; ++i) {
        for (std::int64_t j = 0; j < s.nk; ++j) {
          double dot = 0;
          if (allowed(static_cast<int>(h), i, j)) {
            for (std::int64_t x = 0; x < s.dim; ++x)
              dot += static_cast<double>(q.at(b, h, i, x)) * static_cast<double>(k.at(b, kh, j, x));
            dot *= scale;
            if (mod.changes_scores())
              dot = modified_score(mod, dot, static_cast<int>(h), i + s.nk - s.nq, j, i);
          } else {
            dot = -inf;
          }
          scores[static_cast<std::size_t>(i * s.nk + j)] = dot;
        }
      }
      // 2. Row softmax and P V.
      for (std::int64_t i = 0; i < s.nq; ++i) {
        const double* row = &scores[static_cast<std::size_t>(i * s.nk)];
        const double sink = mod.sinks.empty() ? -inf : mod.sinks[static_cast<std::size_t>(h)];
        double m = -inf;
        for (std::int64_t j = 0; j < s.nk; ++j) m = std::max(m, row[j]);
        if (m == -inf) {  // no allowed key: O stays 0, LSE = the sink (-inf without one)
          r.lse[static_cast<std::size_t>((b * s.q_heads + h) * s.nq + i)] = sink;
          continue;
        }
        m = std::max(m, sink);
        double l = sink == -inf ? 0.0 : std::exp(sink - m);
        for (std::int64_t j = 0; j < s.nk; ++j) l += std::exp(row[j] - m);
        double* o = &r.o[static_cast<std::size_t>(((b * s.q_heads + h) * s.nq + i) * s.dim_v)];
        for (std::int64_t j = 0; j < s.nk; ++j) {
          if (row[j] == -inf) continue;
          const double p = std::exp(row[j] - m) / l;
          for (std::int64_t x = 0; x < s.dim_v; ++x)
            o[x] += p * static_cast<double>(v.at(b, kh, j, x));
        }
        r.lse[static_cast<std::size_t>((b * s.q_heads + h) * s.nq + i)] = m + std::log(l);
      }
    }
  }
  return r;
}

ReferenceResult reference_attention(const ConstTensorView& q, const ConstTensorView& k,
                                    const ConstTensorView& v, const Layout& layout,
                                    const ReferenceOptions& options) {
  check_attention_inputs(q, k, v, layout);
  const bool shared = layout.geometry.heads == 1;
  return reference_attention(
      q, k, v,
      [&layout, shared](int h, std::int64_t i, std::int64_t j) {
        return layout.head(shared ? 0 : h).allows(i, j);
      },
      options);
}

ReferenceResult reference_attention(const ConstTensorView& q, const ConstTensorView& k,
                                    const ConstTensorView& v, const Pattern& pattern,
                                    const Geometry& g, const ReferenceOptions& options) {
  const AttentionShape s = check_qkv(q, k, v);
  g.validate();
  if (g.nq != s.nq || g.nk != s.nk)
    throw UsageError(
        fmt::format("the geometry is for nq = {}, nk = {} but q has {} tokens and k/v "
                    "have {}",
                    g.nq, g.nk, s.nq, s.nk));
  if (g.heads != s.q_heads && g.heads != 1)
    throw UsageError(fmt::format("the geometry has {} heads but q has {}: use {} or 1", g.heads,
                                 s.q_heads, s.q_heads));
  pattern.check(g);
  const bool shared = g.heads == 1;
  return reference_attention(
      q, k, v,
      [&pattern, &g, shared](int h, std::int64_t i, std::int64_t j) {
        return pattern.allows(g, shared ? 0 : h, i, j);
      },
      options);
}

ReferenceError compare_to_reference(const ConstTensorView& o, const ConstTensorView& lse,
                                    const ReferenceResult& ref) {
  const auto [B, H, N, D] = ref.shape;
  if (o.shape != ref.shape)
    throw UsageError(fmt::format("o has shape {} but the reference has [{}]", o.shape_string(),
                                 fmt::join(ref.shape, ", ")));
  if (lse.shape != std::array<std::int64_t, 4>{B, H, N, 1})
    throw UsageError(
        fmt::format("lse has shape {} but must be [{}, {}, {}, 1]", lse.shape_string(), B, H, N));
  const double inf = std::numeric_limits<double>::infinity();
  ReferenceError e;
  for (std::int64_t b = 0; b < B; ++b) {
    for (std::int64_t h = 0; h < H; ++h) {
      double head_err = 0, head_max = 0;
      for (std::int64_t i = 0; i < N; ++i) {
        for (std::int64_t x = 0; x < D; ++x) {
          const double got = o.at(b, h, i, x), want = ref.o_at(b, h, i, x);
          if (!std::isfinite(got)) e.finite = false;
          const double err = std::isfinite(got) ? std::abs(got - want) : inf;
          head_err = std::max(head_err, err);
          head_max = std::max(head_max, std::abs(want));
        }
        const double got = lse.at(b, h, i, 0), want = ref.lse_at(b, h, i);
        if (std::isnan(got) || got == inf) e.finite = false;
        double err = 0;
        if (got == -inf || want == -inf)
          err = got == want ? 0.0 : inf;
        else
          err = std::isnan(got) ? inf : std::abs(got - want) / std::max(1.0, std::abs(want));
        e.lse_max = std::max(e.lse_max, err);
      }
      e.max_abs = std::max(e.max_abs, head_err);
      e.max_rel = std::max(e.max_rel, head_err / std::max(head_max, 1e-30));
    }
  }
  return e;
}

}  // namespace spattn
