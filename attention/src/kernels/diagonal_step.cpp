// The diagonal path's kernel (diagonal_step.hpp).
//
// Q K^T: blocks of 8 slots share each load of Q^T (9 loads per 8 FMAs, 8 independent chains).
// P V: blocks of 8 dims x 16 slots with the 16 probability vectors in registers (one V^T load
// per FMA, 8 independent chains).
#include "diagonal_step.hpp"

#include "simd.hpp"

namespace spattn::kernels {
namespace {

constexpr int kSlotBlock = 8;  // Q K^T: slots per register block
constexpr int kPvSlots = 16;   // P V: probability vectors held in registers
constexpr int kPvDims = 8;     // P V: dims per register block

template <int D, int Y, bool MOD>
SPATTN_INLINE void qk_block(const DiagonalStep& t, int y0, VF& tmax) {
  const int d = D > 0 ? D : t.d;
  const float* k[Y];
  for (int y = 0; y < Y; ++y) k[y] = t.kt + t.key0[y0 + y];
  VF acc[Y];
  for (int y = 0; y < Y; ++y) acc[y] = zero();
  for (int p = 0; p < d; ++p) {
    const VF q = load(t.qt + p * t.lanes);
    for (int y = 0; y < Y; ++y) acc[y] = fma(q, load(k[y] + p * t.t_stride), acc[y]);
  }
  for (int y = 0; y < Y; ++y) {
    if constexpr (MOD) {
      const ScoreLanes& md = *t.mod;
      if (md.alibi) {
        const VF key = add(bcast(static_cast<float>(t.key0[y0 + y])), lane_iota());
        acc[y] = modify_scores(md, acc[y], abs(sub(load(md.qpos), key)), load(md.slope));
      } else {
        acc[y] = modify_scores(md, acc[y], acc[y], acc[y]);
      }
      if (md.bias != nullptr) acc[y] = add(acc[y], load(md.bias + (y0 + y) * kLanes));
    }
    const VF s = keep_or_neginf(t.keep[y0 + y], acc[y]);
    store(t.s + (y0 + y) * kLanes, s);
    tmax = max(tmax, s);
  }
}

template <int D, bool MOD>
VF qk(const DiagonalStep& t) {
  VF tmax = bcast(kNegInf);
  int y0 = 0;
  for (; y0 + kSlotBlock <= t.slots; y0 += kSlotBlock) qk_block<D, kSlotBlock, MOD>(t, y0, tmax);
  switch (t.slots - y0) {
    case 7:
      qk_block<D, 7, MOD>(t, y0, tmax);
      break;
    case 6:
      qk_block<D, 6, MOD>(t, y0, tmax);
      break;
    case 5:
      qk_block<D, 5, MOD>(t, y0, tmax);
      break;
    case 4:
      qk_block<D, 4, MOD>(t, y0, tmax);
      break;
    case 3:
      qk_block<D, 3, MOD>(t, y0, tmax);
      break;
    case 2:
      qk_block<D, 2, MOD>(t, y0, tmax);
      break;
    case 1:
      qk_block<D, 1, MOD>(t, y0, tmax);
      break;
    default:
      break;
  }
  return tmax;
}

// O^T rows x0..x0+X-1 (+)= P[y0..y0+Y) V^T; alpha scales the old O^T on the first slot block.
template <int X, int Y>
SPATTN_INLINE void pv_block(const DiagonalStep& t, int x0, int y0, const VF* a) {
  VF pv[Y];
  const float* v[Y];
  for (int y = 0; y < Y; ++y) {
    pv[y] = load(t.s + (y0 + y) * kLanes);
    v[y] = t.vt + t.key0[y0 + y] + x0 * t.t_stride;
  }
  VF acc[X];
  for (int x = 0; x < X; ++x) {
    acc[x] = load(t.ot + (x0 + x) * t.lanes);
    if (a != nullptr) acc[x] = mul(acc[x], *a);
  }
  for (int y = 0; y < Y; ++y)
    for (int x = 0; x < X; ++x) acc[x] = fma(pv[y], load(v[y] + x * t.t_stride), acc[x]);
  for (int x = 0; x < X; ++x) store(t.ot + (x0 + x) * t.lanes, acc[x]);
}

template <int X>
void pv_dims(const DiagonalStep& t, int x0, const VF& alpha) {
  int y0 = 0;
  const VF* a = &alpha;
  for (; y0 + kPvSlots <= t.slots; y0 += kPvSlots, a = nullptr) pv_block<X, kPvSlots>(t, x0, y0, a);
  for (; y0 < t.slots; ++y0, a = nullptr) pv_block<X, 1>(t, x0, y0, a);
}

template <int D>
void pv(const DiagonalStep& t, const VF& alpha) {
  const int d = D > 0 ? D : (t.dv > 0 ? t.dv : t.d);  // D > 0 only when dv = d
  int x0 = 0;
  for (; x0 + kPvDims <= d; x0 += kPvDims) pv_dims<kPvDims>(t, x0, alpha);
  for (; x0 < d; ++x0) pv_dims<1>(t, x0, alpha);
}

template <int D, bool MOD>
void step(const DiagonalStep& t) {
  const VF tmax = qk<D, MOD>(t);
  const VF m_old = load(t.m);
  const VF m_new = max(m_old, tmax);
  const VF m_use = neginf_to_zero(m_new);
  const VF alpha = exp(sub(m_old, m_use));
  store(t.m, m_new);
  VF sum = zero();
  for (int y = 0; y < t.slots; ++y) {
    const VF p = keep_or_zero(t.keep[y], exp(sub(load(t.s + y * kLanes), m_use)));
    store(t.s + y * kLanes, p);
    sum = add(sum, p);
  }
  store(t.l, fma(load(t.l), alpha, sum));
  pv<D>(t, alpha);
}

template <bool MOD>
void step_d(const DiagonalStep& t) {
  if (t.dv > 0 && t.dv != t.d) {
    step<0, MOD>(t);
    return;
  }
  switch (t.d) {
    case 64:
      step<64, MOD>(t);
      break;
    case 128:
      step<128, MOD>(t);
      break;
    default:
      step<0, MOD>(t);
      break;
  }
}

}  // namespace

void diagonal_step(const DiagonalStep& t) {
  if (t.mod != nullptr)
    step_d<true>(t);
  else
    step_d<false>(t);
}

}  // namespace spattn::kernels
