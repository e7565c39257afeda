// The block-sparse flash backward pass (see backward.hpp): per (batch, K/V head, key-tile part)
// task, key tiles in order, each accumulating dK and dV over the query tiles that keep it.
#include "spattn/attention/backward.hpp"

#include <fmt/format.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "backward_tile.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

constexpr std::int64_t kTargetTasks = 32;
constexpr std::int64_t kMaxParts = 64;  // bound of parts (requested or automatic)
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

// Rows of a [B, H, N, d] tensor with adjacent elements and a row length that is a multiple
// of 16 (the kernels read whole vectors): the tensor itself when it has both, otherwise a C-order
// copy with rows zero padded to `dp` floats, held in `store`.
struct RowsView {
  const float* data = nullptr;
  std::int64_t sb = 0, sh = 0, sn = 0;
  const float* row(std::int64_t b, std::int64_t h, std::int64_t n) const {
    return data + b * sb + h * sh + n * sn;
  }
};

RowsView padded_rows(const ConstTensorView& t, std::int64_t dp, std::vector<float>& store) {
  if (t.rows_contiguous() && t.dim() == dp) return {t.data, t.stride[0], t.stride[1], t.stride[2]};
  const auto [B, H, N, d] = t.shape;
  store.assign(static_cast<std::size_t>(B * H * N * dp), 0.0f);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t x = 0; x < d; ++x)
          store[static_cast<std::size_t>(((b * H + h) * N + n) * dp + x)] = t.at(b, h, n, x);
  return {store.data(), H * N * dp, N * dp, dp};
}

// Per-task scratch, sized for the layout's tiles once: the packed key tile, P and dS of one
// query tile, and the key tile's dK and dV accumulators.
struct TileBuffers {
  std::vector<float> kt, vt, p, ds, dk, dv;
  TileBuffers(std::int64_t bq, std::int64_t bk, std::int64_t dp) {
    const std::int64_t kw = (bk + 15) / 16 * 16;
    kt.resize(static_cast<std::size_t>(dp * kw));
    vt.resize(kt.size());
    p.resize(static_cast<std::size_t>(bq * kw));
    ds.resize(p.size());
    dk.resize(static_cast<std::size_t>(bk * dp));
    dv.resize(dk.size());
  }
};

// The dQ accumulators of one key-tile part: rows of the query blocks [block0, block0 + blocks)
// that the part's key tiles reach, for every (batch, query head), [B * Hq][blocks * bq][dp].
// A tile of it is zeroed when the part first writes it (touched), so untouched tiles cost
// neither zeroing nor page faults, and the final sum skips them.
struct PartBuffer {
  std::int64_t block0 = 0, blocks = 0;
  std::unique_ptr<float[]> data;
  std::vector<std::uint8_t> touched;  // [B * Hq][blocks]
};

class Backward {
 public:
  Backward(const AttentionShape& s, std::int64_t dp, RowsView q, RowsView k, RowsView v,
           RowsView d_o, const Layout& layout, float scale, const ScoreMod& mod, std::int64_t parts)
      : s_(s),
        dp_(dp),
        q_(q),
        k_(k),
        v_(v),
        do_(d_o),
        layout_(layout),
        scale_(scale),
        mod_(mod),
        parts_(parts) {
    columns_.reserve(layout.distinct.size());
    for (const auto& d : layout.distinct) columns_.push_back(transpose(*d));
  }

  // Per (batch, query head, row): the forward's LSE and D_i = sum_x dO[i][x] O[i][x]
  // (accumulated in double). With learned sinks, also each (batch, head)'s share of the sink
  // gradient, -sum_i e^(sink_h - LSE_i) D_i.
  void set_rows(const ConstTensorView& o, const ConstTensorView& lse, const ConstTensorView& d_o) {
    const auto rows = static_cast<std::size_t>(s_.batch * s_.q_heads * s_.nq);
    delta_.assign(rows, 0.0f);
    lse_.assign(rows, 0.0f);
    sink_part_.assign(static_cast<std::size_t>(s_.batch * s_.q_heads), 0.0);
    tbb::parallel_for(std::int64_t{0}, s_.batch * s_.q_heads, [&](std::int64_t bh) {
      const std::int64_t b = bh / s_.q_heads, h = bh % s_.q_heads;
      double sink_sum = 0;
      for (std::int64_t i = 0; i < s_.nq; ++i) {
        double acc = 0;
        for (std::int64_t x = 0; x < s_.dim; ++x)
          acc += static_cast<double>(d_o.at(b, h, i, x)) * static_cast<double>(o.at(b, h, i, x));
        const float l = lse.at(b, h, i, 0);
        delta_[static_cast<std::size_t>(bh * s_.nq + i)] = static_cast<float>(acc);
        lse_[static_cast<std::size_t>(bh * s_.nq + i)] = l;
        if (!mod_.sinks.empty() && l != -std::numeric_limits<float>::infinity())
          sink_sum -= std::exp(static_cast<double>(mod_.sinks[static_cast<std::size_t>(h)]) -
                               static_cast<double>(l)) *
                      acc;
      }
      sink_part_[static_cast<std::size_t>(bh)] = sink_sum;
    });
  }

