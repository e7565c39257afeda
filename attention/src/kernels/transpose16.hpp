#pragma once
// Transposes 16 rows into 16 lanes: out[c * out_stride + lane] = scale * rows[lane][c] for
// c < cols (16 keys' rows into the diagonal path's transposed K and V); a null row gives zeros.
// With AVX-512, full 16 x 16 blocks are transposed in registers (4 shuffle stages); the rest,
// and other builds, go element by element. The masked intrinsic forms (all lanes set) avoid
// gcc 12's false -Wmaybe-uninitialized on the unmasked ones' undefined pass-through operand.
#include <cstdint>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace spattn::kernels {

inline void transpose16(const float* const rows[16], int cols, float scale, float* out,
                        std::int64_t out_stride = 16) {
  int c0 = 0;
#if defined(__AVX512F__)
  bool all_rows = true;
  for (int i = 0; i < 16; ++i) all_rows = all_rows && rows[i] != nullptr;
  if (all_rows) {
    const __m512 s = _mm512_set1_ps(scale);
    for (; c0 + 16 <= cols; c0 += 16) {
      __m512 r[16], t[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(rows[i] + c0);
      // Stage 1: interleave pairs of rows (32-bit elements).
      for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_mask_unpacklo_ps(r[i], 0xFFFF, r[i], r[i + 1]);
        t[i + 1] = _mm512_mask_unpackhi_ps(r[i], 0xFFFF, r[i], r[i + 1]);
      }
      // Stage 2: 64-bit pairs of the interleaved rows.
      for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_mask_shuffle_ps(t[i], 0xFFFF, t[i], t[i + 2], 0x44);
        r[i + 1] = _mm512_mask_shuffle_ps(t[i], 0xFFFF, t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm512_mask_shuffle_ps(t[i + 1], 0xFFFF, t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm512_mask_shuffle_ps(t[i + 1], 0xFFFF, t[i + 1], t[i + 3], 0xEE);
      }
      // Stages 3 and 4: 128-bit lanes across groups of 4 and 8 rows.
      for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_mask_shuffle_f32x4(r[i], 0xFFFF, r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_mask_shuffle_f32x4(r[i], 0xFFFF, r[i], r[i + 4], 0xDD);
        t[i + 8] = _mm512_mask_shuffle_f32x4(r[i + 8], 0xFFFF, r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_mask_shuffle_f32x4(r[i + 8], 0xFFFF, r[i + 8], r[i + 12], 0xDD);
      }
      for (int i = 0; i < 4; ++i) {
        r[i] = _mm512_mask_shuffle_f32x4(t[i], 0xFFFF, t[i], t[i + 8], 0x88);
        r[i + 8] = _mm512_mask_shuffle_f32x4(t[i], 0xFFFF, t[i], t[i + 8], 0xDD);
        r[i + 4] = _mm512_mask_shuffle_f32x4(t[i + 4], 0xFFFF, t[i + 4], t[i + 12], 0x88);
        r[i + 12] = _mm512_mask_shuffle_f32x4(t[i + 4], 0xFFFF, t[i + 4], t[i + 12], 0xDD);
      }
      // r[k] now holds column c0 + k, lane i from row i.
      for (int k = 0; k < 16; ++k)
        _mm512_storeu_ps(out + (c0 + k) * out_stride, _mm512_mul_ps(r[k], s));
    }
  }
#endif
  for (int c = c0; c < cols; ++c)
    for (int i = 0; i < 16; ++i)
      out[c * out_stride + i] = rows[i] != nullptr ? rows[i][c] * scale : 0.0f;
}

}  // namespace spattn::kernels
