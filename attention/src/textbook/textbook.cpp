// The textbook materialized baseline (see textbook.hpp): two Eigen GEMMs around a dense masked
// row softmax, one (batch, head) per oneTBB task.
#include "spattn/attention/textbook.hpp"

#include <fmt/format.h>
#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>

// gcc 12 reports false -Wmaybe-uninitialized warnings inside Eigen's AVX-512 code (GEMM packing
// and exp use the intrinsic _mm512_undefined_ps); they are off for this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "../saturating.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

using detail::saturating_add;
using detail::saturating_mul;

// One task's buffers, reused by every task its thread runs (allocated once per thread).
struct Workspace {
  RowMatrix q, k, v, s, o;
  Eigen::VectorXf sums;
};

// Copies rows [0, n) of head (b, h) of `t` into the n x d matrix `m`.
void copy_head(const ConstTensorView& t, std::int64_t b, std::int64_t h, RowMatrix& m) {
  const std::int64_t n = t.tokens(), d = t.dim();
  m.resize(n, d);
  for (std::int64_t i = 0; i < n; ++i) {
    const float* src = t.row(b, h, i);
    float* dst = m.data() + i * d;
    if (t.rows_contiguous()) {
      std::memcpy(dst, src, static_cast<std::size_t>(d) * sizeof(float));
    } else {
      for (std::int64_t x = 0; x < d; ++x) dst[x] = src[x * t.stride[3]];
    }
  }
}

// Sets every score the layout does not keep to -inf: the gaps between a row's kept tiles, and
// the cleared bits of its Partial tiles. Full tiles are left as they are.
void apply_layout(const BlockLayout& bl, RowMatrix& s) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const std::int64_t nq = s.rows(), nk = s.cols();
  const auto row_ptr = bl.row_ptr();
  const auto cols = bl.col_index();
  for (std::int64_t i = 0; i < nq; ++i) {
    const std::int64_t r = i / bl.block_q(), rr = i % bl.block_q();
    float* row = s.data() + i * nk;
    std::int64_t next = 0;  // first key not yet handled
    for (std::int64_t t = row_ptr[r]; t < row_ptr[r + 1]; ++t) {
      const std::int64_t k0 = std::int64_t{cols[t]} * bl.block_k();
      const std::int64_t k1 = std::min(k0 + bl.block_k(), nk);
      std::fill(row + next, row + k0, neg_inf);
      if (bl.tile_class(t) == TileClass::Partial) {
        const std::uint64_t* bits = bl.mask(bl.mask_index()[t]) + rr * bl.mask_row_words();
        for (std::int64_t c = 0; c < k1 - k0; ++c)
          if (((bits[c >> 6] >> (c & 63)) & 1u) == 0) row[k0 + c] = neg_inf;
      }
      next = k1;
    }
    std::fill(row + next, row + nk, neg_inf);
  }
}

// Replaces each row of `s` by exp(row - max) and stores its sum in sums[i] and the row's LSE in
// lse (b, h, i); a row with no allowed key becomes zeros with sum 0 and LSE -inf. The division by
// the sum is left for after the P V product (nq x d divisions instead of nq x nk).
// With a sink logit (else -inf), the sum gains exp(sink - max) and a masked row's LSE is the sink.
void softmax_rows(RowMatrix& s, Eigen::VectorXf& sums, const TensorView& lse, std::int64_t b,
                  std::int64_t h, float sink) {
  const float neg_inf = -std::numeric_limits<float>::infinity();
  sums.resize(s.rows());
  for (std::int64_t i = 0; i < s.rows(); ++i) {
    auto row = s.row(i);
    float m = row.maxCoeff();
    if (m == neg_inf) {
      row.setZero();
      sums[i] = 0;
      lse.at(b, h, i, 0) = sink;
      continue;
    }
    m = std::max(m, sink);
    row = (row.array() - m).exp();
    sums[i] = row.sum() + (sink == neg_inf ? 0.0f : std::exp(sink - m));
    lse.at(b, h, i, 0) = m + std::log(sums[i]);
  }
}

// Soft-capping, then ALiBi, then the bias on every score of head h (score_mod.hpp), before the
// mask.
void modify_scores(const ScoreMod& mod, RowMatrix& s, std::int64_t h, std::int64_t shift) {
  if (mod.softcap) {
    const float c = *mod.softcap;
    s = (s.array() / c).tanh() * c;
  }
  if (!mod.alibi_slopes.empty()) {
    const float slope = mod.alibi_slopes[static_cast<std::size_t>(h)];
    for (std::int64_t i = 0; i < s.rows(); ++i) {
      const std::int64_t p = i + shift;
      float* row = s.data() + i * s.cols();
      for (std::int64_t j = 0; j < s.cols(); ++j)
        row[j] -= slope * static_cast<float>(p > j ? p - j : j - p);
    }
  }
  if (mod.bias.on())
    for (std::int64_t i = 0; i < s.rows(); ++i) {
      float* row = s.data() + i * s.cols();
      for (std::int64_t j = 0; j < s.cols(); ++j) row[j] += mod.bias.at(h, i, j);
    }
}

}  // namespace

