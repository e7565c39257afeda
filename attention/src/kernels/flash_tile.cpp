// Register-blocked kernels of one flash step (see flash_tile.hpp for the orientation).
//
// Blocking, for AVX-512 (32 vector registers, two 512-bit FMA ports, two 512-bit loads per
// cycle): Q K^T computes 6 keys x 4 query vectors (24 accumulators, 4 loads of Q^T + 6
// broadcasts of K per 24 FMAs); P V computes 6 dims x 4 query vectors (24 accumulators, 4 loads
// of P^T + 6 broadcasts of V per 24 FMAs). Both stay under the load ports' limit and leave 4
// registers free. 4 x 16 = 64 lanes per chunk matches the default block_q of 64; wider lane
// counts (block 128, GQA groups) loop over chunks and reuse the K/V tile from L1. Measured
// (dense, d = 64, N = 4096, 1 thread, CPU time on a loaded machine): blocks of 6/6 keys/dims
// 99-115 GFLOP/s, 4/4 95-97, 6/4 100-105, 4/6 96-105; the differences are near the noise, and
// 6 x 4 keeps the most margin on the load ports. A profile of the dense case splits the time
// ~44% P V, ~39% Q K^T, ~11% softmax (exp), the rest packing and output.
#include "flash_tile.hpp"

#include "simd.hpp"

