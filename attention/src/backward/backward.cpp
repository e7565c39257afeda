// The block-sparse flash backward pass (see backward.hpp): per (batch, K/V head, key-tile part)
// task, key tiles in order, each accumulating dK and dV over the query tiles that keep it.
#include "spattn/attention/backward.hpp"

#include <fmt/format.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "spattn/attention/shapes.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRows = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;
using Rows = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

constexpr std::int64_t kTargetTasks = 32;
constexpr std::int64_t kRunTiles = 8;  // query tiles per product block
constexpr std::int64_t kMaxPartBytes = std::int64_t{512} << 20;

// The kept tiles of one head layout by key-block column: for column c, entries
// [col_ptr[c], col_ptr[c + 1]) give the query block and the kept tile's number (into col_index),
// query blocks increasing. O(kept tiles).
struct Columns {
  std::vector<std::int64_t> col_ptr;
  std::vector<std::int32_t> row;
  std::vector<std::int64_t> tile;
};

Columns transpose(const BlockLayout& L) {
  Columns c;
  const auto row_ptr = L.row_ptr();
  const auto col_index = L.col_index();
  c.col_ptr.assign(static_cast<std::size_t>(L.k_blocks() + 1), 0);
  for (const std::int32_t col : col_index) ++c.col_ptr[static_cast<std::size_t>(col) + 1];
  for (std::size_t i = 1; i < c.col_ptr.size(); ++i) c.col_ptr[i] += c.col_ptr[i - 1];
  c.row.resize(col_index.size());
  c.tile.resize(col_index.size());
  std::vector<std::int64_t> next(c.col_ptr.begin(), c.col_ptr.end() - 1);
  for (std::int64_t r = 0; r < L.q_blocks(); ++r)
    for (std::int64_t t = row_ptr[r]; t < row_ptr[r + 1]; ++t) {
      const std::int64_t at = next[static_cast<std::size_t>(col_index[t])]++;
      c.row[static_cast<std::size_t>(at)] = static_cast<std::int32_t>(r);
      c.tile[static_cast<std::size_t>(at)] = t;
    }
  return c;
}

void check_like(const ConstTensorView& t, const std::array<std::int64_t, 4>& shape,
                const char* what) {
  if (t.shape != shape)
    throw UsageError(fmt::format("{} has shape {} but must be [{}] (from q and the layout)", what,
                                 t.shape_string(), fmt::join(shape, ", ")));
  if (t.data == nullptr) throw UsageError(fmt::format("{} has no data (null pointer)", what));
  for (int a = 0; a < 4; ++a)
    if (t.stride[a] < 0)
      throw UsageError(fmt::format("{} has negative stride {} in axis {}", what, t.stride[a], a));
}

// A view whose rows are contiguous: `t` itself, or a C-order copy held in `store`.
ConstTensorView contiguous_rows(const ConstTensorView& t, Tensor& store) {
  if (t.rows_contiguous() || t.dim() == 1) return t;
  store = Tensor(t.shape[0], t.shape[1], t.shape[2], t.shape[3]);
  const TensorView out = store.view();
  for (std::int64_t b = 0; b < t.shape[0]; ++b)
    for (std::int64_t h = 0; h < t.shape[1]; ++h)
      for (std::int64_t n = 0; n < t.shape[2]; ++n)
        for (std::int64_t x = 0; x < t.shape[3]; ++x) out.at(b, h, n, x) = t.at(b, h, n, x);
  return store.view();
}

ConstRows rows_of(const ConstTensorView& t, std::int64_t b, std::int64_t h, std::int64_t n0,
                  std::int64_t rows) {
  return ConstRows(t.row(b, h, n0), rows, t.dim(),
                   Eigen::OuterStride<>(rows > 1 ? t.stride[2] : t.dim()));
}

struct TileBuffers {
  RowMat s, p, dp, dk, dv;
};

