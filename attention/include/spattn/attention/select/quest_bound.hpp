#pragma once
// Quest's page bound, the one definition shared by the `quest` selector (attention/select) and
// the KV cache's quest policy (attention/kvcache). For a query q and a page of keys whose
// channel-wise minimum and maximum are mn and mx,
//   U(page) = sum_d max(q_d mx_d, q_d mn_d) >= q . k for every key k of the page,
// since each term bounds q_d k_d over mn_d <= k_d <= mx_d. Computed in double, channels in order,
// so both users rank pages identically on the same metadata.
#include <algorithm>
#include <cstdint>
#include <limits>

namespace spattn {

// q: d floats `q_stride` apart; page_min, page_max: d contiguous floats each.
inline double quest_page_bound(const float* q, std::int64_t q_stride, const float* page_min,
                               const float* page_max, std::int64_t d) {
  double u = 0;
  for (std::int64_t x = 0; x < d; ++x) {
    const double qx = q[x * q_stride];
    u += std::max(qx * page_max[x], qx * page_min[x]);
  }
  return u;
}

// Channel-wise minimum and maximum of `rows` keys (key r: d contiguous floats at
// keys + r * key_stride) into lo[0, d) and hi[0, d); rows = 0 gives +inf and -inf.
inline void quest_page_min_max(const float* keys, std::int64_t rows, std::int64_t key_stride,
                               std::int64_t d, float* lo, float* hi) {
  std::fill_n(lo, d, std::numeric_limits<float>::infinity());
  std::fill_n(hi, d, -std::numeric_limits<float>::infinity());
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* k = keys + r * key_stride;
    for (std::int64_t x = 0; x < d; ++x) {
      lo[x] = std::min(lo[x], k[x]);
      hi[x] = std::max(hi[x], k[x]);
    }
  }
}

}  // namespace spattn
