#pragma once
// A 16-lane float vector for the flash kernels: AVX-512 intrinsics when the build targets
// AVX-512F, otherwise plain loops over 16 floats that the compiler vectorizes for whatever the
// target has (SSE2 on plain x86-64). Both paths compute the same operations in the same order;
// only the AVX-512 path fuses multiply-add (one rounding), so results differ between builds but
// never between runs or thread counts of one build.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#if defined(__GNUC__)
#define SPATTN_INLINE inline __attribute__((always_inline))
#else
#define SPATTN_INLINE inline
#endif

namespace spattn::kernels {

inline constexpr int kLanes = 16;
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp() below clamps its argument here: e^-87 ~ 1.6e-38 is still a normal float, so no
// denormals (slow on x86) ever reach the P V products. Callers only pass x <= 0 (logit minus a
// running max), and zero the masked lanes explicitly.
inline constexpr float kExpMin = -87.0f;

#if defined(__AVX512F__)

struct VF {
  __m512 v;
};
SPATTN_INLINE VF load(const float* p) {
  return {_mm512_loadu_ps(p)};
}
SPATTN_INLINE void store(float* p, VF a) {
  _mm512_storeu_ps(p, a.v);
}
SPATTN_INLINE VF bcast(float x) {
  return {_mm512_set1_ps(x)};
}
SPATTN_INLINE VF zero() {
  return {_mm512_setzero_ps()};
}
SPATTN_INLINE VF fma(VF a, VF b, VF c) {
  return {_mm512_fmadd_ps(a.v, b.v, c.v)};
}
SPATTN_INLINE VF add(VF a, VF b) {
  return {_mm512_add_ps(a.v, b.v)};
}
SPATTN_INLINE VF sub(VF a, VF b) {
  return {_mm512_sub_ps(a.v, b.v)};
}
SPATTN_INLINE VF mul(VF a, VF b) {
  return {_mm512_mul_ps(a.v, b.v)};
}
SPATTN_INLINE VF div(VF a, VF b) {
  return {_mm512_div_ps(a.v, b.v)};
}
// max(a, b); when b is NaN the result is NaN (x86 returns the second operand on NaN). The
// all-ones mask forms here avoid gcc 12's false -Wmaybe-uninitialized on the undefined
// pass-through operand of the unmasked intrinsics (max, roundscale, scalef).
SPATTN_INLINE VF max(VF a, VF b) {
  return {_mm512_mask_max_ps(a.v, 0xFFFF, a.v, b.v)};
}
// Lanes whose bit in `keep` is clear become -inf.
SPATTN_INLINE VF keep_or_neginf(std::uint16_t keep, VF a) {
  return {_mm512_mask_blend_ps(keep, _mm512_set1_ps(kNegInf), a.v)};
}
// Lanes whose bit in `keep` is clear become 0.
SPATTN_INLINE VF keep_or_zero(std::uint16_t keep, VF a) {
  return {_mm512_maskz_mov_ps(keep, a.v)};
}
// -inf lanes become 0 (a fully masked row's max: subtracting it must not give -inf - -inf).
SPATTN_INLINE VF neginf_to_zero(VF a) {
  const __mmask16 is_inf = _mm512_cmp_ps_mask(a.v, _mm512_set1_ps(kNegInf), _CMP_EQ_OQ);
  return {_mm512_maskz_mov_ps(static_cast<__mmask16>(~is_inf), a.v)};
}

// |a|, min(a, b) and a - b * c (one rounding), for the score modifications.
SPATTN_INLINE VF abs(VF a) {
  return {_mm512_abs_ps(a.v)};
}
SPATTN_INLINE VF min(VF a, VF b) {
  return {_mm512_mask_min_ps(a.v, 0xFFFF, a.v, b.v)};
}
SPATTN_INLINE VF fnma(VF a, VF b, VF c) {
  return {_mm512_fnmadd_ps(a.v, b.v, c.v)};
}

// e^x for x <= 0 (x = -inf allowed: gives e^-87). Range reduction x = n ln2 + r, |r| <= ln2/2,
// with ln2 split in two so that n ln2 is exact; degree-6 Taylor polynomial for e^r (truncation
// error r^7/7! <= 1.2e-7 relative); 2^n applied with scalef. 12 vector instructions.
SPATTN_INLINE VF exp(VF x) {
  const __m512 xc = max(bcast(kExpMin), x).v;
  const __m512 xl = _mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f));
  const __m512 n =
      _mm512_mask_roundscale_ps(xl, 0xFFFF, xl, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return {_mm512_mask_scalef_ps(p, 0xFFFF, p, n)};
}