class Backward {
 public:
  Backward(const AttentionShape& s, const ConstTensorView& q, const ConstTensorView& k,
           const ConstTensorView& v, const ConstTensorView& lse, const ConstTensorView& d_o,
           const Layout& layout, float scale, std::int64_t parts)
      : s_(s),
        q_(q),
        k_(k),
        v_(v),
        lse_(lse),
        do_(d_o),
        layout_(layout),
        scale_(scale),
        parts_(parts) {
    columns_.reserve(layout.distinct.size());
    for (const auto& d : layout.distinct) columns_.push_back(transpose(*d));
  }

  // delta[(b * Hq + h) * nq + i] = sum_x dO[i][x] O[i][x] (accumulated in double).
  void set_delta(const ConstTensorView& o) {
    delta_.assign(static_cast<std::size_t>(s_.batch * s_.q_heads * s_.nq), 0.0f);
    tbb::parallel_for(std::int64_t{0}, s_.batch * s_.q_heads, [&](std::int64_t bh) {
      const std::int64_t b = bh / s_.q_heads, h = bh % s_.q_heads;
      for (std::int64_t i = 0; i < s_.nq; ++i) {
        double acc = 0;
        for (std::int64_t x = 0; x < s_.dim; ++x)
          acc += static_cast<double>(do_.at(b, h, i, x)) * static_cast<double>(o.at(b, h, i, x));
        delta_[static_cast<std::size_t>(bh * s_.nq + i)] = static_cast<float>(acc);
      }
    });
  }

  // Task (b, kv head, part): key tiles c with c mod parts == part, in order. dQ goes to
  // dq_part ([B, Hq, nq, d] C order, this part's buffer), dK and dV to their outputs.
  void run(std::int64_t b, std::int64_t kh, std::int64_t part, float* dq_part, const TensorView& dk,
           const TensorView& dv, TileBuffers& tb) const {
    const BlockLayout& L0 = layout_.head(0);
    const std::int64_t kb = L0.k_blocks(), bk = L0.block_k(), bq = L0.block_q();
    const std::int64_t d = s_.dim;
    const bool shared = layout_.geometry.heads == 1;
    // Columns part, part + parts, ...: interleaved, so that layouts whose columns shrink along
    // the keys (causal) give every part a similar share.
    for (std::int64_t c = part; c < kb; c += parts_) {
      const std::int64_t k0 = c * bk, cols = std::min(bk, s_.nk - k0);
      const ConstRows K = rows_of(k_, b, kh, k0, cols), V = rows_of(v_, b, kh, k0, cols);
      tb.dk.setZero(cols, d);
      tb.dv.setZero(cols, d);
      for (std::int64_t g = 0; g < s_.group(); ++g) {
        const std::int64_t h = kh * s_.group() + g;
        const int di = layout_.head_to_distinct[shared ? 0 : h];
        const BlockLayout& L = *layout_.distinct[static_cast<std::size_t>(di)];
        const Columns& C = columns_[static_cast<std::size_t>(di)];
        // Runs of consecutive query tiles (at most kRunTiles) go through the products as one
        // taller block: fewer, larger products, each K and V tile packed once per run.
        for (std::int64_t e = C.col_ptr[c]; e < C.col_ptr[c + 1];) {
          std::int64_t e1 = e + 1;
          while (e1 < C.col_ptr[c + 1] && C.row[e1] == C.row[e1 - 1] + 1 && e1 - e < kRunTiles)
            ++e1;
          const std::int64_t q0 = C.row[e] * bq;
          const std::int64_t rows = std::min((C.row[e1 - 1] + 1) * bq, s_.nq) - q0;
          tile_run(b, h, q0, rows, K, V, cols, L, C, e, e1,
                   dq_part + ((b * s_.q_heads + h) * s_.nq + q0) * d, tb);
          e = e1;
        }
      }
      tb.dk *= scale_;
      for (std::int64_t j = 0; j < cols; ++j)
        for (std::int64_t x = 0; x < d; ++x) {
          dk.at(b, kh, k0 + j, x) = tb.dk(j, x);
          dv.at(b, kh, k0 + j, x) = tb.dv(j, x);
        }
    }
  }

