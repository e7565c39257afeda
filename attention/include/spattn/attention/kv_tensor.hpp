#pragma once
// Keys and values in float32, bfloat16 or int8 with one float scale per token, for the decode
// path (decode.hpp) and the KV cache (kvcache/).
//
// A KVView is a strided [B, H, N, d] view whose rows are contiguous (the d elements of a token
// are adjacent) in one of three element types:
//   F32   float, the value itself;
//   BF16  uint16 holding the upper half of a float32 (round to nearest even), value = bits << 16;
//   Int8  int8 q with a float scale per token s(b, h, n): value = s * q, s = max|x| / 127
//         (symmetric, per token; a token of zeros has s = 0).
// Queries and every accumulation stay float32; only K and V are stored narrow.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "spattn/attention/tensor.hpp"

namespace spattn {

enum class KVDtype { F32, BF16, Int8 };

// "f32", "bf16", "int8".
const char* kv_dtype_name(KVDtype t);
// Parses a name of kv_dtype_name; throws UsageError naming `where`, the value and the choices.
KVDtype parse_kv_dtype(std::string_view name, std::string_view where = "--kv-dtype");
// Bytes of one element (4, 2, 1); Int8 tokens also carry a 4-byte scale (kv_row_bytes).
int kv_element_bytes(KVDtype t);
// Bytes one token row of d elements occupies, scale included.
std::int64_t kv_row_bytes(KVDtype t, std::int64_t d);

// float -> bfloat16 bits, round to nearest even (NaN stays NaN); bfloat16 bits -> float.
std::uint16_t float_to_bf16(float x);
float bf16_to_float(std::uint16_t b);

struct KVView {
  KVDtype dtype = KVDtype::F32;
  const void* data = nullptr;            // first element, of the dtype's storage type
  std::array<std::int64_t, 4> shape{};   // B, H, N, d
  std::array<std::int64_t, 3> stride{};  // elements between neighbours along B, H, N (d: 1)
  const float* scales = nullptr;         // Int8: scale of (b, h, n) at b*ss[0] + h*ss[1] + n*ss[2]
  std::array<std::int64_t, 3> scale_stride{};

  std::int64_t batch() const { return shape[0]; }
  std::int64_t heads() const { return shape[1]; }
  std::int64_t tokens() const { return shape[2]; }
  std::int64_t dim() const { return shape[3]; }
  // Address of row (b, h, n), in bytes from nothing: cast to the storage type.
  const void* row(std::int64_t b, std::int64_t h, std::int64_t n) const {
    const std::int64_t off = b * stride[0] + h * stride[1] + n * stride[2];
    return static_cast<const char*>(data) + off * kv_element_bytes(dtype);
  }
  float scale(std::int64_t b, std::int64_t h, std::int64_t n) const {
    return scales[b * scale_stride[0] + h * scale_stride[1] + n * scale_stride[2]];
  }
  // Element (b, h, n, x) as float (slow; for references and tests).
  float value(std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t x) const;
  std::string shape_string() const;
};

// A float32 view as a KVView (no copy). Throws UsageError when its rows are not contiguous.
KVView kv_view(const ConstTensorView& t, const char* what = "K/V");

// An owning C-order [B, H, N, d] tensor in one dtype.
struct KVTensor {
  KVDtype dtype = KVDtype::F32;
  std::array<std::int64_t, 4> shape{};
  std::vector<float> f32;
  std::vector<std::uint16_t> bf16;
  std::vector<std::int8_t> i8;
  std::vector<float> scales;  // Int8: [B, H, N]

  KVView view() const;
  std::int64_t bytes() const;  // storage held, scales included
};

// Stores one row of d floats (src[x * sx]) as `dtype` at dst (storage type elements); Int8 also
// writes the row's scale to *scale.
void store_kv_row(KVDtype dtype, const float* src, std::int64_t sx, std::int64_t d, void* dst,
                  float* scale);

// Rounds a float32 tensor (any strides) into `dtype` (F32: a copy).
KVTensor quantize_kv(const ConstTensorView& t, KVDtype dtype);
// The values a KVView holds, as an owning float32 tensor (what the kernels compute with).
Tensor dequantize_kv(const KVView& v);

}  // namespace spattn