namespace spattn::kernels {
namespace {

constexpr int kKeysPerBlock = 6;  // Q K^T register block: keys
constexpr int kDimsPerBlock = 6;  // P V register block: head dims
constexpr int kVecsPerChunk = 4;  // query vectors per register block

// S^T rows j0..j0+Y-1, query vectors w0..w0+NV-1; updates the per-vector tile max.
template <int D, int Y, int NV, bool MASKED, bool MOD>
SPATTN_INLINE void qk_block(const TileStep& t, int j0, std::int64_t w0, VF* tmax) {
  const int d = D > 0 ? D : t.d;
  const std::int64_t L = t.lanes;
  const float* q = t.qt + w0 * kLanes;
  const float* k = t.k + j0 * t.k_stride;
  VF acc[Y][NV];
  for (int y = 0; y < Y; ++y)
    for (int n = 0; n < NV; ++n) acc[y][n] = zero();
  for (int p = 0; p < d; ++p) {
    VF qv[NV];
    for (int n = 0; n < NV; ++n) qv[n] = load(q + p * L + n * kLanes);
    for (int y = 0; y < Y; ++y) {
      const VF kb = bcast(k[y * t.k_stride + p]);
      for (int n = 0; n < NV; ++n) acc[y][n] = fma(kb, qv[n], acc[y][n]);
    }
  }
  const std::int64_t vecs = L / kLanes;
  for (int y = 0; y < Y; ++y)
    for (int n = 0; n < NV; ++n) {
      VF s = acc[y][n];
      if constexpr (MOD) {
        const ScoreLanes& md = *t.mod;
        if (md.alibi) {
          const VF dist = abs(sub(load(md.qpos + (w0 + n) * kLanes), bcast(md.kpos[j0 + y])));
          s = modify_scores(md, s, dist, load(md.slope + (w0 + n) * kLanes));
        } else {
          s = modify_scores(md, s, s, s);
        }
        if (md.bias != nullptr) s = add(s, load(md.bias + (j0 + y) * L + (w0 + n) * kLanes));
      }
      if constexpr (MASKED) s = keep_or_neginf(t.keep[(j0 + y) * vecs + w0 + n], s);
      store(t.s + (j0 + y) * L + (w0 + n) * kLanes, s);
      tmax[n] = max(tmax[n], s);
    }
}

template <int D, int NV, bool MASKED, bool MOD>
void qk_chunk(const TileStep& t, std::int64_t w0, float* tile_max) {
  VF tmax[NV];
  for (int n = 0; n < NV; ++n) tmax[n] = bcast(kNegInf);
  int j0 = 0;
  for (; j0 + kKeysPerBlock <= t.keys; j0 += kKeysPerBlock)
    qk_block<D, kKeysPerBlock, NV, MASKED, MOD>(t, j0, w0, tmax);
  switch (t.keys - j0) {
    case 7:
      qk_block<D, 7, NV, MASKED, MOD>(t, j0, w0, tmax);
      break;
    case 6:
      qk_block<D, 6, NV, MASKED, MOD>(t, j0, w0, tmax);
      break;
    case 5:
      qk_block<D, 5, NV, MASKED, MOD>(t, j0, w0, tmax);
      break;
    case 4:
      qk_block<D, 4, NV, MASKED, MOD>(t, j0, w0, tmax);
      break;
    case 3:
      qk_block<D, 3, NV, MASKED, MOD>(t, j0, w0, tmax);
      break;
    case 2:
      qk_block<D, 2, NV, MASKED, MOD>(t, j0, w0, tmax);
      break;
    case 1:
      qk_block<D, 1, NV, MASKED, MOD>(t, j0, w0, tmax);
      break;
    default:
      break;
  }
  for (int n = 0; n < NV; ++n) store(tile_max + (w0 + n) * kLanes, tmax[n]);
}

// m_new = max(m, tile max); alpha = e^(m - m_new); P^T = e^(S^T - m_new) (masked lanes exactly
// 0); l = alpha l + sum_j P^T. A lane whose max is still -inf (nothing allowed yet) subtracts 0
// instead, so that -inf - -inf never occurs: its P is 0 and its alpha multiplies zeros.
template <bool MASKED>
void softmax_update(const TileStep& t, const float* tile_max, float* alpha) {
  const std::int64_t L = t.lanes, vecs = L / kLanes;
  for (std::int64_t w = 0; w < vecs; ++w) {
    const VF m_old = load(t.m + w * kLanes);
    const VF m_new = max(m_old, load(tile_max + w * kLanes));
    const VF m_use = neginf_to_zero(m_new);
    const VF a = exp(sub(m_old, m_use));
    store(t.m + w * kLanes, m_new);
    store(alpha + w * kLanes, a);
    VF sum = zero();
    float* s = t.s + w * kLanes;
    for (int j = 0; j < t.keys; ++j, s += L) {
      VF p = exp(sub(load(s), m_use));
      if constexpr (MASKED) p = keep_or_zero(t.keep[j * vecs + w], p);
      store(s, p);
      sum = add(sum, p);
    }
    store(t.l + w * kLanes, fma(load(t.l + w * kLanes), a, sum));
  }
}

// O^T rows x0..x0+X-1, query vectors w0..w0+NV-1: O = alpha O + V^T P^T.
template <int X, int NV>
SPATTN_INLINE void pv_block(const TileStep& t, int x0, std::int64_t w0, const float* alpha) {
  const std::int64_t L = t.lanes;
  VF acc[X][NV];
  for (int n = 0; n < NV; ++n) {
    const VF a = load(alpha + (w0 + n) * kLanes);
    for (int x = 0; x < X; ++x) acc[x][n] = mul(load(t.ot + (x0 + x) * L + (w0 + n) * kLanes), a);
  }
  const float* p = t.s + w0 * kLanes;
  const float* v = t.v + x0;
  for (int j = 0; j < t.keys; ++j, p += L, v += t.v_stride) {
    VF pv[NV];
    for (int n = 0; n < NV; ++n) pv[n] = load(p + n * kLanes);
    for (int x = 0; x < X; ++x) {
      const VF vb = bcast(v[x]);
      for (int n = 0; n < NV; ++n) acc[x][n] = fma(vb, pv[n], acc[x][n]);
    }
  }
  for (int x = 0; x < X; ++x)
    for (int n = 0; n < NV; ++n) store(t.ot + (x0 + x) * L + (w0 + n) * kLanes, acc[x][n]);
}

template <int D, int NV>
void pv_chunk(const TileStep& t, std::int64_t w0, const float* alpha) {
  const int d = D > 0 ? D : (t.dv > 0 ? t.dv : t.d);  // D > 0 only when dv = d
  int x0 = 0;
  for (; x0 + kDimsPerBlock <= d; x0 += kDimsPerBlock)
    pv_block<kDimsPerBlock, NV>(t, x0, w0, alpha);
  switch (d - x0) {
    case 7:
      pv_block<7, NV>(t, x0, w0, alpha);
      break;
    case 6:
      pv_block<6, NV>(t, x0, w0, alpha);
      break;
    case 5:
      pv_block<5, NV>(t, x0, w0, alpha);
      break;
    case 4:
      pv_block<4, NV>(t, x0, w0, alpha);
      break;
    case 3:
      pv_block<3, NV>(t, x0, w0, alpha);
      break;
    case 2:
      pv_block<2, NV>(t, x0, w0, alpha);
      break;
    case 1:
      pv_block<1, NV>(t, x0, w0, alpha);
      break;
    default:
      break;
  }
}

template <int D, bool MASKED, bool MOD>
void step(const TileStep& t) {
  const std::int64_t vecs = t.lanes / kLanes;
  float* tile_max = t.scratch;
  float* alpha = t.scratch + t.lanes;
  for (std::int64_t w0 = 0; w0 < vecs; w0 += kVecsPerChunk) {
    switch (vecs - w0 < kVecsPerChunk ? vecs - w0 : kVecsPerChunk) {
      case 4:
        qk_chunk<D, 4, MASKED, MOD>(t, w0, tile_max);
        break;
      case 3:
        qk_chunk<D, 3, MASKED, MOD>(t, w0, tile_max);
        break;
      case 2:
        qk_chunk<D, 2, MASKED, MOD>(t, w0, tile_max);
        break;
      default:
        qk_chunk<D, 1, MASKED, MOD>(t, w0, tile_max);
        break;
    }
  }
  softmax_update<MASKED>(t, tile_max, alpha);
  for (std::int64_t w0 = 0; w0 < vecs; w0 += kVecsPerChunk) {
    switch (vecs - w0 < kVecsPerChunk ? vecs - w0 : kVecsPerChunk) {
      case 4:
        pv_chunk<D, 4>(t, w0, alpha);
        break;
      case 3:
        pv_chunk<D, 3>(t, w0, alpha);
        break;
      case 2:
        pv_chunk<D, 2>(t, w0, alpha);
        break;
      default:
        pv_chunk<D, 1>(t, w0, alpha);
        break;
    }
  }
}

template <int D>
void step_masked_or_not(const TileStep& t) {
  if (t.mod != nullptr) {
    if (t.keep != nullptr)
      step<D, true, true>(t);
    else
      step<D, false, true>(t);
    return;
  }
  if (t.keep != nullptr)
    step<D, true, false>(t);
  else
    step<D, false, false>(t);
}

}  // namespace

void flash_step(const TileStep& t) {
  if (t.dv > 0 && t.dv != t.d) {
    step_masked_or_not<0>(t);
    return;
  }
#if defined(__AVX512F__)
  switch (t.d) {
    case 64:
      step_masked_or_not<64>(t);
      return;
    case 128:
      step_masked_or_not<128>(t);
      return;
    default:
      break;
  }
#endif
  // Portable builds (no AVX-512) keep only the run-time-d instances: the emulated 16-lane
  // vectors make each compile-time-d instance expensive to compile, for little speed.
  step_masked_or_not<0>(t);
}

void normalize(float* ot, const float* l, std::int64_t lanes, int d) {
  for (int x = 0; x < d; ++x)
    for (std::int64_t w = 0; w < lanes; w += kLanes)
      store(ot + x * lanes + w, div(load(ot + x * lanes + w), load(l + w)));
}

void transpose_mask(const std::uint64_t* mask, int row_words, int block_q, int col0, int keys,
                    std::int64_t lanes, std::uint16_t* keep) {
  const std::int64_t vecs = lanes / kLanes;
  const int head_vecs = block_q / kLanes;
  for (int w = 0; w < head_vecs; ++w) {
    for (int word = col0 / 64; word * 64 < col0 + keys; ++word) {
      std::uint64_t rows[kLanes];
      for (int b = 0; b < kLanes; ++b) rows[b] = mask[(w * kLanes + b) * row_words + word];
      // Columns of this word inside [col0, col0 + keys), as bit positions c of the word.
      const int c_begin = col0 > word * 64 ? col0 - word * 64 : 0;
      const int c_end = col0 + keys - word * 64 < 64 ? col0 + keys - word * 64 : 64;
      const int j_of_c0 = word * 64 - col0;  // key index j of bit c is j_of_c0 + c
#if defined(__AVX512F__)
      const __m512i lo = _mm512_loadu_si512(rows);
      const __m512i hi = _mm512_loadu_si512(rows + 8);
      for (int c = c_begin; c < c_end; ++c) {
        const __m512i bit = _mm512_set1_epi64(static_cast<long long>(std::uint64_t{1} << c));
        const unsigned bits = static_cast<unsigned>(_mm512_test_epi64_mask(lo, bit)) |
                              static_cast<unsigned>(_mm512_test_epi64_mask(hi, bit)) << 8;
        keep[(j_of_c0 + c) * vecs + w] = static_cast<std::uint16_t>(bits);
      }
#else
      for (int c = c_begin; c < c_end; ++c) {
        unsigned bits = 0;
        for (int b = 0; b < kLanes; ++b) bits |= static_cast<unsigned>((rows[b] >> c) & 1u) << b;
        keep[(j_of_c0 + c) * vecs + w] = static_cast<std::uint16_t>(bits);
      }
#endif
    }
  }
  // The other query heads of the group repeat the first head's lanes.
  for (int j = 0; j < keys; ++j)
    for (std::int64_t w = head_vecs; w < vecs; ++w)
      keep[j * vecs + w] = keep[j * vecs + w % head_vecs];
}

bool column_lanes(const std::uint64_t* mask, int row_words, int block_q, int col,
                  std::int64_t lanes, std::uint16_t* keep) {
  const std::int64_t vecs = lanes / kLanes;
  const int head_vecs = block_q / kLanes;
  const int word = col / 64, bit = col % 64;
  bool all = true;
  for (int w = 0; w < head_vecs; ++w) {
    unsigned bits = 0;
    for (int b = 0; b < kLanes; ++b)
      bits |= static_cast<unsigned>((mask[(w * kLanes + b) * row_words + word] >> bit) & 1u) << b;
    keep[w] = static_cast<std::uint16_t>(bits);
    all = all && bits == 0xFFFFu;
  }
  for (std::int64_t w = head_vecs; w < vecs; ++w) keep[w] = keep[w % head_vecs];
  return all;
}

}  // namespace spattn::kernels