 private:
  // Kept tiles e0..e1 of column C (consecutive query tiles): `rows` query rows from q0 of head
  // h against the key tile K, V (cols keys); each Partial tile's bits applied to its rows of P.
  void tile_run(std::int64_t b, std::int64_t h, std::int64_t q0, std::int64_t rows,
                const ConstRows& K, const ConstRows& V, std::int64_t cols, const BlockLayout& L,
                const Columns& C, std::int64_t e0, std::int64_t e1, float* dq,
                TileBuffers& tb) const {
    const std::int64_t d = s_.dim;
    const ConstRows Q = rows_of(q_, b, h, q0, rows), dO = rows_of(do_, b, h, q0, rows);
    tb.s.resize(rows, cols);
    tb.s.noalias() = Q * K.transpose();
    tb.p.resize(rows, cols);
    const float* delta = &delta_[static_cast<std::size_t>((b * s_.q_heads + h) * s_.nq + q0)];
    const float inf = std::numeric_limits<float>::infinity();
    for (std::int64_t a = 0; a < rows; ++a) {
      float lse = lse_.at(b, h, q0 + a, 0);
      if (lse == -inf) lse = inf;  // a fully masked row: P = exp(s - inf) = 0
      tb.p.row(a) = (tb.s.row(a).array() * scale_ - lse).exp();
    }
    for (std::int64_t e = e0; e < e1; ++e) {
      const std::int32_t m = L.mask_index()[C.tile[e]];
      if (m < 0) continue;
      const std::int64_t a0 = (e - e0) * L.block_q(), a1 = std::min(a0 + L.block_q(), rows);
      const std::uint64_t* mask = L.mask(m);
      for (std::int64_t a = a0; a < a1; ++a) {
        const std::uint64_t* bits = mask + (a - a0) * L.mask_row_words();
        for (std::int64_t j = 0; j < cols; ++j)
          if (((bits[j >> 6] >> (j & 63)) & 1u) == 0) tb.p(a, j) = 0.0f;
      }
    }
    tb.dv.noalias() += tb.p.transpose() * dO;
    tb.dp.resize(rows, cols);
    tb.dp.noalias() = dO * V.transpose();
    for (std::int64_t a = 0; a < rows; ++a)
      tb.s.row(a) = tb.p.row(a).array() * (tb.dp.row(a).array() - delta[a]);  // s := dS
    tb.dk.noalias() += tb.s.transpose() * Q;
    Rows dQ(dq, rows, d, Eigen::OuterStride<>(d));
    dQ.noalias() += tb.s * K;
  }

  AttentionShape s_;
  ConstTensorView q_, k_, v_, lse_, do_;
  const Layout& layout_;
  float scale_;
  std::int64_t parts_;
  std::vector<Columns> columns_;
  std::vector<float> delta_;
};

std::int64_t choose_parts(const AttentionShape& s, std::int64_t k_blocks, std::int64_t requested) {
  if (requested > 0) return std::min(requested, k_blocks);
  const std::int64_t dq_bytes = s.batch * s.q_heads * s.nq * s.dim * 4;
  std::int64_t parts = (kTargetTasks + s.batch * s.kv_heads - 1) / (s.batch * s.kv_heads);
  parts = std::min(parts,
                   std::max<std::int64_t>(1, kMaxPartBytes / std::max<std::int64_t>(dq_bytes, 1)));
  return std::max<std::int64_t>(1, std::min(parts, k_blocks));
}

}  // namespace

