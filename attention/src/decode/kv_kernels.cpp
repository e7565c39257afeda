#include "kv_kernels.hpp"

#include <bit>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
// gcc 12 warns inside its own AVX-512 intrinsics, whose pass-through operand is left undefined
// on purpose (gcc bug 105593), when they are inlined into target-attribute functions.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define SPATTN_X86 1
#define SPATTN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define SPATTN_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))
#endif

#if defined(__GNUC__)
#define SPATTN_KINLINE inline __attribute__((always_inline))
#else
#define SPATTN_KINLINE inline
#endif

namespace spattn::decode {
namespace {

struct F32 {
  using T = float;
  static SPATTN_KINLINE float get(T x) { return x; }
};
struct BF16 {
  using T = std::uint16_t;
  static SPATTN_KINLINE float get(T x) {
    return std::bit_cast<float>(static_cast<std::uint32_t>(x) << 16);
  }
};
struct I8 {
  using T = std::int8_t;
  static SPATTN_KINLINE float get(T x) { return static_cast<float>(x); }
};

// 16 partial sums in lanes, added in a fixed order: vectorizes without reassociation.
template <class E, bool Scaled>
SPATTN_KINLINE void dot_loop(const DotQuery& q, const KVRows& k, int n, float* out) {
  const int d = q.d;
  for (int j = 0; j < n; ++j) {
    const auto* r = static_cast<const typename E::T*>(k.rows) + j * k.row_stride;
    float acc[16] = {};
    int x = 0;
    for (; x + 16 <= d; x += 16)
      for (int l = 0; l < 16; ++l) acc[l] += q.q[x + l] * E::get(r[x + l]);
    float s = 0;
    for (int l = 0; l < 16; ++l) s += acc[l];
    for (; x < d; ++x) s += q.q[x] * E::get(r[x]);
    out[j] = Scaled ? s * k.scales[j * k.scale_stride] : s;
  }
}

template <class E, bool Scaled>
SPATTN_KINLINE void axpy_loop(float* o, const float* p, const KVRows& v, int n, int d) {
  for (int j = 0; j < n; ++j) {
    if (p[j] == 0.0f) continue;
    const auto* r = static_cast<const typename E::T*>(v.rows) + j * v.row_stride;
    const float w = Scaled ? p[j] * v.scales[j * v.scale_stride] : p[j];
    for (int x = 0; x < d; ++x) o[x] += w * E::get(r[x]);
  }
}

#define SPATTN_DECODE_KERNELS(suffix, attr)                                               \
  attr void dot_f32_##suffix(const DotQuery& q, const KVRows& k, int n, float* out) {     \
    dot_loop<F32, false>(q, k, n, out);                                                   \
  }                                                                                       \
  attr void dot_bf16_##suffix(const DotQuery& q, const KVRows& k, int n, float* out) {    \
    dot_loop<BF16, false>(q, k, n, out);                                                  \
  }                                                                                       \
  attr void dot_i8_##suffix(const DotQuery& q, const KVRows& k, int n, float* out) {      \
    dot_loop<I8, true>(q, k, n, out);                                                     \
  }                                                                                       \
  attr void axpy_f32_##suffix(float* o, const float* p, const KVRows& v, int n, int d) {  \
    axpy_loop<F32, false>(o, p, v, n, d);                                                 \
  }                                                                                       \
  attr void axpy_bf16_##suffix(float* o, const float* p, const KVRows& v, int n, int d) { \
    axpy_loop<BF16, false>(o, p, v, n, d);                                                \
  }                                                                                       \
  attr void axpy_i8_##suffix(float* o, const float* p, const KVRows& v, int n, int d) {   \
    axpy_loop<I8, true>(o, p, v, n, d);                                                   \
  }

SPATTN_DECODE_KERNELS(portable, )
#if defined(SPATTN_X86)
SPATTN_DECODE_KERNELS(avx512, SPATTN_AVX512)

