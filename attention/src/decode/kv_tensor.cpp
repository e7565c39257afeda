#include "spattn/attention/kv_tensor.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "spattn/patterns/error.hpp"

namespace spattn {

const char* kv_dtype_name(KVDtype t) {
  switch (t) {
    case KVDtype::F32:
      return "f32";
    case KVDtype::BF16:
      return "bf16";
    case KVDtype::Int8:
      return "int8";
  }
  return "?";
}

KVDtype parse_kv_dtype(std::string_view name, std::string_view where) {
  for (KVDtype t : {KVDtype::F32, KVDtype::BF16, KVDtype::Int8})
    if (name == kv_dtype_name(t)) return t;
  throw UsageError(
      fmt::format("{}: unknown K/V dtype '{}' (allowed: f32, bf16, int8)", where, name));
}

int kv_element_bytes(KVDtype t) {
  return t == KVDtype::F32 ? 4 : t == KVDtype::BF16 ? 2 : 1;
}

std::int64_t kv_row_bytes(KVDtype t, std::int64_t d) {
  return d * kv_element_bytes(t) + (t == KVDtype::Int8 ? 4 : 0);
}

std::uint16_t float_to_bf16(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((u >> 16) | 0x40);
  const std::uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

float bf16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

float KVView::value(std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t x) const {
  const void* r = row(b, h, n);
  switch (dtype) {
    case KVDtype::F32:
      return static_cast<const float*>(r)[x];
    case KVDtype::BF16:
      return bf16_to_float(static_cast<const std::uint16_t*>(r)[x]);
    case KVDtype::Int8:
      return scale(b, h, n) * static_cast<const std::int8_t*>(r)[x];
  }
  return 0;
}

std::string KVView::shape_string() const {
  return fmt::format("[{}, {}, {}, {}] {}", shape[0], shape[1], shape[2], shape[3],
                     kv_dtype_name(dtype));
}

KVView kv_view(const ConstTensorView& t, const char* what) {
  if (!t.rows_contiguous() && t.dim() > 1)
    throw UsageError(
        fmt::format("{} {}: the decode path needs contiguous rows (d stride 1), got "
                    "d stride {}",
                    what, t.shape_string(), t.stride[3]));
  return {KVDtype::F32, t.data, t.shape, {t.stride[0], t.stride[1], t.stride[2]}, nullptr, {}};
}

KVView KVTensor::view() const {
  const auto [b, h, n, d] = shape;
  KVView v{dtype, nullptr, shape, {h * n * d, n * d, d}, nullptr, {}};
  switch (dtype) {
    case KVDtype::F32:
      v.data = f32.data();
      break;
    case KVDtype::BF16:
      v.data = bf16.data();
      break;
    case KVDtype::Int8:
      v.data = i8.data();
      v.scales = scales.data();
      v.scale_stride = {h * n, n, 1};
      break;
  }
  return v;
}

std::int64_t KVTensor::bytes() const {
  return static_cast<std::int64_t>(f32.size() * 4 + bf16.size() * 2 + i8.size() +
                                   scales.size() * 4);
}

void store_kv_row(KVDtype dtype, const float* src, std::int64_t sx, std::int64_t d, void* dst,
                  float* scale) {
  switch (dtype) {
    case KVDtype::F32:
      for (std::int64_t x = 0; x < d; ++x) static_cast<float*>(dst)[x] = src[x * sx];
      break;
    case KVDtype::BF16:
      for (std::int64_t x = 0; x < d; ++x)
        static_cast<std::uint16_t*>(dst)[x] = float_to_bf16(src[x * sx]);
      break;
    case KVDtype::Int8: {
      float amax = 0;
      for (std::int64_t x = 0; x < d; ++x) amax = std::max(amax, std::abs(src[x * sx]));
      const float s = amax / 127.0f;
      *scale = s;
      for (std::int64_t x = 0; x < d; ++x) {
        const float q = s > 0 ? std::nearbyint(src[x * sx] / s) : 0.0f;
        static_cast<std::int8_t*>(dst)[x] =
            static_cast<std::int8_t>(std::clamp(q, -127.0f, 127.0f));
      }
      break;
    }
  }
}

KVTensor quantize_kv(const ConstTensorView& t, KVDtype dtype) {
  KVTensor out;
  out.dtype = dtype;
  out.shape = t.shape;
  const auto [B, H, N, d] = t.shape;
  const std::size_t count = static_cast<std::size_t>(B * H * N * d);
  if (dtype == KVDtype::F32) out.f32.resize(count);
  if (dtype == KVDtype::BF16) out.bf16.resize(count);
  if (dtype == KVDtype::Int8) {
    out.i8.resize(count);
    out.scales.resize(static_cast<std::size_t>(B * H * N));
  }
  KVView dst = out.view();
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t n = 0; n < N; ++n)
        store_kv_row(dtype, t.row(b, h, n), t.stride[3], d, const_cast<void*>(dst.row(b, h, n)),
                     dtype == KVDtype::Int8 ? out.scales.data() + (b * H + h) * N + n : nullptr);
  return out;
}

Tensor dequantize_kv(const KVView& v) {
  Tensor out(v.shape[0], v.shape[1], v.shape[2], v.shape[3]);
  TensorView o = out.view();
  for (std::int64_t b = 0; b < v.shape[0]; ++b)
    for (std::int64_t h = 0; h < v.shape[1]; ++h)
      for (std::int64_t n = 0; n < v.shape[2]; ++n)
        for (std::int64_t x = 0; x < v.shape[3]; ++x) o.at(b, h, n, x) = v.value(b, h, n, x);
  return out;
}

}  // namespace spattn
