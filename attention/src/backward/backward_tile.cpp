// Register-blocked kernels of one backward step (see backward_tile.hpp for the orientation).
//
// Blocking, for 32 vector registers: every product is a block of 6 rows x 4 vectors (24
// accumulators; per step 4 vector loads and 6 broadcasts for 24 FMAs), the forward's shapes.
// The scores take two passes over the tile: S = Q (scale K)^T is stored, then each dP = dO V^T
// block forms P and dS in registers from it and stores them (one block holding S and dP
// together, 48 accumulators, would spill). The accumulators of dK, dV and dQ live in memory
// between steps.
#include "backward_tile.hpp"

#include "../kernels/score_mod.hpp"
#include "../kernels/simd.hpp"

namespace spattn::kernels {
namespace {

constexpr int kScoreRows = 6;  // scores block: query rows
constexpr int kKeyVecs = 4;    // scores block: key vectors
constexpr int kGradRows = 6;   // gradient block: output rows (keys of dK/dV, queries of dQ)
constexpr int kDimVecs = 4;    // gradient block: head-dim vectors

int padded_keys(int keys) {
  return (keys + kLanes - 1) / kLanes * kLanes;
}

// Allowed lanes of row a, key vector n: the tile's mask, keys beyond the tile cleared.
SPATTN_INLINE std::uint16_t keep_bits(const BackwardTile& t, int a, int n) {
  unsigned keep = 0xFFFFu;
  const int left = t.keys - n * kLanes;
  if (left < kLanes) keep = (1u << left) - 1u;
  if (t.mask != nullptr)
    keep &= static_cast<unsigned>(t.mask[a * t.mask_words + (n >> 2)] >> (16 * (n & 3)));
  return static_cast<std::uint16_t>(keep);
}

// Rows a0..a0+Y-1 x key vectors n0..n0+NV-1 of A B^T: A's rows broadcast (a + y * a_stride),
// B^T's rows loaded (bt + p * kw + n * 16), for p < d.
template <int Y, int NV>
SPATTN_INLINE void product_block(const float* a, std::int64_t a_stride, const float* bt, int kw,
                                 int d, VF (&acc)[Y][NV]) {
  for (int y = 0; y < Y; ++y)
    for (int n = 0; n < NV; ++n) acc[y][n] = zero();
  for (int p = 0; p < d; ++p, bt += kw) {
    VF bv[NV];
    for (int n = 0; n < NV; ++n) bv[n] = load(bt + n * kLanes);
    for (int y = 0; y < Y; ++y) {
      const VF ab = bcast(a[y * a_stride + p]);
      for (int n = 0; n < NV; ++n) acc[y][n] = fma(ab, bv[n], acc[y][n]);
    }
  }
}

// First pass: S = Q (scale K)^T of the block into t.p.
template <int Y, int NV>
SPATTN_INLINE void s_block(const BackwardTile& t, int kw, int a0, int n0) {
  VF s[Y][NV];
  product_block<Y, NV>(t.q + a0 * t.q_stride, t.q_stride, t.kt + n0 * kLanes, kw, t.d, s);
  for (int y = 0; y < Y; ++y)
    for (int n = 0; n < NV; ++n) store(t.p + (a0 + y) * kw + (n0 + n) * kLanes, s[y][n]);
}

// Second pass: dP = dO V^T of the block in registers; with S from the first pass, P and dS
// stored (P over S in t.p).
template <int Y, int NV, bool MOD>
SPATTN_INLINE void dp_block(const BackwardTile& t, int kw, int a0, int n0) {
  VF g[Y][NV];
  product_block<Y, NV>(t.d_o + a0 * t.do_stride, t.do_stride, t.vt + n0 * kLanes, kw, t.d, g);
  for (int y = 0; y < Y; ++y) {
    const int a = a0 + y;
    const float lse = t.lse[a];
    const bool dead = lse == kNegInf;  // a fully masked row: P = 0
    const VF m = bcast(dead ? 0.0f : lse);
    const VF delta = bcast(t.delta[a]);
    for (int n = 0; n < NV; ++n) {
      float* pp = t.p + a * kw + (n0 + n) * kLanes;
      VF z = load(pp);
      VF th = z;
      if constexpr (MOD) {
        if (t.cap > 0.0f) {
          th = tanh(mul(z, bcast(1.0f / t.cap)));
          z = mul(bcast(t.cap), th);
        }
        if (t.slope != 0.0f) {
          const VF kpos = add(bcast(static_cast<float>(t.kpos0 + (n0 + n) * kLanes)), lane_iota());
          const VF dist = abs(sub(bcast(static_cast<float>(t.qpos0 + a)), kpos));
          z = fnma(bcast(t.slope), dist, z);
        }
      }
      const std::uint16_t keep = dead ? 0 : keep_bits(t, a, n0 + n);
      const VF pr = keep_or_zero(keep, exp(sub(z, m)));
      VF dz = mul(pr, sub(g[y][n], delta));
      if constexpr (MOD)
        if (t.cap > 0.0f) dz = mul(dz, fnma(th, th, bcast(1.0f)));
      store(pp, pr);
      store(t.ds + a * kw + (n0 + n) * kLanes, dz);
    }
  }
}

template <int Y, int NV, bool MOD>
SPATTN_INLINE void score_block(const BackwardTile& t, int kw, int a0, int n0, bool second) {
  if (second)
    dp_block<Y, NV, MOD>(t, kw, a0, n0);
  else
    s_block<Y, NV>(t, kw, a0, n0);
}

template <int Y, bool MOD>
void score_rows(const BackwardTile& t, int kw, int a0, bool second) {
  const int vecs = kw / kLanes;
  for (int n0 = 0; n0 < vecs; n0 += kKeyVecs) {
    switch (vecs - n0 < kKeyVecs ? vecs - n0 : kKeyVecs) {
      case 4:
        score_block<Y, 4, MOD>(t, kw, a0, n0, second);
        break;
      case 3:
        score_block<Y, 3, MOD>(t, kw, a0, n0, second);
        break;
      case 2:
        score_block<Y, 2, MOD>(t, kw, a0, n0, second);
        break;
      default:
        score_block<Y, 1, MOD>(t, kw, a0, n0, second);
        break;
    }
  }
}

template <bool MOD>
void score_pass(const BackwardTile& t, int kw, bool second) {
  int a0 = 0;
  for (; a0 + kScoreRows <= t.rows; a0 += kScoreRows)
    score_rows<kScoreRows, MOD>(t, kw, a0, second);
  switch (t.rows - a0) {
    case 5:
      score_rows<5, MOD>(t, kw, a0, second);
      break;
    case 4:
      score_rows<4, MOD>(t, kw, a0, second);
      break;
    case 3:
      score_rows<3, MOD>(t, kw, a0, second);
      break;
    case 2:
      score_rows<2, MOD>(t, kw, a0, second);
      break;
    case 1:
      score_rows<1, MOD>(t, kw, a0, second);
      break;
    default:
      break;
  }
}

template <bool MOD>
void scores(const BackwardTile& t, int kw) {
  score_pass<MOD>(t, kw, false);
  score_pass<MOD>(t, kw, true);
}

// out[y][x] += sum_r w[r * w_rs + y * w_ys] * x[r * x_stride + x] for y < Y, NV vectors of x.
struct GradOperands {
  const float* w;
  std::int64_t w_rs, w_ys;
  const float* x;
  std::int64_t x_stride;
  int count;  // r < count
  float* out;
  std::int64_t out_stride;
};

template <int Y, int NV>
SPATTN_INLINE void grad_block(const GradOperands& g, int y0, int v0) {
  VF acc[Y][NV];
  float* out = g.out + y0 * g.out_stride + v0 * kLanes;
  for (int y = 0; y < Y; ++y)
    for (int n = 0; n < NV; ++n) acc[y][n] = load(out + y * g.out_stride + n * kLanes);
  const float* w = g.w + y0 * g.w_ys;
  const float* x = g.x + v0 * kLanes;
  for (int r = 0; r < g.count; ++r, w += g.w_rs, x += g.x_stride) {
    VF xv[NV];
    for (int n = 0; n < NV; ++n) xv[n] = load(x + n * kLanes);
    for (int y = 0; y < Y; ++y) {
      const VF wb = bcast(w[y * g.w_ys]);
      for (int n = 0; n < NV; ++n) acc[y][n] = fma(wb, xv[n], acc[y][n]);
    }
  }
  for (int y = 0; y < Y; ++y)
    for (int n = 0; n < NV; ++n) store(out + y * g.out_stride + n * kLanes, acc[y][n]);
}

template <int NV>
void grad_vectors(const GradOperands& g, int rows, int v0) {
  int y0 = 0;
  for (; y0 + kGradRows <= rows; y0 += kGradRows) grad_block<kGradRows, NV>(g, y0, v0);
  switch (rows - y0) {
    case 5:
      grad_block<5, NV>(g, y0, v0);
      break;
    case 4:
      grad_block<4, NV>(g, y0, v0);
      break;
    case 3:
      grad_block<3, NV>(g, y0, v0);
      break;
    case 2:
      grad_block<2, NV>(g, y0, v0);
      break;
    case 1:
      grad_block<1, NV>(g, y0, v0);
      break;
    default:
      break;
  }
}

// All `rows` output rows, all d / 16 head-dim vectors.
void grad(const GradOperands& g, int rows, int d) {
  const int vecs = d / kLanes;
  for (int v0 = 0; v0 < vecs; v0 += kDimVecs) {
    switch (vecs - v0 < kDimVecs ? vecs - v0 : kDimVecs) {
      case 4:
        grad_vectors<4>(g, rows, v0);
        break;
      case 3:
        grad_vectors<3>(g, rows, v0);
        break;
      case 2:
        grad_vectors<2>(g, rows, v0);
        break;
      default:
        grad_vectors<1>(g, rows, v0);
        break;
    }
  }
}

}  // namespace

void backward_step(const BackwardTile& t) {
  const int kw = padded_keys(t.keys);
  if (t.cap > 0.0f || t.slope != 0.0f)
    scores<true>(t, kw);
  else
    scores<false>(t, kw);
  // dV[j] += sum_a P[a][j] dO[a];  dK[j] += sum_a dS[a][j] Q[a];  dQ[a] += sum_j dS[a][j] K[j].
  grad({t.p, kw, 1, t.d_o, t.do_stride, t.rows, t.dv, t.d}, t.keys, t.d);
  grad({t.ds, kw, 1, t.q, t.q_stride, t.rows, t.dk, t.d}, t.keys, t.d);
  grad({t.ds, 1, kw, t.k, t.k_stride, t.keys, t.dq, t.dq_stride}, t.rows, t.d);
}

}  // namespace spattn::kernels