  // Splits the key tiles into `parts` contiguous ranges of about equal work (kept tiles summed
  // over the query heads) and sizes each part's dQ buffer to the query blocks its tiles reach.
  // Depends on the layout only.
  std::vector<PartBuffer> plan_parts() {
    const std::int64_t kb = layout_.head(0).k_blocks();
    const bool shared = layout_.geometry.heads == 1;
    std::vector<std::int64_t> work(static_cast<std::size_t>(kb), 0);
    std::int64_t total = 0;
    for (std::int64_t h = 0; h < s_.q_heads; ++h) {
      const Columns& C =
          columns_[static_cast<std::size_t>(layout_.head_to_distinct[shared ? 0 : h])];
      for (std::int64_t c = 0; c < kb; ++c) {
        work[static_cast<std::size_t>(c)] += C.col_ptr[c + 1] - C.col_ptr[c];
        total += C.col_ptr[c + 1] - C.col_ptr[c];
      }
    }
    part_begin_.assign(static_cast<std::size_t>(parts_ + 1), kb);
    part_begin_[0] = 0;
    std::int64_t c = 0, done = 0;
    for (std::int64_t p = 1; p < parts_; ++p) {
      // at least one key tile per part, and leave one for each later part
      while (c < kb - (parts_ - p) && (c < p || done * parts_ < total * p))
        done += work[static_cast<std::size_t>(c++)];
      part_begin_[static_cast<std::size_t>(p)] = c;
    }
    std::vector<PartBuffer> bufs(static_cast<std::size_t>(parts_));
    const std::int64_t bq = layout_.head(0).block_q();
    for (std::int64_t p = 0; p < parts_; ++p) {
      std::int64_t lo = std::numeric_limits<std::int64_t>::max(), hi = 0;
      for (const Columns& C : columns_)
        for (std::int64_t cc = part_begin_[p]; cc < part_begin_[p + 1]; ++cc)
          if (C.col_ptr[cc + 1] > C.col_ptr[cc]) {
            lo = std::min<std::int64_t>(lo, C.row[C.col_ptr[cc]]);
            hi = std::max<std::int64_t>(hi, C.row[C.col_ptr[cc + 1] - 1] + 1);
          }
      PartBuffer& b = bufs[static_cast<std::size_t>(p)];
      b.block0 = hi > lo ? lo : 0;
      b.blocks = hi > lo ? hi - lo : 0;
      const std::int64_t slots = s_.batch * s_.q_heads * b.blocks;
      b.data.reset(new float[static_cast<std::size_t>(slots * bq * dp_)]);
      b.touched.assign(static_cast<std::size_t>(slots), 0);
    }
    return bufs;
  }

  // dQ row i of (b, h), scaled: the parts' accumulators summed in part order (0 when no part
  // reached it).
  void sum_dq(const std::vector<PartBuffer>& bufs, std::int64_t b, std::int64_t h, std::int64_t i,
              const TensorView& dq) const {
    const std::int64_t bq = layout_.head(0).block_q(), r = i / bq;
    const float* src[kMaxParts];
    int n = 0;
    for (const PartBuffer& p : bufs) {
      if (r < p.block0 || r >= p.block0 + p.blocks) continue;
      const std::int64_t slot = (b * s_.q_heads + h) * p.blocks + r - p.block0;
      if (p.touched[static_cast<std::size_t>(slot)])
        src[n++] = p.data.get() + (slot * bq + i % bq) * dp_;
    }
    for (std::int64_t x = 0; x < s_.dim; ++x) {
      float acc = 0.0f;
      for (int k = 0; k < n; ++k) acc = k == 0 ? src[k][x] : acc + src[k][x];
      dq.at(b, h, i, x) = acc * scale_;
    }
  }

