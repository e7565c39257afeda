#pragma once
// Strided float32 tensor views [B, H, N, d] and an owning contiguous tensor.
//
// Strides are in elements (not bytes), one per axis, so a [B, N, H, d] buffer is viewed as
// [B, H, N, d] without a copy by swapping the H and N strides (see view_bnhd). Views never own
// memory; `Tensor` owns a C-order [B, H, N, d] buffer.
#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace spattn {

template <class T>
struct BasicTensorView {
  T* data = nullptr;
  std::array<std::int64_t, 4> shape{};   // B, H, N, d
  std::array<std::int64_t, 4> stride{};  // elements between neighbours along each axis

  std::int64_t batch() const { return shape[0]; }
  std::int64_t heads() const { return shape[1]; }
  std::int64_t tokens() const { return shape[2]; }
  std::int64_t dim() const { return shape[3]; }
  // Element (b, h, n, x).
  T& at(std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t x) const {
    return data[b * stride[0] + h * stride[1] + n * stride[2] + x * stride[3]];
  }
  // First element of row (b, h, n); its d elements are stride[3] apart.
  T* row(std::int64_t b, std::int64_t h, std::int64_t n) const {
    return data + b * stride[0] + h * stride[1] + n * stride[2];
  }
  // Whether the elements of a row are adjacent (stride[3] == 1).
  bool rows_contiguous() const { return stride[3] == 1; }
  // "[B, H, N, d]" with the numbers, for error messages.
  std::string shape_string() const {
    return fmt::format("[{}, {}, {}, {}]", shape[0], shape[1], shape[2], shape[3]);
  }
  operator BasicTensorView<const T>() const { return {data, shape, stride}; }
};

using TensorView = BasicTensorView<float>;
using ConstTensorView = BasicTensorView<const float>;

// C-order [B, H, N, d] view of `data`.
template <class T>
BasicTensorView<T> view_bhnd(T* data, std::int64_t b, std::int64_t h, std::int64_t n,
                             std::int64_t d) {
  return {data, {b, h, n, d}, {h * n * d, n * d, d, 1}};
}
// [B, H, N, d] view of a C-order [B, N, H, d] buffer (the layout most models keep).
template <class T>
BasicTensorView<T> view_bnhd(T* data, std::int64_t b, std::int64_t n, std::int64_t h,
                             std::int64_t d) {
  return {data, {b, h, n, d}, {n * h * d, d, h * d, 1}};
}

// An owning, zero-initialised, C-order [B, H, N, d] float32 tensor.
struct Tensor {
  std::array<std::int64_t, 4> shape{};
  std::vector<float> values;

  Tensor() = default;
  Tensor(std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t d)
      : shape{b, h, n, d}, values(static_cast<std::size_t>(b * h * n * d), 0.0f) {}
  TensorView view() { return view_bhnd(values.data(), shape[0], shape[1], shape[2], shape[3]); }
  ConstTensorView view() const {
    return view_bhnd(values.data(), shape[0], shape[1], shape[2], shape[3]);
  }
};

}  // namespace spattn
