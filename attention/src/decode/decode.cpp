// The split-KV decode executor (decode.hpp): parts of the key axis run as independent tasks,
// merged through their LSE in part order.
#include "spattn/attention/decode.hpp"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../kernels/simd.hpp"
#include "kv_kernels.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr std::int64_t kMaxParts = 64;
constexpr std::int64_t kMinPartKeys = 1024;

struct Shape {
  std::int64_t B = 0, Hq = 0, Hkv = 0, nq = 0, nk = 0, d = 0;
};

void check_kv(const KVView& t, const char* what) {
  if (t.data == nullptr && t.tokens() > 0)
    throw UsageError(fmt::format("decode: {} has no data", what));
  if (t.dtype == KVDtype::Int8 && t.scales == nullptr && t.tokens() > 0)
    throw UsageError(fmt::format("decode: int8 {} has no per-token scales", what));
  for (int a = 0; a < 3; ++a)
    if (t.stride[a] < 0) throw UsageError(fmt::format("decode: {} stride {} is negative", what, a));
}

Shape check_decode(const ConstTensorView& q, const KVView& k, const KVView& v, const Layout& layout,
                   const TensorView& o, const TensorView& lse) {
  Shape s{q.batch(), q.heads(), k.heads(), q.tokens(), k.tokens(), q.dim()};
  if (q.data == nullptr) throw UsageError("decode: q has no data");
  check_kv(k, "k");
  check_kv(v, "v");
  if (s.nq < 1 || s.nq > kMaxDecodeQueries)
    throw UsageError(fmt::format(
        "decode: q has {} queries (q {}); the decode executor takes 1..{} (use attention() for "
        "prefill)",
        s.nq, q.shape_string(), kMaxDecodeQueries));
  if (s.d < 1 || s.d > kMaxHeadDim)
    throw UsageError(fmt::format("decode: head dim {} outside 1..{}", s.d, kMaxHeadDim));
  if (k.shape != v.shape)
    throw UsageError(
        fmt::format("decode: k {} and v {} differ in shape", k.shape_string(), v.shape_string()));
  if (k.batch() != s.B || k.dim() != s.d)
    throw UsageError(fmt::format("decode: q {} and k {} differ in batch or head dim",
                                 q.shape_string(), k.shape_string()));
  if (s.Hkv < 1 || s.Hq % s.Hkv != 0)
    throw UsageError(
        fmt::format("decode: q heads {} are not a multiple of K/V heads {}", s.Hq, s.Hkv));
  if (layout.geometry.nq != s.nq || layout.geometry.nk != s.nk)
    throw UsageError(
        fmt::format("decode: layout is for nq = {}, nk = {} but q has {} queries and "
                    "k {} keys",
                    layout.geometry.nq, layout.geometry.nk, s.nq, s.nk));
  const auto lh = static_cast<std::int64_t>(layout.head_to_distinct.size());
  if (lh != s.Hq && lh != 1)
    throw UsageError(
        fmt::format("decode: layout has {} heads; q has {} (allowed: {} or 1)", lh, s.Hq, s.Hq));
  check_output(o, {s.B, s.Hq, s.nq, s.d}, "o");
  check_output(lse, {s.B, s.Hq, s.nq, 1}, "lse");
  return s;
}

// Running softmax state of one query over the tiles of one part.
struct RowState {
  float m = kNegInf;
  float l = 0;
};

class Decoder {
 public:
  Decoder(const Shape& s, const ConstTensorView& q, const KVView& k, const KVView& v,
          const Layout& layout, const DecodeOptions& opt)
      : s_(s), q_(q), k_(k), v_(v), layout_(layout) {
    scale_ = opt.scale.value_or(1.0f / std::sqrt(static_cast<float>(s.d)));
    const auto choice =
        opt.portable_kernels ? decode::KernelChoice::Portable : decode::KernelChoice::Auto;
    kk_ = decode::kv_kernels(k.dtype, choice);
    vk_ = decode::kv_kernels(v.dtype, choice);
    bk_ = layout.geometry.block_k;
    bq_ = layout.geometry.block_q;
    part_keys_ = decode_part_keys(s.nk, bk_, opt.part_keys);
    parts_ = std::max<std::int64_t>(1, (s.nk + part_keys_ - 1) / part_keys_);
    group_ = s.Hq / s.Hkv;
    one_layout_ = layout.head_to_distinct.size() == 1;
    const std::int64_t rows = s.B * s.Hq * parts_ * s.nq;
    pm_.assign(rows, kNegInf);
    pl_.assign(rows, 0.0f);
    po_.assign(rows * s.d, 0.0f);
    bytes_.assign(s.B * s.Hkv * parts_, 0);
  }