BackwardStats attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                                 const ConstTensorView& v, const ConstTensorView& o,
                                 const ConstTensorView& lse, const ConstTensorView& d_o,
                                 const Layout& layout, const TensorView& dq, const TensorView& dk,
                                 const TensorView& dv, const BackwardOptions& options) {
  const AttentionShape s = check_attention_inputs(q, k, v, layout);
  require_same_value_dim(s, "the backward pass");
  check_like(o, q.shape, "o");
  check_like(lse, {s.batch, s.q_heads, s.nq, 1}, "lse");
  check_like(d_o, q.shape, "dO");
  check_output(dq, q.shape, "dq");
  check_output(dk, k.shape, "dk");
  check_output(dv, v.shape, "dv");
  if (options.threads < 0)
    throw UsageError(fmt::format("threads is {}: it must be >= 0", options.threads));
  if (options.parts < 0)
    throw UsageError(fmt::format("parts is {}: it must be >= 0", options.parts));
  const float scale = options.scale.value_or(1.0f / std::sqrt(static_cast<float>(s.dim)));

  Tensor qs, ks, vs, dos;
  const ConstTensorView qc = contiguous_rows(q, qs), kc = contiguous_rows(k, ks),
                        vc = contiguous_rows(v, vs), doc = contiguous_rows(d_o, dos);
  const std::int64_t parts = choose_parts(s, layout.head(0).k_blocks(), options.parts);
  const std::size_t dq_size = static_cast<std::size_t>(s.batch * s.q_heads * s.nq * s.dim);
  std::vector<float> dq_parts(dq_size * static_cast<std::size_t>(parts), 0.0f);
  const std::int64_t tasks = s.batch * s.kv_heads * parts;

  BackwardStats st;
  st.tasks = tasks;
  st.parts = parts;
  st.workspace_bytes = static_cast<std::int64_t>(dq_parts.size() * sizeof(float));

  auto body = [&] {
    Backward bw(s, qc, kc, vc, lse, doc, layout, scale, parts);
    bw.set_delta(o);
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, tasks, 1),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          TileBuffers tb;
          for (std::int64_t t = range.begin(); t != range.end(); ++t) {
            const std::int64_t part = t % parts, bk = t / parts;
            bw.run(bk / s.kv_heads, bk % s.kv_heads, part, dq_parts.data() + part * dq_size, dk, dv,
                   tb);
          }
        },
        tbb::simple_partitioner());
    // dQ = scale * sum of the parts in part order, one (batch, head, row) at a time.
    tbb::parallel_for(std::int64_t{0}, s.batch * s.q_heads * s.nq, [&](std::int64_t row) {
      const std::int64_t i = row % s.nq, bh = row / s.nq;
      const std::int64_t b = bh / s.q_heads, h = bh % s.q_heads;
      for (std::int64_t x = 0; x < s.dim; ++x) {
        float acc = dq_parts[static_cast<std::size_t>(row * s.dim + x)];
        for (std::int64_t p = 1; p < parts; ++p)
          acc += dq_parts[p * dq_size + static_cast<std::size_t>(row * s.dim + x)];
        dq.at(b, h, i, x) = acc * scale;
      }
    });
  };
  if (options.threads > 0) {
    tbb::task_arena arena(options.threads);
    arena.execute(body);
  } else {
    body();
  }
  return st;
}

BackwardResult attention_backward(const ConstTensorView& q, const ConstTensorView& k,
                                  const ConstTensorView& v, const ConstTensorView& o,
                                  const ConstTensorView& lse, const ConstTensorView& d_o,
                                  const Layout& layout, const BackwardOptions& options) {
  const AttentionShape s = check_attention_inputs(q, k, v, layout);
  require_same_value_dim(s, "the backward pass");
  BackwardResult r;
  r.dq = Tensor(s.batch, s.q_heads, s.nq, s.dim);
  r.dk = Tensor(s.batch, s.kv_heads, s.nk, s.dim);
  r.dv = Tensor(s.batch, s.kv_heads, s.nk, s.dim);
  r.stats = attention_backward(q, k, v, o, lse, d_o, layout, r.dq.view(), r.dk.view(), r.dv.view(),
                               options);
  return r;
}

}  // namespace spattn
