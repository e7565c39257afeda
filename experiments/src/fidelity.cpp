// Fidelity against dense attention (see fidelity.hpp).
#include "spattn/experiments/fidelity.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "spattn/attention/attention.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::experiments {
namespace {

void require_shape(const ConstTensorView& t, const std::array<std::int64_t, 4>& shape,
                   const char* what) {
  if (t.shape != shape)
    throw UsageError(fmt::format("{} has shape {} but [{}, {}, {}, {}] is needed", what,
                                 t.shape_string(), shape[0], shape[1], shape[2], shape[3]));
}

}  // namespace

Fidelity compare_to_dense(const ConstTensorView& o_sparse, const ConstTensorView& lse_sparse,
                          const ConstTensorView& o_dense, const ConstTensorView& lse_dense) {
  const auto& s = o_dense.shape;
  require_shape(o_sparse, s, "the sparse output");
  require_shape(lse_sparse, {s[0], s[1], s[2], 1}, "the sparse LSE");
  require_shape(lse_dense, {s[0], s[1], s[2], 1}, "the dense LSE");
  double diff2 = 0, ref2 = 0, recall_sum = 0, recall_min = std::numeric_limits<double>::infinity();
  for (std::int64_t b = 0; b < s[0]; ++b)
    for (std::int64_t h = 0; h < s[1]; ++h)
      for (std::int64_t i = 0; i < s[2]; ++i) {
        for (std::int64_t x = 0; x < s[3]; ++x) {
          const double ref = o_dense.at(b, h, i, x);
          const double e = static_cast<double>(o_sparse.at(b, h, i, x)) - ref;
          diff2 += e * e;
          ref2 += ref * ref;
        }
        const double ls = lse_sparse.at(b, h, i, 0), ld = lse_dense.at(b, h, i, 0);
        // -inf - finite = -inf, exp(-inf) = 0: a fully masked row recalls nothing.
        const double r = std::min(1.0, std::exp(ls - ld));
        recall_sum += r;
        recall_min = std::min(recall_min, r);
      }
  Fidelity f;
  f.rows = s[0] * s[1] * s[2];
  f.rel_l2_error = ref2 > 0 ? std::sqrt(diff2 / ref2) : (diff2 > 0 ? 1.0 : 0.0);
  f.recall_mean = f.rows > 0 ? recall_sum / static_cast<double>(f.rows) : 1.0;
  f.recall_min = f.rows > 0 ? recall_min : 1.0;
  return f;
}

void baseline_attention(const ConstTensorView& q, const ConstTensorView& k,
                        const ConstTensorView& v, const std::string& baseline_spec,
                        const Geometry& g, int threads, std::int64_t max_layout_bytes,
                        const TensorView& o, const TensorView& lse) {
  baseline_attention(q, k, v, baseline_spec, g, threads, max_layout_bytes, o, lse, {}, {});
}

void baseline_attention(const ConstTensorView& q, const ConstTensorView& k,
                        const ConstTensorView& v, const std::string& baseline_spec,
                        const Geometry& g, int threads, std::int64_t max_layout_bytes,
                        const TensorView& o, const TensorView& lse, const ScoreMod& mod,
                        std::optional<float> scale) {
  BuildOptions bo;
  bo.threads = threads;
  bo.max_layout_bytes = max_layout_bytes;
  const Layout dense = build_layout(*parse_spec(baseline_spec), g, bo);
  AttentionOptions ao;
  ao.threads = threads;
  ao.mod = mod;
  ao.scale = scale;
  attention(q, k, v, dense, o, lse, ao);
}

std::int64_t dense_layout_bytes(const Geometry& g) {
  const double tiles = static_cast<double>(g.q_blocks()) * static_cast<double>(g.k_blocks());
  const double bytes = 8.0 * static_cast<double>(g.q_blocks() + 1) + 8.0 * tiles;
  return bytes >= 9.2e18 ? std::numeric_limits<std::int64_t>::max()
                         : static_cast<std::int64_t>(bytes);
}

double relative_l2_error(const ConstTensorView& o, const ReferenceResult& ref) {
  require_shape(o, ref.shape, "the output");
  double diff2 = 0, ref2 = 0;
  const auto& s = ref.shape;
  for (std::int64_t b = 0; b < s[0]; ++b)
    for (std::int64_t h = 0; h < s[1]; ++h)
      for (std::int64_t i = 0; i < s[2]; ++i)
        for (std::int64_t x = 0; x < s[3]; ++x) {
          const double r = ref.o_at(b, h, i, x);
          const double e = static_cast<double>(o.at(b, h, i, x)) - r;
          diff2 += e * e;
          ref2 += r * r;
        }
  return ref2 > 0 ? std::sqrt(diff2 / ref2) : (diff2 > 0 ? 1.0 : 0.0);
}

}  // namespace spattn::experiments