#else  // portable

struct VF {
  float v[kLanes];
};
SPATTN_INLINE VF load(const float* p) {
  VF r;
  std::memcpy(r.v, p, sizeof r.v);
  return r;
}
SPATTN_INLINE void store(float* p, VF a) {
  std::memcpy(p, a.v, sizeof a.v);
}
SPATTN_INLINE VF bcast(float x) {
  VF r;
  for (int i = 0; i < kLanes; ++i) r.v[i] = x;
  return r;
}
SPATTN_INLINE VF zero() {
  return bcast(0.0f);
}
SPATTN_INLINE VF fma(VF a, VF b, VF c) {
  for (int i = 0; i < kLanes; ++i) c.v[i] = a.v[i] * b.v[i] + c.v[i];
  return c;
}
SPATTN_INLINE VF add(VF a, VF b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] += b.v[i];
  return a;
}
SPATTN_INLINE VF sub(VF a, VF b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] -= b.v[i];
  return a;
}
SPATTN_INLINE VF mul(VF a, VF b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] *= b.v[i];
  return a;
}
SPATTN_INLINE VF div(VF a, VF b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] /= b.v[i];
  return a;
}
SPATTN_INLINE VF max(VF a, VF b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
  return a;
}
SPATTN_INLINE VF keep_or_neginf(std::uint16_t keep, VF a) {
  for (int i = 0; i < kLanes; ++i)
    if (!((keep >> i) & 1u)) a.v[i] = kNegInf;
  return a;
}
SPATTN_INLINE VF keep_or_zero(std::uint16_t keep, VF a) {
  for (int i = 0; i < kLanes; ++i)
    if (!((keep >> i) & 1u)) a.v[i] = 0.0f;
  return a;
}
SPATTN_INLINE VF neginf_to_zero(VF a) {
  for (int i = 0; i < kLanes; ++i)
    if (a.v[i] == kNegInf) a.v[i] = 0.0f;
  return a;
}
SPATTN_INLINE VF abs(VF a) {
  for (int i = 0; i < kLanes; ++i) a.v[i] = std::fabs(a.v[i]);
  return a;
}
SPATTN_INLINE VF min(VF a, VF b) {
  for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
  return a;
}
SPATTN_INLINE VF fnma(VF a, VF b, VF c) {
  for (int i = 0; i < kLanes; ++i) c.v[i] = c.v[i] - a.v[i] * b.v[i];
  return c;
}

// Same algorithm as the AVX-512 path; 2^n is built in the exponent bits (n >= -126 after the
// clamp, so the result stays normal).
SPATTN_INLINE VF exp(VF x) {
  VF out;
  for (int i = 0; i < kLanes; ++i) {
    const float xc = kExpMin > x.v[i] ? kExpMin : x.v[i];
    const float n = std::nearbyint(xc * 1.44269504088896341f);
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    // NaN stays NaN through p; keep the int conversion defined.
    const std::int32_t bits = n == n ? (static_cast<std::int32_t>(n) + 127) << 23 : 127 << 23;
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    out.v[i] = p * scale;
  }
  return out;
}

#endif

// tanh(x): Eigen's rational approximation (odd degree-13 over even degree-6 polynomial, a few
// ulp), the argument clamped to +-7.9988 where tanh is 1 to float precision; NaN stays NaN.
// Portable: same operations in the same order.
SPATTN_INLINE VF tanh(VF x) {
  const VF c = min(max(x, bcast(-7.99881172180175781f)), bcast(7.99881172180175781f));
  const VF x2 = mul(c, c);
  VF p = fma(x2, bcast(-2.76076847742355e-16f), bcast(2.00018790482477e-13f));
  p = fma(x2, p, bcast(-8.60467152213735e-11f));
  p = fma(x2, p, bcast(5.12229709037114e-08f));
  p = fma(x2, p, bcast(1.48572235717979e-05f));
  p = fma(x2, p, bcast(6.37261928875436e-04f));
  p = fma(x2, p, bcast(4.89352455891786e-03f));
  p = mul(c, p);
  VF q = fma(x2, bcast(1.19825839466702e-06f), bcast(1.18534705686654e-04f));
  q = fma(x2, q, bcast(2.26843463243900e-03f));
  q = fma(x2, q, bcast(4.89352518554385e-03f));
  return div(p, q);
}

}  // namespace spattn::kernels
