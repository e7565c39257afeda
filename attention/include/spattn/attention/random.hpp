#pragma once
// Reproducible random inputs: standard normal float32 tensors from a seed.
#include <cstdint>

#include "spattn/attention/tensor.hpp"

namespace spattn {

// Fills t [B, H, N, d] (any strides) with N(0, 1) floats. Element (b, h, n, x), at C-order index
// k = ((b·H + h)·N + n)·d + x, is a pure function of (seed, stream, k): two uniforms from a
// splitmix64 hash of the counter, then Box-Muller. So the values do not depend on the machine,
// the thread count or the strides, and q, k and v of one seed differ by their stream.
void fill_normal(const TensorView& t, std::uint64_t seed, std::uint64_t stream);

// Fills t [B, H, n, d] with rows [first_token, first_token + n) of what fill_normal gives a
// [B, H, total_tokens, d] tensor of the same seed and stream: one rank's shard of a sequence,
// without making the whole. Throws UsageError unless 0 <= first_token and
// first_token + n <= total_tokens.
void fill_normal_rows(const TensorView& t, std::uint64_t seed, std::uint64_t stream,
                      std::int64_t total_tokens, std::int64_t first_token);

}  // namespace spattn