  std::int64_t tasks() const { return s_.B * s_.Hkv * parts_; }
  std::int64_t parts() const { return parts_; }
  std::int64_t part_keys() const { return part_keys_; }
  std::int64_t workspace_bytes() const {
    return static_cast<std::int64_t>((pm_.size() + pl_.size() + po_.size()) * sizeof(float));
  }
  std::int64_t bytes_read() const {
    std::int64_t t = 0;
    for (auto b : bytes_) t += b;
    return t;
  }
  const char* kernel_name() const { return kk_.name; }

  // Task (b, K/V head g, part p): every query of every head of the group over the part's keys.
  void run_part(std::int64_t task) {
    const std::int64_t p = task % parts_;
    const std::int64_t g = (task / parts_) % s_.Hkv;
    const std::int64_t b = task / (parts_ * s_.Hkv);
    const std::int64_t kb_per_part = part_keys_ / bk_;
    const std::int64_t c0 = p * kb_per_part;
    const std::int64_t c1 = std::min<std::int64_t>((s_.nk + bk_ - 1) / bk_, c0 + kb_per_part);
    const std::int64_t nq = s_.nq, d = s_.d, group = group_;
    const std::int64_t qblocks = (nq + bq_ - 1) / bq_;

    // Queries of the group: a contiguous copy and its bfloat16 split.
    std::vector<float> qf(group * nq * d);
    std::vector<std::uint16_t> qhi(qf.size()), qlo(qf.size());
    for (std::int64_t hh = 0; hh < group; ++hh)
      for (std::int64_t i = 0; i < nq; ++i)
        for (std::int64_t x = 0; x < d; ++x) {
          const std::size_t e = (hh * nq + i) * d + x;
          qf[e] = q_.at(b, g * group + hh, i, x);
          qhi[e] = float_to_bf16(qf[e]);
          qlo[e] = float_to_bf16(qf[e] - bf16_to_float(qhi[e]));
        }
    std::vector<RowState> st(group * nq);
    std::vector<float> acc(group * nq * d, 0.0f);
    // Cursor per (head of group, query-block row) into its CSR row, from the part's first block.
    std::vector<std::int64_t> cur(group * qblocks), end(group * qblocks);
    for (std::int64_t hh = 0; hh < group; ++hh) {
      const BlockLayout& L = head_layout(g * group + hh);
      for (std::int64_t r = 0; r < qblocks; ++r) {
        const auto cols = L.col_index();
        const auto first = cols.begin() + L.row_ptr()[r];
        const auto last = cols.begin() + L.row_ptr()[r + 1];
        cur[hh * qblocks + r] = std::lower_bound(first, last, c0) - cols.begin();
        end[hh * qblocks + r] = L.row_ptr()[r + 1];
      }
    }
    alignas(64) float sc[128 + 16];
    alignas(64) float pr[128 + 16];
    const std::int64_t row_bytes = kv_row_bytes(k_.dtype, d) + kv_row_bytes(v_.dtype, d);
    std::int64_t bytes = 0;
    for (std::int64_t c = c0; c < c1; ++c) {
      const std::int64_t j0 = c * bk_;
      const int kn = static_cast<int>(std::min<std::int64_t>(bk_, s_.nk - j0));
      const decode::KVRows krows{k_.row(b, g, j0), k_.stride[2],
                                 k_.scales ? k_.scales + b * k_.scale_stride[0] +
                                                 g * k_.scale_stride[1] + j0 * k_.scale_stride[2]
                                           : nullptr,
                                 k_.scale_stride[2]};
      const decode::KVRows vrows{v_.row(b, g, j0), v_.stride[2],
                                 v_.scales ? v_.scales + b * v_.scale_stride[0] +
                                                 g * v_.scale_stride[1] + j0 * v_.scale_stride[2]
                                           : nullptr,
                                 v_.scale_stride[2]};
      bool touched = false;
      for (std::int64_t hh = 0; hh < group; ++hh) {
        const BlockLayout& L = head_layout(g * group + hh);
        for (std::int64_t r = 0; r < qblocks; ++r) {
          std::int64_t& t = cur[hh * qblocks + r];
          if (t >= end[hh * qblocks + r] || L.col_index()[t] != c) continue;
          touched = true;
          const std::int32_t mi = L.mask_index()[t];
          const std::uint64_t* mask = mi >= 0 ? L.mask(mi) : nullptr;
          const std::int64_t i0 = r * bq_, i1 = std::min(nq, i0 + bq_);
          for (std::int64_t i = i0; i < i1; ++i) {
            const std::uint64_t* bits = mask ? mask + (i - i0) * L.mask_row_words() : nullptr;
            const std::size_t row = hh * nq + i;
            update(st[row], acc.data() + row * d, qf.data() + row * d, qhi.data() + row * d,
                   qlo.data() + row * d, bits, krows, vrows, kn, sc, pr);
          }
          ++t;
        }
      }
      if (touched) bytes += kn * row_bytes;
    }
    bytes_[task] = bytes;
    for (std::int64_t hh = 0; hh < group; ++hh)
      for (std::int64_t i = 0; i < nq; ++i) {
        const std::size_t row = hh * nq + i;
        const std::int64_t pi = slot(b, g * group + hh, p, i);
        pm_[pi] = st[row].m;
        pl_[pi] = st[row].l;
        std::copy_n(acc.data() + row * d, d, po_.data() + pi * d);
      }
  }

