#include "spattn/patterns/io/npy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/regular_file.hpp"

namespace spattn {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

int item_size_of(const std::string& d) {
  static const std::pair<const char*, int> known[] = {
      {"|b1", 1}, {"|u1", 1}, {"|i1", 1}, {"<u2", 2}, {"<i2", 2}, {"<u4", 4},
      {"<i4", 4}, {"<u8", 8}, {"<i8", 8}, {"<f2", 2}, {"<f4", 4}, {"<f8", 8}};
  for (auto [name, size] : known)
    if (d == name) return size;
  return 0;
}

// Minimal parser for the header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& name) : s_(s), name_(name) {}
  void parse(std::string& descr, bool& fortran, std::vector<std::int64_t>& shape) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip();
    want('{');
    while (true) {
      skip();
      if (peek() == '}') break;
      const std::string key = str();
      skip();
      want(':');
      skip();
      if (key == "descr") {
        descr = str();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        have_fortran = true;
      } else if (key == "shape") {
        shape = tuple();
        have_shape = true;
      } else {
        fail(fmt::format("unknown header key {}", spattn::quoted(key, 60, '\'')));
      }
      skip();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      skip();
      if (peek() == '}') break;
      fail("expected ',' or '}' in the header dict");
    }
    if (!have_descr || !have_fortran || !have_shape)
      fail("the header must give 'descr', 'fortran_order' and 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw UsageError(fmt::format("{}: malformed .npy header at byte {}: {}", name_, i_, what));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t')) ++i_;
  }
  void want(char c) {
    if (peek() != c) fail(fmt::format("expected '{}'", c));
    ++i_;
  }
  std::string str() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++i_;
    const std::size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) ++i_;
    if (i_ >= s_.size()) fail("unterminated string");
    return std::string(s_.substr(start, i_++ - start));
  }
  bool boolean() {
    if (s_.substr(i_, 4) == "True") return i_ += 4, true;
    if (s_.substr(i_, 5) == "False") return i_ += 5, false;
    fail("expected True or False");
  }
  std::vector<std::int64_t> tuple() {
    want('(');
    std::vector<std::int64_t> out;
    while (true) {
      skip();
      if (peek() == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(peek()))) fail("expected a dimension");
      std::int64_t v = 0;
      while (std::isdigit(static_cast<unsigned char>(peek()))) {
        if (v > (std::int64_t{1} << 50)) fail("dimension too large");
        v = v * 10 + (s_[i_++] - '0');
      }
      if (out.size() >= 32) fail("more than 32 dimensions");
      out.push_back(v);
      skip();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == ')') break;
      fail("expected ',' or ')' in the shape");
    }
    ++i_;
    return out;
  }
  std::string_view s_;
  const std::string& name_;
  std::size_t i_ = 0;
};

}  // namespace

std::int64_t NpyArray::size() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}
int NpyArray::item_size() const {
  return item_size_of(descr);
}