std::int64_t textbook_workspace_bytes(std::int64_t nq, std::int64_t nk, std::int64_t dim,
                                      std::int64_t slots) {
  // Per task: S [nq, nk], Q and O [nq, d], K and V [nk, d].
  const std::int64_t per_task = saturating_add(
      saturating_mul(nq, nk),
      saturating_mul(2, saturating_add(saturating_mul(nq, dim), saturating_mul(nk, dim))));
  return saturating_mul(saturating_mul(per_task, slots), sizeof(float));
}

AttentionResult textbook_attention(const ConstTensorView& q, const ConstTensorView& k,
                                   const ConstTensorView& v, const Layout& layout,
                                   const TextbookOptions& options) {
  const AttentionShape s = check_attention_inputs(q, k, v, layout);
  if (options.threads < 0)
    throw UsageError(fmt::format("threads is {}: it must be >= 0 (0: all cores)", options.threads));
  const std::int64_t tasks = s.batch * s.q_heads;
  const int threads = options.threads > 0 ? options.threads : tbb::info::default_concurrency();
  const std::int64_t slots = std::min<std::int64_t>(threads, tasks);
  const std::int64_t workspace =
      textbook_workspace_bytes(s.nq, s.nk, std::max(s.dim, s.dim_v), slots);
  const std::int64_t outputs =
      saturating_mul(saturating_mul(tasks, saturating_mul(s.nq, s.dim_v + 1)), sizeof(float));
  check_memory_budget("the textbook attention baseline", saturating_add(workspace, outputs),
                      options.max_bytes, "TextbookOptions::max_bytes or --memory-budget");
  const float scale = options.scale.value_or(1.0f / std::sqrt(static_cast<float>(s.dim)));
  if (options.scale && !std::isfinite(*options.scale))
    throw UsageError(fmt::format("scale = {}: it must be finite", *options.scale));
  check_score_mod(options.mod, s.q_heads, s.nq, s.nk);

  AttentionResult result;
  result.o = Tensor(s.batch, s.q_heads, s.nq, s.dim_v);
  result.lse = Tensor(s.batch, s.q_heads, s.nq, 1);
  result.stats.workspace_bytes = workspace;
  result.stats.tasks = tasks;
  const TensorView o = result.o.view();
  const TensorView lse = result.lse.view();
  const bool shared = layout.geometry.heads == 1;

  tbb::enumerable_thread_specific<Workspace> workspaces;
  auto run_head = [&](std::int64_t task) {
    const std::int64_t b = task / s.q_heads, h = task % s.q_heads, kh = s.kv_head(h);
    Workspace& w = workspaces.local();
    copy_head(q, b, h, w.q);
    copy_head(k, b, kh, w.k);
    copy_head(v, b, kh, w.v);
    w.q *= scale;
    w.s.resize(s.nq, s.nk);
    w.s.noalias() = w.q * w.k.transpose();
    if (options.mod.changes_scores()) modify_scores(options.mod, w.s, h, s.nk - s.nq);
    apply_layout(layout.head(shared ? 0 : static_cast<int>(h)), w.s);
    Eigen::VectorXf& sums = w.sums;
    const float sink = options.mod.sinks.empty() ? -std::numeric_limits<float>::infinity()
                                                 : options.mod.sinks[static_cast<std::size_t>(h)];
    softmax_rows(w.s, sums, lse, b, h, sink);
    w.o.resize(s.nq, s.dim_v);
    w.o.noalias() = w.s * w.v;
    for (std::int64_t i = 0; i < s.nq; ++i) {
      const float inv = sums[i] > 0 ? 1.0f / sums[i] : 0.0f;
      float* dst = o.row(b, h, i);
      for (std::int64_t x = 0; x < s.dim_v; ++x) dst[x] = w.o(i, x) * inv;
    }
  };

  tbb::task_arena arena(static_cast<int>(slots));
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, tasks, 1),
                      [&](const tbb::blocked_range<std::int64_t>& range) {
                        for (std::int64_t t = range.begin(); t < range.end(); ++t) run_head(t);
                      });
  });
  return result;
}

}  // namespace spattn