  // Query (b, h, i): its parts merged in part order; writes o and lse.
  void merge(std::int64_t e, const TensorView& o, const TensorView& lse) const {
    const std::int64_t i = e % s_.nq;
    const std::int64_t h = (e / s_.nq) % s_.Hq;
    const std::int64_t b = e / (s_.nq * s_.Hq);
    float mx = kNegInf;
    for (std::int64_t p = 0; p < parts_; ++p) mx = std::max(mx, pm_[slot(b, h, p, i)]);
    if (mx == kNegInf) {
      for (std::int64_t x = 0; x < s_.d; ++x) o.at(b, h, i, x) = 0.0f;
      lse.at(b, h, i, 0) = kNegInf;
      return;
    }
    float l = 0;
    float out[kMaxHeadDim] = {};
    for (std::int64_t p = 0; p < parts_; ++p) {
      const std::int64_t pi = slot(b, h, p, i);
      if (pm_[pi] == kNegInf) continue;
      const float w = std::exp(pm_[pi] - mx);
      l += w * pl_[pi];
      for (std::int64_t x = 0; x < s_.d; ++x) out[x] += w * po_[pi * s_.d + x];
    }
    for (std::int64_t x = 0; x < s_.d; ++x) o.at(b, h, i, x) = out[x] / l;
    lse.at(b, h, i, 0) = mx + std::log(l);
  }

 private:
  const BlockLayout& head_layout(std::int64_t h) const {
    return layout_.head(one_layout_ ? 0 : static_cast<int>(h));
  }
  std::int64_t slot(std::int64_t b, std::int64_t h, std::int64_t p, std::int64_t i) const {
    return ((b * s_.Hq + h) * parts_ + p) * s_.nq + i;
  }

