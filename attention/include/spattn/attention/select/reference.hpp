#pragma once
// The brute-force selection rules: each selector's choice on one (batch, query head) as a dense
// nq x nk mask, computed the plain way (every score in double, whole sorts, the rule evaluated
// pair by pair, MInference's kernel walk transcribed for vertical_slash's pit64 mode). The
// oracle the fast selectors (select.hpp) are tested against; quadratic on purpose.
#include <cstdint>
#include <vector>

#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/selector.hpp"

namespace spattn {

// Largest nq x nk the reference selection accepts (UsageError beyond).
inline constexpr std::int64_t kMaxReferenceSelectionPairs = std::int64_t{1} << 26;

// mask[i * nk + j] = 1 when selector `s` lets query i reach key j on query head h of batch b.
std::vector<std::uint8_t> reference_selection(const Selector& s, const ConstTensorView& q,
                                              const ConstTensorView& k, std::int64_t b, int h,
                                              const Geometry& g);

}  // namespace spattn
