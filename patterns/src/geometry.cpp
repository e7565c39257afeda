#include "spattn/patterns/geometry.hpp"

#include <fmt/format.h>

#include "spattn/patterns/error.hpp"

namespace spattn {

bool is_valid_block_size(int b) {
  return b == 16 || b == 32 || b == 64 || b == 128;
}

void Geometry::validate() const {
  if (nq < 1 || nq > kMaxTokens)
    throw UsageError(fmt::format("nq = {} is out of range: allowed 1..{}", nq, kMaxTokens));
  if (nk < 1 || nk > kMaxTokens)
    throw UsageError(fmt::format("nk = {} is out of range: allowed 1..{}", nk, kMaxTokens));
  if (heads < 1 || heads > kMaxHeads)
    throw UsageError(fmt::format("heads = {} is out of range: allowed 1..{}", heads, kMaxHeads));
  if (!is_valid_block_size(block_q))
    throw UsageError(fmt::format("block_q = {} is not allowed: use 16, 32, 64 or 128", block_q));
  if (!is_valid_block_size(block_k))
    throw UsageError(fmt::format("block_k = {} is not allowed: use 16, 32, 64 or 128", block_k));
}

std::string Geometry::describe() const {
  return fmt::format("nq={} nk={} heads={} block_q={} block_k={}", nq, nk, heads, block_q, block_k);
}

}  // namespace spattn