// Sum of the 16 lanes in a fixed tree order.
SPATTN_AVX512 inline float hsum(__m512 a) {
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  x = _mm_hadd_ps(x, x);
  x = _mm_hadd_ps(x, x);
  return _mm_cvtss_f32(x);
}

// Whole 16-lane vectors per key row (d a multiple of 16; otherwise the loop versions).
SPATTN_AVX512 void dot_f32_zmm(const DotQuery& q, const KVRows& k, int n, float* out) {
  if (q.d % 16 != 0) return dot_f32_avx512(q, k, n, out);
  for (int j = 0; j < n; ++j) {
    const float* r = static_cast<const float*>(k.rows) + j * k.row_stride;
    __m512 acc = _mm512_setzero_ps();
    for (int x = 0; x < q.d; x += 16)
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(q.q + x), _mm512_loadu_ps(r + x), acc);
    out[j] = hsum(acc);
  }
}

SPATTN_AVX512 void dot_i8_zmm(const DotQuery& q, const KVRows& k, int n, float* out) {
  if (q.d % 16 != 0) return dot_i8_avx512(q, k, n, out);
  for (int j = 0; j < n; ++j) {
    const std::int8_t* r = static_cast<const std::int8_t*>(k.rows) + j * k.row_stride;
    __m512 acc = _mm512_setzero_ps();
    for (int x = 0; x < q.d; x += 16) {
      const __m512 kv = _mm512_cvtepi32_ps(
          _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(r + x))));
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(q.q + x), kv, acc);
    }
    out[j] = hsum(acc) * k.scales[j * k.scale_stride];
  }
}

// vdpbf16ps: each lane adds k[2l] q[2l] + k[2l+1] q[2l+1]; the query in two halves hi + lo.
SPATTN_AVX512BF16 void dot_bf16_dpbf16(const DotQuery& q, const KVRows& k, int n, float* out) {
  if (q.d % 32 != 0) return dot_bf16_avx512(q, k, n, out);
  const int d = q.d;
  for (int j = 0; j < n; ++j) {
    const auto* r = static_cast<const std::uint16_t*>(k.rows) + j * k.row_stride;
    __m512 acc = _mm512_setzero_ps();
    for (int x = 0; x < d; x += 32) {
      const __m512bh kv = (__m512bh)_mm512_loadu_si512(r + x);
      acc = _mm512_dpbf16_ps(acc, kv, (__m512bh)_mm512_loadu_si512(q.hi + x));
      acc = _mm512_dpbf16_ps(acc, kv, (__m512bh)_mm512_loadu_si512(q.lo + x));
    }
    out[j] = hsum(acc);
  }
}
#endif

}  // namespace

KVKernels kv_kernels(KVDtype dtype, KernelChoice choice) {
  bool avx512 = false, bf16 = false;
#if defined(SPATTN_X86)
  if (choice == KernelChoice::Auto) {
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  }
#endif
  (void)choice;
  switch (dtype) {
    case KVDtype::F32:
#if defined(SPATTN_X86)
      if (avx512) return {dot_f32_zmm, axpy_f32_avx512, "f32-avx512"};
#endif
      return {dot_f32_portable, axpy_f32_portable, "f32-portable"};
    case KVDtype::BF16:
#if defined(SPATTN_X86)
      if (bf16) return {dot_bf16_dpbf16, axpy_bf16_avx512, "bf16-avx512bf16"};
      if (avx512) return {dot_bf16_avx512, axpy_bf16_avx512, "bf16-avx512"};
#endif
      return {dot_bf16_portable, axpy_bf16_portable, "bf16-portable"};
    case KVDtype::Int8:
#if defined(SPATTN_X86)
      if (avx512) return {dot_i8_zmm, axpy_i8_avx512, "int8-avx512"};
#endif
      return {dot_i8_portable, axpy_i8_portable, "int8-portable"};
  }
  return {};
}

}  // namespace spattn::decode
