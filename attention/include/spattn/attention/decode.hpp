#pragma once
// The decode executor: a few queries (nq = 1..64) at the end of nk cached keys, K and V in
// float32, bfloat16 or int8 (kv_tensor.hpp).
//
// Decode is a geometry, not a special case: query i sits at position i + nk - nq and the layout
// (any pattern, built at (nq, nk)) says which keys it reads. The key axis is cut into parts of a
// fixed number of keys that depends on nk and block_k only (split-KV, as in flash-decoding);
// oneTBB runs (batch, K/V head, part) tasks, each walking its key tiles once for every query
// head of the group and every query (online softmax, float32), and the parts of each query are
// then merged through their log-sum-exp in part order. So two cores are busy with one head and
// one query, and the output is bitwise the same for every thread count.
// Workspace: B x Hq x parts x nq x (d + 2) floats (parts <= 64), never O(nq x nk).
#include <cstdint>
#include <optional>

#include "spattn/attention/kv_tensor.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn {

inline constexpr std::int64_t kMaxDecodeQueries = 64;

struct DecodeOptions {
  std::optional<float> scale;  // softmax scale; default 1 / sqrt(d)
  int threads = 0;  // worker threads (0: oneTBB's default); the result does not depend on it
  // Keys per part (rounded up to a multiple of block_k); 0: automatic,
  // max(1024, ceil(nk / 64)) rounded up, so there are at most 64 parts.
  std::int64_t part_keys = 0;
  // Run the portable kernels even where the CPU has AVX-512 (for tests and measurements).
  bool portable_kernels = false;
};

struct DecodeStats {
  std::int64_t parts = 0;      // key parts per (batch, K/V head)
  std::int64_t part_keys = 0;  // keys per part
  std::int64_t kv_bytes_read =
      0;  // K and V bytes of the kept key tiles (each read once per K/V head)
  std::int64_t workspace_bytes = 0;
  const char* kernel = "";  // the row kernels that ran, e.g. "bf16-avx512bf16"
};

struct DecodeResult {
  Tensor o;    // [B, Hq, nq, d]; a fully masked row is all zeros
  Tensor lse;  // [B, Hq, nq, 1]; -inf for a fully masked row
  DecodeStats stats;
};

// q [B, Hq, nq, d] float32 (any strides), k and v [B, Hkv, nk, d] (contiguous rows; any dtype,
// each its own), layout at (nq, nk) with Hq heads or one. Throws UsageError (naming the value)
// on nq outside 1..64, shape, dtype or layout mismatches, before any work.
DecodeResult decode_attention(const ConstTensorView& q, const KVView& k, const KVView& v,
                              const Layout& layout, const DecodeOptions& options = {});

// The same into caller-owned o [B, Hq, nq, d] and lse [B, Hq, nq, 1].
DecodeStats decode_attention(const ConstTensorView& q, const KVView& k, const KVView& v,
                             const Layout& layout, const TensorView& o, const TensorView& lse,
                             const DecodeOptions& options = {});

// Keys per part decode_attention uses for nk keys in tiles of block_k (options.part_keys = 0).
std::int64_t decode_part_keys(std::int64_t nk, int block_k, std::int64_t requested = 0);

}  // namespace spattn
