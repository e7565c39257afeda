#pragma once
// Geometry: the sizes a pattern is evaluated at. Semantics are token-level; block sizes only
// choose the tiling of the layout (an executor tuning parameter).
#include <cstdint>
#include <string>

namespace spattn {

struct Geometry {
  std::int64_t nq = 0;  // number of queries (>= 1)
  std::int64_t nk = 0;  // number of keys (>= 1)
  int heads = 1;        // number of (query) heads (>= 1)
  int block_q = 64;     // query tile size, one of 16, 32, 64, 128
  int block_k = 64;     // key tile size, one of 16, 32, 64, 128

  // Absolute position of query i (bottom-right alignment): p(i) = i + (nk - nq).
  std::int64_t position(std::int64_t i) const { return i + (nk - nq); }
  std::int64_t offset() const { return nk - nq; }
  std::int64_t q_blocks() const { return (nq + block_q - 1) / block_q; }
  std::int64_t k_blocks() const { return (nk + block_k - 1) / block_k; }

  // Throws UsageError naming the bad field when sizes or block sizes are out of range.
  void validate() const;
  std::string describe() const;
};

// Largest sequence length spattn accepts (2^40 tokens): pair counts stay far from int64 overflow.
inline constexpr std::int64_t kMaxTokens = std::int64_t{1} << 40;
inline constexpr int kMaxHeads = 4096;

bool is_valid_block_size(int b);

// Floor division, non-negative modulo and ceiling division for possibly negative positions.
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}
inline std::int64_t floor_mod(std::int64_t a, std::int64_t b) {
  return a - floor_div(a, b) * b;
}
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return -floor_div(-a, b);
}

}  // namespace spattn