  // d sink_h: the batches' shares summed in batch order.
  void sink_gradient(std::span<float> out) const {
    for (std::int64_t h = 0; h < s_.q_heads; ++h) {
      double acc = 0;
      for (std::int64_t b = 0; b < s_.batch; ++b)
        acc += sink_part_[static_cast<std::size_t>(b * s_.q_heads + h)];
      out[static_cast<std::size_t>(h)] = static_cast<float>(acc);
    }
  }

  // Task (b, kv head, part): the part's key tiles in order. dQ goes to the part's buffer, dK
  // and dV to their outputs.
  void run(std::int64_t b, std::int64_t kh, std::int64_t part, PartBuffer& buf,
           const TensorView& dk, const TensorView& dv, TileBuffers& tb) const {
    const BlockLayout& L0 = layout_.head(0);
    const std::int64_t bk = L0.block_k(), bq = L0.block_q();
    const bool shared = layout_.geometry.heads == 1;
    const std::int64_t tile_floats = bq * dp_;
    for (std::int64_t c = part_begin_[part]; c < part_begin_[part + 1]; ++c) {
      const std::int64_t k0 = c * bk, cols = std::min(bk, s_.nk - k0);
      pack_keys(b, kh, k0, cols, tb);
      std::fill(tb.dk.begin(), tb.dk.end(), 0.0f);
      std::fill(tb.dv.begin(), tb.dv.end(), 0.0f);
      kernels::BackwardTile t;
      t.d = static_cast<int>(dp_);
      t.keys = static_cast<int>(cols);
      t.k = k_.row(b, kh, k0);
      t.k_stride = k_.sn;
      t.kt = tb.kt.data();
      t.vt = tb.vt.data();
      t.kpos0 = k0;
      t.cap = mod_.softcap.value_or(0.0f);
      t.p = tb.p.data();
      t.ds = tb.ds.data();
      t.dk = tb.dk.data();
      t.dv = tb.dv.data();
      t.dq_stride = dp_;
      for (std::int64_t g = 0; g < s_.group(); ++g) {
        const std::int64_t h = kh * s_.group() + g;
        const int di = layout_.head_to_distinct[shared ? 0 : h];
        const BlockLayout& L = *layout_.distinct[static_cast<std::size_t>(di)];
        const Columns& C = columns_[static_cast<std::size_t>(di)];
        t.slope = mod_.alibi_slopes.empty() ? 0.0f : mod_.alibi_slopes[static_cast<std::size_t>(h)];
        t.mask_words = L.mask_row_words();
        for (std::int64_t e = C.col_ptr[c]; e < C.col_ptr[c + 1]; ++e) {
          const std::int64_t q0 = C.row[e] * bq;
          const std::int64_t row0 = (b * s_.q_heads + h) * s_.nq + q0;
          t.rows = static_cast<int>(std::min(bq, s_.nq - q0));
          t.q = q_.row(b, h, q0);
          t.q_stride = q_.sn;
          t.d_o = do_.row(b, h, q0);
          t.do_stride = do_.sn;
          t.lse = &lse_[static_cast<std::size_t>(row0)];
          t.delta = &delta_[static_cast<std::size_t>(row0)];
          const std::int32_t m = L.mask_index()[C.tile[e]];
          t.mask = m < 0 ? nullptr : L.mask(m);
          t.qpos0 = q0 + s_.nk - s_.nq;
          const std::int64_t slot = (b * s_.q_heads + h) * buf.blocks + C.row[e] - buf.block0;
          t.dq = buf.data.get() + slot * tile_floats;
          if (!buf.touched[static_cast<std::size_t>(slot)]) {
            std::fill(t.dq, t.dq + tile_floats, 0.0f);
            buf.touched[static_cast<std::size_t>(slot)] = 1;
          }
          kernels::backward_step(t);
        }
      }
      for (std::int64_t j = 0; j < cols; ++j)
        for (std::int64_t x = 0; x < s_.dim; ++x) {
          dk.at(b, kh, k0 + j, x) = tb.dk[static_cast<std::size_t>(j * dp_ + x)] * scale_;
          dv.at(b, kh, k0 + j, x) = tb.dv[static_cast<std::size_t>(j * dp_ + x)];
        }
    }
  }

