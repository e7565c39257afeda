#pragma once
// Row kernels of the decode path over K/V rows of one dtype, chosen at run time from the CPU's
// features: a portable build of each (plain loops the compiler vectorizes for the build's
// target), an AVX-512 build of the same loops (target attributes, so it exists under
// -DSPATTN_NATIVE=OFF too) and, for bfloat16 keys on CPUs with AVX512_BF16, dot products by
// vdpbf16ps with the float32 query split into two bfloat16 halves (q = hi + lo, so the query
// keeps 16 of its 24 mantissa bits and the product is exact to ~2^-16 relative).
#include <cstdint>

#include "spattn/attention/kv_tensor.hpp"

namespace spattn::decode {

// One float32 query and its bfloat16 split (hi = bf16(q), lo = bf16(q - hi)).
struct DotQuery {
  const float* q = nullptr;
  const std::uint16_t* hi = nullptr;
  const std::uint16_t* lo = nullptr;
  int d = 0;
};

// Rows j = 0..n-1 at rows + j * row_stride elements (of the dtype); Int8 rows have their scale
// at scales[j * scale_stride].
struct KVRows {
  const void* rows = nullptr;
  std::int64_t row_stride = 0;
  const float* scales = nullptr;
  std::int64_t scale_stride = 0;
};

struct KVKernels {
  // out[j] = sum_x q[x] * value(j, x), j < n.
  void (*dot)(const DotQuery& q, const KVRows& k, int n, float* out) = nullptr;
  // o[x] += sum_{j: p[j] != 0} p[j] * value(j, x), x < d (rows with p[j] == 0 are not read).
  void (*axpy)(float* o, const float* p, const KVRows& v, int n, int d) = nullptr;
  const char* name = "";
};

enum class KernelChoice { Auto, Portable };

// The kernels for `dtype`: with Auto the fastest the CPU runs (AVX512_BF16, AVX-512F, else
// portable), with Portable the plain loops.
KVKernels kv_kernels(KVDtype dtype, KernelChoice choice = KernelChoice::Auto);

}  // namespace spattn::decode
