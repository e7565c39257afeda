// The residue-track kernel (track_step.hpp).
#include "track_step.hpp"

#include "simd.hpp"

namespace spattn::kernels {
namespace {

constexpr int kB = kTrackMaxKeys;

// S for query vectors [0, A) and key vectors [b0, b0 + Bn): A x Bn accumulators.
template <int D, int A, int Bn, bool MOD>
SPATTN_INLINE void qk_block(const TrackStep& t, int b0) {
  const int d = D > 0 ? D : t.d;
  const float* k[Bn];
  for (int b = 0; b < Bn; ++b) k[b] = t.k[b0 + b];
  VF acc[A][Bn];
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < Bn; ++b) acc[a][b] = zero();
  for (int p = 0; p < d; ++p) {
    VF q[A];
    for (int a = 0; a < A; ++a) q[a] = load(t.qt[a] + p * kLanes);
    for (int b = 0; b < Bn; ++b) {
      const VF kv = load(k[b] + p * t.kv_stride);
      for (int a = 0; a < A; ++a) acc[a][b] = fma(q[a], kv, acc[a][b]);
    }
  }
  if constexpr (MOD)
    for (int a = 0; a < A; ++a)
      for (int b = 0; b < Bn; ++b) {
        const float dist = t.qpos0[a] - t.kpos0[b0 + b];
        acc[a][b] =
            modify_scores(*t.mod, acc[a][b], bcast(dist < 0 ? -dist : dist), bcast(t.slope));
        if (t.mod->bias != nullptr)
          acc[a][b] = add(acc[a][b], load(t.mod->bias + (a * kB + b0 + b) * kLanes));
      }
  for (int a = 0; a < A; ++a)
    for (int b = 0; b < Bn; ++b)
      store(t.s + (a * kB + b0 + b) * kLanes, keep_or_neginf(t.keep[a][b0 + b], acc[a][b]));
}

template <int D, int A, bool MOD>
void qk(const TrackStep& t) {
  int b0 = 0;
  for (; b0 + 4 <= t.keys; b0 += 4) qk_block<D, A, 4, MOD>(t, b0);
  switch (t.keys - b0) {
    case 3:
      qk_block<D, A, 3, MOD>(t, b0);
      break;
    case 2:
      qk_block<D, A, 2, MOD>(t, b0);
      break;
    case 1:
      qk_block<D, A, 1, MOD>(t, b0);
      break;
    default:
      break;
  }
}

// O^T rows x0..x0+X-1 of query vectors [0, A) = alpha O^T + sum_b P V^T.
template <int A, int X>
SPATTN_INLINE void pv_block(const TrackStep& t, int x0, const VF* alpha) {
  VF acc[A][X];
  for (int a = 0; a < A; ++a)
    for (int x = 0; x < X; ++x) acc[a][x] = mul(load(t.ot[a] + (x0 + x) * kLanes), alpha[a]);
  for (int b = 0; b < t.keys; ++b) {
    VF pv[A];
    for (int a = 0; a < A; ++a) pv[a] = load(t.s + (a * kB + b) * kLanes);
    const float* v = t.v[b] + x0 * t.kv_stride;
    for (int x = 0; x < X; ++x) {
      const VF vv = load(v + x * t.kv_stride);
      for (int a = 0; a < A; ++a) acc[a][x] = fma(pv[a], vv, acc[a][x]);
    }
  }
  for (int a = 0; a < A; ++a)
    for (int x = 0; x < X; ++x) store(t.ot[a] + (x0 + x) * kLanes, acc[a][x]);
}

template <int D, int A>
void pv(const TrackStep& t, const VF* alpha) {
  const int d = D > 0 ? D : (t.dv > 0 ? t.dv : t.d);  // D > 0 only when dv = d
  int x0 = 0;
  for (; x0 + 4 <= d; x0 += 4) pv_block<A, 4>(t, x0, alpha);
  if constexpr (D == 0)  // 64 and 128 are multiples of 4
    for (; x0 < d; ++x0) pv_block<A, 1>(t, x0, alpha);
}

template <int D, int A, bool MOD>
void step(const TrackStep& t) {
  qk<D, A, MOD>(t);
  VF alpha[A];
  for (int a = 0; a < A; ++a) {
    VF tmax = bcast(kNegInf);
    for (int b = 0; b < t.keys; ++b) tmax = max(tmax, load(t.s + (a * kB + b) * kLanes));
    const VF m_old = load(t.m[a]);
    const VF m_new = max(m_old, tmax);
    const VF m_use = neginf_to_zero(m_new);
    alpha[a] = exp(sub(m_old, m_use));
    store(t.m[a], m_new);
    VF sum = zero();
    for (int b = 0; b < t.keys; ++b) {
      float* s = t.s + (a * kB + b) * kLanes;
      const VF p = keep_or_zero(t.keep[a][b], exp(sub(load(s), m_use)));
      store(s, p);
      sum = add(sum, p);
    }
    store(t.l[a], fma(load(t.l[a]), alpha[a], sum));
  }
  pv<D, A>(t, alpha);
}

template <int D, bool MOD>
void step_d(const TrackStep& t) {
  switch (t.queries) {
    case 4:
      step<D, 4, MOD>(t);
      break;
    case 3:
      step<D, 3, MOD>(t);
      break;
    case 2:
      step<D, 2, MOD>(t);
      break;
    default:
      step<D, 1, MOD>(t);
      break;
  }
}

template <bool MOD>
void step_dim(const TrackStep& t) {
  if (t.dv > 0 && t.dv != t.d) {
    step_d<0, MOD>(t);
    return;
  }
  switch (t.d) {
    case 64:
      step_d<64, MOD>(t);
      break;
    case 128:
      step_d<128, MOD>(t);
      break;
    default:
      step_d<0, MOD>(t);
      break;
  }
}

}  // namespace

void track_step(const TrackStep& t) {
  if (t.mod != nullptr)
    step_dim<true>(t);
  else
    step_dim<false>(t);
}

}  // namespace spattn::kernels