double NpyArray::at(std::int64_t k) const {
  const unsigned char* p = data.data() + k * item_size();
  auto load = [p](auto v) {
    std::memcpy(&v, p, sizeof v);
    return static_cast<double>(v);
  };
  const char kind = descr[1];
  switch (item_size()) {
    case 1:
      return kind == 'i' ? load(std::int8_t{}) : load(std::uint8_t{});
    case 2:
      if (kind == 'f') return half_to_float(static_cast<std::uint16_t>(load(std::uint16_t{})));
      return kind == 'i' ? load(std::int16_t{}) : load(std::uint16_t{});
    case 4:
      return kind == 'f'   ? load(float{})
             : kind == 'i' ? load(std::int32_t{})
                           : load(std::uint32_t{});
    default:
      return kind == 'f'   ? load(double{})
             : kind == 'i' ? load(std::int64_t{})
                           : load(std::uint64_t{});
  }
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  std::uint32_t bits;
  if (exponent == 0x1f) {  // inf, or NaN with its payload kept
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal mantissa * 2^-24: normalize (a normal float32)
    int shift = 0;
    std::uint32_t m = mantissa;
    while ((m & 0x400u) == 0) {
      m <<= 1;
      ++shift;
    }
    bits = sign | (static_cast<std::uint32_t>(113 - shift) << 23) | ((m & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float bfloat16_to_float(std::uint16_t b) {
  const std::uint32_t bits = std::uint32_t{b} << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

std::vector<float> NpyArray::as_float32() const {
  if (descr != "<f4" && descr != "<f2")
    throw UsageError(fmt::format("expected float32 ('<f4') or float16 ('<f2') data, got dtype {}",
                                 spattn::quoted(descr, 60, '\'')));
  std::vector<float> out(static_cast<std::size_t>(size()));
  if (out.empty()) return out;
  if (descr == "<f4") {
    std::memcpy(out.data(), data.data(), out.size() * sizeof(float));
  } else {
    for (std::size_t k = 0; k < out.size(); ++k) {
      std::uint16_t h;
      std::memcpy(&h, data.data() + 2 * k, 2);
      out[k] = half_to_float(h);
    }
  }
  return out;
}

namespace {

// Parses the magic, version and header dict of the image `bytes` (at least the header; the data
// may be absent) into a.descr and a.shape and checks them. Returns the offset of the data and
// sets `need` to its byte count.
std::size_t parse_header(const unsigned char* bytes, std::size_t size, const std::string& name,
                         std::int64_t max_bytes, NpyArray& a, std::int64_t& need) {
  if (size < 6 || std::memcmp(bytes, kMagic, 6) != 0)
    throw UsageError(fmt::format("{}: not a .npy file (missing the \\x93NUMPY magic)", name));
  if (size < 10)
    throw UsageError(fmt::format("{}: truncated .npy header ({} bytes in all)", name, size));
  const int major = bytes[6];
  std::size_t header_len, offset;
  if (major == 1) {
    header_len = bytes[8] | (std::size_t{bytes[9]} << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) throw UsageError(fmt::format("{}: truncated .npy header", name));
    header_len = bytes[8] | (std::size_t{bytes[9]} << 8) | (std::size_t{bytes[10]} << 16) |
                 (std::size_t{bytes[11]} << 24);
    offset = 12;
  } else {
    throw UsageError(
        fmt::format("{}: unsupported .npy format version {}.{} (supported: 1.0, 2.0, 3.0)", name,
                    major, bytes[7]));
  }
  if (header_len > size - offset)
    throw UsageError(
        fmt::format("{}: truncated .npy header ({} header bytes announced, {} present)", name,
                    header_len, size - offset));
  bool fortran = false;
  HeaderParser(std::string_view(reinterpret_cast<const char*>(bytes) + offset, header_len), name)
      .parse(a.descr, fortran, a.shape);
  if (a.descr.size() == 3 && a.descr[0] == '=') a.descr[0] = a.descr[2] == '1' ? '|' : '<';
  if (a.descr.size() == 3 && a.descr[0] == '<' && a.descr[2] == '1') a.descr[0] = '|';
  if (item_size_of(a.descr) == 0)
    throw UsageError(fmt::format(
        "{}: unsupported dtype {}: allowed little-endian bool, int8..int64, uint8..uint64, "
        "float16, float32, float64",
        name, spattn::quoted(a.descr, 60, '\'')));
  if (fortran)
    throw UsageError(
        fmt::format("{}: Fortran-order arrays are not supported: save a C-order array "
                    "(numpy.ascontiguousarray)",
                    name));
  // Element count and byte size without overflow.
  std::int64_t count = 1;
  for (std::int64_t d : a.shape) {
    if (d != 0 && count > (std::int64_t{1} << 62) / d)
      throw UsageError(fmt::format("{}: shape is absurdly large", name));
    count *= d;
  }
  // Compare counts, not bytes: count * item_size can overflow (2^61 int64 items wrap to 0).
  if (count > max_bytes / a.item_size())
    throw BudgetError(
        fmt::format("{}: the array needs {:.0f} bytes, more than the budget of {} bytes", name,
                    static_cast<double>(count) * a.item_size(), max_bytes));
  need = count * a.item_size();
  return offset + header_len;
}

}  // namespace

NpyArray parse_npy(const unsigned char* bytes, std::size_t size, const std::string& name,
                   std::int64_t max_bytes) {
  NpyArray a;
  std::int64_t need = 0;
  const std::size_t data_offset = parse_header(bytes, size, name, max_bytes, a, need);
  const std::size_t have = size - data_offset;
  if (static_cast<std::size_t>(need) > have)
    throw UsageError(fmt::format("{}: truncated data: the shape needs {} bytes, the file has {}",
                                 name, need, have));
  if (static_cast<std::size_t>(need) < have)
    throw UsageError(fmt::format("{}: {} bytes of trailing data after the array", name,
                                 have - static_cast<std::size_t>(need)));
  const unsigned char* start = bytes + data_offset;
  a.data.assign(start, start + need);
  return a;
}

NpyArray read_npy(const std::string& path, std::int64_t max_bytes) {
  std::int64_t len = 0;
  std::ifstream in = open_regular_file(path, "a .npy file", len);
  if (len > max_bytes + (1 << 20))
    throw BudgetError(fmt::format("{}: the file has {} bytes, more than the budget of {} bytes",
                                  path, len, max_bytes));
  std::vector<unsigned char> bytes(static_cast<std::size_t>(len));
  in.read(reinterpret_cast<char*>(bytes.data()), len);
  if (!in) throw UsageError(fmt::format("{}: read error", path));
  return parse_npy(bytes.data(), bytes.size(), path, max_bytes);
}

NpyArray read_npy_header(const std::string& path) {
  std::int64_t len = 0;
  std::ifstream in = open_regular_file(path, "a .npy file", len);
  // The header ends within the first 12 + 2^32 bytes; read its prefix, then the header itself.
  std::vector<unsigned char> bytes(static_cast<std::size_t>(std::min<std::int64_t>(len, 12)));
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!in) throw UsageError(fmt::format("{}: read error", path));
  if (bytes.size() >= 10 && std::memcmp(bytes.data(), kMagic, 6) == 0) {
    const std::size_t header_len =
        bytes[6] == 1        ? (bytes[8] | (std::size_t{bytes[9]} << 8)) + 10
        : bytes.size() >= 12 ? (bytes[8] | (std::size_t{bytes[9]} << 8) |
                                (std::size_t{bytes[10]} << 16) | (std::size_t{bytes[11]} << 24)) +
                                   12
                             : 0;
    const std::size_t want =
        std::min<std::size_t>(static_cast<std::size_t>(len), std::max(header_len, bytes.size()));
    const std::size_t had = bytes.size();
    bytes.resize(want);
    in.read(reinterpret_cast<char*>(bytes.data() + had), static_cast<std::streamsize>(want - had));
    if (!in) throw UsageError(fmt::format("{}: read error", path));
  }
  NpyArray a;
  std::int64_t need = 0;
  const std::size_t data_offset = parse_header(bytes.data(), bytes.size(), path,
                                               std::numeric_limits<std::int64_t>::max(), a, need);
  const std::int64_t have = len - static_cast<std::int64_t>(data_offset);
  if (need > have)
    throw UsageError(fmt::format("{}: truncated data: the shape needs {} bytes, the file has {}",
                                 path, need, have));
  if (need < have)
    throw UsageError(
        fmt::format("{}: {} bytes of trailing data after the array", path, have - need));
  return a;
}

void write_npy(const std::string& path, const std::string& descr,
               const std::vector<std::int64_t>& shape, const void* data, std::size_t bytes) {
  if (item_size_of(descr) == 0)
    throw UsageError(fmt::format("write_npy: unsupported dtype '{}'", descr));
  std::string dims;
  for (std::int64_t d : shape) dims += fmt::format("{}, ", d);
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", descr, dims);
  // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64.
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) throw UsageError("write_npy: header too long");
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(fmt::format("{}: cannot create file: {}", path, std::strerror(errno)));
  out.write(kMagic, 6);
  const unsigned char ver[4] = {1, 0, static_cast<unsigned char>(header.size() & 0xff),
                                static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(ver), 4);
  out << header;
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!out) throw Error(fmt::format("{}: write failed", path));
}

}  // namespace spattn
