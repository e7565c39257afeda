#include "kv_rows.hpp"

#include <fmt/format.h>

#include <cstring>

#include "spattn/patterns/error.hpp"

namespace spattn::flash {

void check_kv_view(const KVView& v, const char* what) {
  const bool empty = v.batch() == 0 || v.heads() == 0 || v.tokens() == 0 || v.dim() == 0;
  if (v.data == nullptr && !empty)
    throw UsageError(fmt::format("{} {} ({}) has no data (null pointer)", what, v.shape_string(),
                                 kv_dtype_name(v.dtype)));
  if (v.dtype == KVDtype::Int8 && v.scales == nullptr && !empty)
    throw UsageError(fmt::format("int8 {} {} has no per-token scales", what, v.shape_string()));
  for (int a = 0; a < 4; ++a)
    if (v.shape[a] < 0)
      throw UsageError(fmt::format("{} {} has a negative size", what, v.shape_string()));
  for (int a = 0; a < 3; ++a)
    if (v.stride[a] < 0 || v.scale_stride[a] < 0)
      throw UsageError(
          fmt::format("{} {} has a negative stride: strides must be >= 0", what, v.shape_string()));
}

void kv_row_to_f32(const KVView& v, std::int64_t b, std::int64_t h, std::int64_t j, float* dst) {
  const std::int64_t d = v.dim();
  const void* row = v.row(b, h, j);
  switch (v.dtype) {
    case KVDtype::F32:
      std::memcpy(dst, row, static_cast<std::size_t>(d) * sizeof(float));
      return;
    case KVDtype::BF16: {
      const auto* src = static_cast<const std::uint16_t*>(row);
      for (std::int64_t x = 0; x < d; ++x) {
        const std::uint32_t bits = static_cast<std::uint32_t>(src[x]) << 16;
        std::memcpy(dst + x, &bits, sizeof bits);
      }
      return;
    }
    case KVDtype::Int8: {
      const auto* src = static_cast<const std::int8_t*>(row);
      const float s = v.scale(b, h, j);
      for (std::int64_t x = 0; x < d; ++x) dst[x] = s * static_cast<float>(src[x]);
      return;
    }
  }
}

ConstTensorView kv_placeholder_view(const KVView& v) {
  static const float never_read = 0.0f;
  ConstTensorView t;
  t.data = &never_read;
  t.shape = v.shape;
  t.stride = {0, 0, 0, 2};
  return t;
}

}  // namespace spattn::flash
