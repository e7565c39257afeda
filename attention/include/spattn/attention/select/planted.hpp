#pragma once
// Inputs with planted structure, for testing and measuring selectors: i.i.d. N(0, 1) Q, K, V
// (fill_normal) plus, on every head, with strength `beta`:
//   - a vertical line at each key c of `columns`: k_c += beta w_c and every query q += beta w_c /
//   2;
//   - a slash at each offset o of `offsets`: k_j += beta r_j, q_i += beta r_{p(i) - o} (r: one
//     random unit vector per key, so query i matches key p(i) - o);
//   - needles: for each (query row, key) of `needles`, k_key += 2 beta u and q_row += 2 beta u
//     (u: a random unit vector per needle);
//   - topic blocks: contiguous segments of `topic` tokens share a random mean added to q and k.
// Everything is a pure function of the seed and the shapes.
#include <cstdint>
#include <utility>
#include <vector>

#include "spattn/attention/shapes.hpp"
#include "spattn/attention/tensor.hpp"

namespace spattn {

struct PlantedSpec {
  double beta = 4;
  std::vector<std::int64_t> columns;                           // key indices
  std::vector<std::int64_t> offsets;                           // diagonal offsets >= 0
  std::vector<std::pair<std::int64_t, std::int64_t>> needles;  // (query row, key)
  std::int64_t topic = 0;                                      // segment length (0: none)
};

struct PlantedInputs {
  Tensor q, k, v;  // [B, Hq, nq, d], [B, Hkv, nk, d] x 2
};

PlantedInputs planted_inputs(const AttentionShape& s, const PlantedSpec& spec, std::uint64_t seed);

// Evenly spread needles: `count` (query row, key) pairs, key <= the row's position, spread over
// the rows and keys of shape s (rows from the last quarter of the queries).
std::vector<std::pair<std::int64_t, std::int64_t>> spread_needles(const AttentionShape& s,
                                                                  std::int64_t count);

}  // namespace spattn
