#pragma once
// NumPy .npy files (format versions 1.0, 2.0, 3.0): a validating reader and a writer.
// Supported dtypes: little-endian b1, u1, i1, u2, i2, u4, i4, u8, i8, f2, f4, f8; C order only.
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
  // The elements as float32: dtype <f4 copied, <f2 converted exactly (half_to_float); any other
  // dtype is a UsageError.
  std::vector<float> as_float32() const;
};

// IEEE binary16 bits to float32, exactly: every half value (normals, subnormals, signed zeros,
// infinities) is a float32; a NaN stays a NaN (sign and payload kept in the top mantissa bits).
float half_to_float(std::uint16_t h);
// bfloat16 bits (the top 16 bits of a float32) to float32, exactly.
float bfloat16_to_float(std::uint16_t b);

// Reads and validates `path`. Throws UsageError naming the file and the problem (missing,
// truncated, bad magic or header, unsupported dtype, Fortran order, absurd shape) and
// BudgetError when the data would take more than `max_bytes`.
NpyArray read_npy(const std::string& path, std::int64_t max_bytes = std::int64_t{1} << 34);
// Reads and validates only the header of `path` (descr and shape; `data` stays empty), and
// checks that the file holds exactly the data the header announces: the same errors as
// read_npy (but no budget), without reading the data.
NpyArray read_npy_header(const std::string& path);
// Parses an in-memory .npy image (same checks as read_npy; `name` is used in messages).
NpyArray parse_npy(const unsigned char* bytes, std::size_t size, const std::string& name,
                   std::int64_t max_bytes = std::int64_t{1} << 34);

// Writes a C-order array. `descr` is one of the supported dtypes; data holds prod(shape) items.
void write_npy(const std::string& path, const std::string& descr,
               const std::vector<std::int64_t>& shape, const void* data, std::size_t bytes);

}  // namespace spattn
