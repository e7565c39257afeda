#pragma once
// Test support for the attention executors: random inputs and a brute-force pair count.
#include <cstdint>

#include "spattn/attention/random.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/pattern.hpp"

namespace spattn::test {

// A [B, H, N, d] tensor of N(0, 1) values (fill_normal with `seed` and `stream`).
inline Tensor random_tensor(std::int64_t b, std::int64_t h, std::int64_t n, std::int64_t d,
                            std::uint64_t seed, std::uint64_t stream) {
  Tensor t(b, h, n, d);
  fill_normal(t.view(), seed, stream);
  return t;
}

// Pairs Pattern::allows grants at g over all of g's heads, by brute force.
inline std::int64_t brute_force_pairs(const Pattern& p, const Geometry& g) {
  std::int64_t n = 0;
  for (int h = 0; h < g.heads; ++h)
    for (std::int64_t i = 0; i < g.nq; ++i)
      for (std::int64_t j = 0; j < g.nk; ++j) n += p.allows(g, h, i, j) ? 1 : 0;
  return n;
}

}  // namespace spattn::test