  // One query against one key tile of kn keys (bits: its mask row, null when Full).
  void update(RowState& st, float* o, const float* q, const std::uint16_t* hi,
              const std::uint16_t* lo, const std::uint64_t* bits, const decode::KVRows& krows,
              const decode::KVRows& vrows, int kn, float* sc, float* pr) const {
    if (bits) {
      bool any = false;
      for (int w = 0; w < (kn + 63) / 64; ++w) any |= bits[w] != 0;
      if (!any) return;
    }
    kk_.dot({q, hi, lo, static_cast<int>(s_.d)}, krows, kn, sc);
    float mt = kNegInf;
    for (int j = 0; j < kn; ++j) {
      const bool keep = !bits || ((bits[j >> 6] >> (j & 63)) & 1u);
      sc[j] = keep ? sc[j] * scale_ : kNegInf;
      mt = std::max(mt, sc[j]);
    }
    if (mt == kNegInf) return;
    const float m_new = std::max(st.m, mt);
    const float alpha = st.m == kNegInf ? 0.0f : std::exp(st.m - m_new);
    const int padded = (kn + 15) & ~15;
    for (int j = kn; j < padded; ++j) sc[j] = kNegInf;
    const kernels::VF mv = kernels::bcast(m_new);
    for (int j = 0; j < padded; j += 16)
      kernels::store(pr + j, kernels::exp(kernels::sub(kernels::load(sc + j), mv)));
    float sum = 0;
    for (int j = 0; j < kn; ++j) {
      if (sc[j] == kNegInf) pr[j] = 0.0f;
      sum += pr[j];
    }
    st.l = st.l * alpha + sum;
    st.m = m_new;
    if (alpha != 1.0f)
      for (std::int64_t x = 0; x < s_.d; ++x) o[x] *= alpha;
    vk_.axpy(o, pr, vrows, kn, static_cast<int>(s_.d));
  }

  Shape s_;
  ConstTensorView q_;
  KVView k_, v_;
  const Layout& layout_;
  float scale_ = 1;
  decode::KVKernels kk_, vk_;
  int bk_ = 64, bq_ = 64;
  std::int64_t part_keys_ = 0, parts_ = 1, group_ = 1;
  bool one_layout_ = true;
  std::vector<float> pm_, pl_, po_;
  std::vector<std::int64_t> bytes_;
};

}  // namespace

std::int64_t decode_part_keys(std::int64_t nk, int block_k, std::int64_t requested) {
  std::int64_t keys =
      requested > 0 ? requested : std::max(kMinPartKeys, (nk + kMaxParts - 1) / kMaxParts);
  return (keys + block_k - 1) / block_k * block_k;
}

DecodeStats decode_attention(const ConstTensorView& q, const KVView& k, const KVView& v,
                             const Layout& layout, const TensorView& o, const TensorView& lse,
                             const DecodeOptions& options) {
  const Shape s = check_decode(q, k, v, layout, o, lse);
  if (options.part_keys < 0)
    throw UsageError(fmt::format("decode: part_keys {} is negative", options.part_keys));
  Decoder dec(s, q, k, v, layout, options);
  auto body = [&] {
    tbb::parallel_for(std::int64_t{0}, dec.tasks(), [&](std::int64_t t) { dec.run_part(t); });
    tbb::parallel_for(std::int64_t{0}, s.B * s.Hq * s.nq,
                      [&](std::int64_t e) { dec.merge(e, o, lse); });
  };
  if (options.threads > 0) {
    tbb::task_arena arena(options.threads);
    arena.execute(body);
  } else {
    body();
  }
  DecodeStats st;
  st.parts = dec.parts();
  st.part_keys = dec.part_keys();
  st.kv_bytes_read = dec.bytes_read();
  st.workspace_bytes = dec.workspace_bytes();
  st.kernel = dec.kernel_name();
  return st;
}

DecodeResult decode_attention(const ConstTensorView& q, const KVView& k, const KVView& v,
                              const Layout& layout, const DecodeOptions& options) {
  DecodeResult r;
  r.o = Tensor(q.batch(), q.heads(), q.tokens(), q.dim());
  r.lse = Tensor(q.batch(), q.heads(), q.tokens(), 1);
  r.stats = decode_attention(q, k, v, layout, r.o.view(), r.lse.view(), options);
  return r;
}

}  // namespace spattn