 private:
  // (scale K)^T and V^T of keys k0..k0+cols-1 into [dp][kw], zero padded.
  void pack_keys(std::int64_t b, std::int64_t kh, std::int64_t k0, std::int64_t cols,
                 TileBuffers& tb) const {
    const std::int64_t kw = (cols + 15) / 16 * 16;
    std::fill(tb.kt.begin(), tb.kt.begin() + dp_ * kw, 0.0f);
    std::fill(tb.vt.begin(), tb.vt.begin() + dp_ * kw, 0.0f);
    for (std::int64_t j = 0; j < cols; ++j) {
      const float* kr = k_.row(b, kh, k0 + j);
      const float* vr = v_.row(b, kh, k0 + j);
      for (std::int64_t x = 0; x < dp_; ++x) {
        tb.kt[static_cast<std::size_t>(x * kw + j)] = kr[x] * scale_;
        tb.vt[static_cast<std::size_t>(x * kw + j)] = vr[x];
      }
    }
  }

  AttentionShape s_;
  std::int64_t dp_;
  RowsView q_, k_, v_, do_;
  const Layout& layout_;
  float scale_;
  const ScoreMod& mod_;
  std::int64_t parts_;
  std::vector<Columns> columns_;
  std::vector<std::int64_t> part_begin_;  // part p: key tiles [part_begin_[p], part_begin_[p+1])
  std::vector<float> delta_, lse_;
  std::vector<double> sink_part_;
};

std::int64_t choose_parts(const AttentionShape& s, std::int64_t k_blocks, std::int64_t requested) {
  if (requested > 0) return std::min({requested, k_blocks, kMaxParts});
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
                                 const TensorView& dv, const BackwardOptions& options,
                                 std::span<float> d_sinks) {
  const AttentionShape s = check_attention_inputs(q, k, v, layout);
  require_same_value_dim(s, "the backward pass");
  if (options.mod.bias.on())
    throw UsageError(
        "the backward pass takes no additive bias (--bias / bias=): it is forward-only; ALiBi, "
        "soft-capping and sinks are supported");
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
  check_score_mod(options.mod, s.q_heads);
  const std::size_t sink_count = options.mod.sinks.size();
  if (d_sinks.size() != sink_count)
    throw UsageError(fmt::format(
        "d_sinks has {} elements but must have {} (one per query head with learned sinks, none "
        "without)",
        d_sinks.size(), sink_count));
  const float scale = options.scale.value_or(1.0f / std::sqrt(static_cast<float>(s.dim)));

  const std::int64_t dp = (s.dim + 15) / 16 * 16;
  std::vector<float> qs, ks, vs, dos;
  const RowsView qc = padded_rows(q, dp, qs), kc = padded_rows(k, dp, ks),
                 vc = padded_rows(v, dp, vs), doc = padded_rows(d_o, dp, dos);
  const BlockLayout& L0 = layout.head(0);
  const std::int64_t parts = choose_parts(s, L0.k_blocks(), options.parts);
  const std::int64_t tasks = s.batch * s.kv_heads * parts;

  BackwardStats st;
  st.tasks = tasks;
  st.parts = parts;
  st.workspace_bytes =
      static_cast<std::int64_t>((qs.size() + ks.size() + vs.size() + dos.size()) * sizeof(float));

  auto body = [&] {
    Backward bw(s, dp, qc, kc, vc, doc, layout, scale, options.mod, parts);
    bw.set_rows(o, lse, d_o);
    std::vector<PartBuffer> bufs = bw.plan_parts();
    for (const PartBuffer& b : bufs)
      st.workspace_bytes += s.batch * s.q_heads * b.blocks * L0.block_q() * dp * 4;
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, tasks, 1),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          TileBuffers tb(L0.block_q(), L0.block_k(), dp);
          for (std::int64_t t = range.begin(); t != range.end(); ++t) {
            const std::int64_t part = t % parts, bk = t / parts;
            bw.run(bk / s.kv_heads, bk % s.kv_heads, part, bufs[static_cast<std::size_t>(part)], dk,
                   dv, tb);
          }
        },
        tbb::simple_partitioner());
    // dQ = scale * sum of the parts in part order, one (batch, head, row) at a time.
    tbb::parallel_for(std::int64_t{0}, s.batch * s.q_heads * s.nq, [&](std::int64_t row) {
      const std::int64_t i = row % s.nq, bh = row / s.nq;
      const std::int64_t b = bh / s.q_heads, h = bh % s.q_heads;
      bw.sum_dq(bufs, b, h, i, dq);
    });
    if (sink_count > 0) bw.sink_gradient(d_sinks);
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
  r.d_sinks.assign(options.mod.sinks.size(), 0.0f);
  r.stats = attention_backward(q, k, v, o, lse, d_o, layout, r.dq.view(), r.dk.view(), r.dv.view(),
                               options, r.d_sinks);
  return r;
}

}  // namespace spattn
