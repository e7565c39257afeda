#pragma once
// Saturating int64 arithmetic for memory and work estimates (internal): an estimate that
// overflows is "more than any budget", never a wrapped small number.
#include <cstdint>
#include <limits>

namespace spattn::detail {

inline std::int64_t saturating_mul(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<std::int64_t>::max() : r;
}
inline std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<std::int64_t>::max() : r;
}

}  // namespace spattn::detail
