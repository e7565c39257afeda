// fuzz_npy: parse_npy on arbitrary bytes with a 1 MiB data budget.
//
// Malformed or oversized images must end in a spattn::Error (UsageError/BudgetError); any other
// exception, crash or sanitizer report is a bug. An accepted array must be consistent: its data
// holds exactly size() * item_size() bytes, size() is the product of a shape of non-negative
// dimensions, and every element converts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"

namespace {

constexpr std::int64_t kMaxBytes = std::int64_t{1} << 20;

[[noreturn]] void fail(const spattn::NpyArray& a, const std::string& what) {
  std::string shape;
  for (std::int64_t d : a.shape) shape += std::to_string(d) + ",";
  std::fprintf(stderr, "fuzz_npy: %s (descr '%s', shape (%s), %zu data bytes)\n", what.c_str(),
               a.descr.c_str(), shape.c_str(), a.data.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  spattn::NpyArray a;
  try {
    a = spattn::parse_npy(data, size, "fuzz.npy", kMaxBytes);
  } catch (const spattn::Error&) {
    return 0;  // rejected with a proper error: fine
  }
  const std::int64_t n = a.size();
  const int item = a.item_size();
  if (item <= 0) fail(a, "accepted a dtype without an item size");
  if (n < 0) fail(a, "negative element count");
  if (a.data.size() != static_cast<std::size_t>(n) * static_cast<std::size_t>(item))
    fail(a, "data.size() != size() * item_size()");
  if (static_cast<std::int64_t>(a.data.size()) > kMaxBytes) fail(a, "data exceeds max_bytes");
  std::int64_t product = 1;
  for (std::int64_t d : a.shape) {
    if (d < 0) fail(a, "negative dimension");
    product *= d;
  }
  if (product != n) fail(a, "size() is not the product of the shape");
  double sum = 0;
  for (std::int64_t k = 0; k < n; ++k) sum += a.at(k);
  if (a.descr == "<f4" && a.as_float32().size() != static_cast<std::size_t>(n))
    fail(a, "as_float32() has the wrong length");
  volatile double sink = sum;  // keep the conversions
  (void)sink;
  return 0;
}
