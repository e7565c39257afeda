#pragma once
// Narrow K/V (bfloat16, int8 with per-token scales; kv_tensor.hpp) for the flash executor: the
// executor reads every K and V row through a handful of helpers (a tile in place or packed, a
// gathered row, 16 rows transposed); for narrow K/V each of those converts the rows it reads into
// its own float32 scratch and hands them to the unchanged float32 kernels. So the conversion
// costs O(rows read x d), the same order as reading them, and never touches a row twice more
// than the float32 path reads it.
#include <cstdint>

#include "spattn/attention/kv_tensor.hpp"
#include "spattn/attention/tensor.hpp"

namespace spattn::flash {

// Throws UsageError naming `what` when a narrow view has no data, an int8 view no scales, or a
// stride is negative (the shapes are checked by the executor's own checks).
void check_kv_view(const KVView& v, const char* what);

// Row (b, h, j) of `v` (any dtype) as d floats in dst (exactly the values the dtype holds).
void kv_row_to_f32(const KVView& v, std::int64_t b, std::int64_t h, std::int64_t j, float* dst);

// A float32 stand-in view of a narrow KVView, for the executor's shape checks and bookkeeping:
// its shape is the KVView's and its rows are not contiguous (stride[3] = 2), so the executor packs
// every row it reads; its data points to a single float and must never be read: every read goes
// through kv_row_to_f32.
ConstTensorView kv_placeholder_view(const KVView& v);

}  // namespace spattn::flash
