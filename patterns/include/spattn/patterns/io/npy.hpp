#pragma once
// NumPy .npy files (format versions 1.0, 2.0, 3.0): a validating reader and a writer.
// Supported dtypes: little-endian b1, u1, i1, u2, i2, u4, i4, u8, i8, f4, f8; C order only.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spattn {

struct NpyArray {
  std::string descr;                // e.g. "<f4", "|u1"
  std::vector<std::int64_t> shape;  // C order
  std::vector<unsigned char> data;  // raw little-endian elements, prod(shape) * item_size bytes
  std::int64_t size() const;        // number of elements
  int item_size() const;
  // Element k converted to double (any supported dtype).
  double at(std::int64_t k) const;
  // Copies the elements as float32 (dtype must be <f4) / as "nonzero" bytes (any dtype).
  std::vector<float> as_float32() const;
};

// Reads and validates `path`. Throws UsageError naming the file and the problem (missing,
// truncated, bad magic or header, unsupported dtype, Fortran order, absurd shape) and
// BudgetError when the data would take more than `max_bytes`.
NpyArray read_npy(const std::string& path, std::int64_t max_bytes = std::int64_t{1} << 34);
// Parses an in-memory .npy image (same checks as read_npy; `name` is used in messages).
NpyArray parse_npy(const unsigned char* bytes, std::size_t size, const std::string& name,
                   std::int64_t max_bytes = std::int64_t{1} << 34);

// Writes a C-order array. `descr` is one of the supported dtypes; data holds prod(shape) items.
void write_npy(const std::string& path, const std::string& descr,
               const std::vector<std::int64_t>& shape, const void* data, std::size_t bytes);

}  // namespace spattn
