// .npy reading and writing, malformed files, and blocks(file=...) layouts.
//
// Files are also built byte by byte here from the NumPy format description (magic, version,
// little-endian header length, a Python-dict header padded to a multiple of 64 bytes and ended
// by '\n'), so the reader is checked against the format, not only against our own writer.
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;
using Catch::Matchers::Contains;
using Bytes = std::vector<unsigned char>;

// A temporary directory removed at exit.
const std::filesystem::path& temp_dir() {
  static const spattn::test::TempDir d("spattn_npy");
  return d.path();
}
std::string temp_file(const std::string& name) {
  return (temp_dir() / name).string();
}

void write_bytes(const std::string& path, const Bytes& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A .npy image by hand: `dict` is the header dictionary text, padded here; `data` appended.
Bytes make_npy(const std::string& dict, const Bytes& data, int major = 1, int minor = 0) {
  const std::size_t prefix = major == 1 ? 10 : 12;
  std::string header = dict;
  const std::size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  Bytes b = {0x93,
             'N',
             'U',
             'M',
             'P',
             'Y',
             static_cast<unsigned char>(major),
             static_cast<unsigned char>(minor)};
  const std::size_t len = header.size();
  b.push_back(static_cast<unsigned char>(len & 0xff));
  b.push_back(static_cast<unsigned char>((len >> 8) & 0xff));
  if (major != 1) {
    b.push_back(static_cast<unsigned char>((len >> 16) & 0xff));
    b.push_back(static_cast<unsigned char>((len >> 24) & 0xff));
  }
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}
std::string dict_of(const std::string& descr, const std::string& shape,
                    const std::string& fortran = "False") {
  return fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}", descr, fortran,
                     shape);
}
template <class T>
Bytes bytes_of(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Expects read_npy(path) to throw E with every needle in the message.
template <class E>
void check_read_error(const std::string& path, const std::vector<std::string>& needles,
                      i64 max_bytes = i64{1} << 34) {
  INFO("file: " << path);
  try {
    spattn::read_npy(path, max_bytes);
    FAIL("no error thrown");
  } catch (const E& e) {
    INFO("message: " << e.what());
    for (const auto& n : needles) CHECK_THAT(e.what(), Contains(n));
  }
}

// Typed round trip of one dtype over several shapes.
template <class T>
void round_trip(const std::string& descr, const std::vector<T>& pool) {
  const std::vector<std::vector<i64>> shapes = {{},  {5},       {2, 3},         {2, 3, 4},
                                                {0}, {3, 0, 2}, {1, 1, 1, 1, 1}};
  for (const auto& shape : shapes) {
    i64 n = 1;
    for (i64 d : shape) n *= d;
    std::vector<T> values(static_cast<std::size_t>(n));
    for (i64 k = 0; k < n; ++k) values[k] = pool[static_cast<std::size_t>(k) % pool.size()];
    const std::string path = temp_file(fmt::format("rt_{}_{}.npy", descr.substr(1), shape.size()));
    INFO("descr " << descr << " rank " << shape.size() << " n " << n);
    spattn::write_npy(path, descr, shape, values.data(), values.size() * sizeof(T));

    // The file follows the format: magic, version 1.0, header padded to 64 bytes, then data.
    const Bytes raw = read_bytes(path);
    REQUIRE(raw.size() >= 10);
    CHECK(std::memcmp(raw.data(), "\x93NUMPY", 6) == 0);
    CHECK(raw[6] == 1);
    CHECK(raw[7] == 0);
    const std::size_t header_len = raw[8] | (std::size_t{raw[9]} << 8);
    CHECK((10 + header_len) % 64 == 0);
    REQUIRE(raw.size() == 10 + header_len + values.size() * sizeof(T));
    CHECK(raw[10 + header_len - 1] == '\n');
    const std::string header(raw.begin() + 10, raw.begin() + 10 + static_cast<i64>(header_len));
    CHECK_THAT(header, Contains(fmt::format("'descr': '{}'", descr)));
    CHECK_THAT(header, Contains("'fortran_order': False"));

    const spattn::NpyArray a = spattn::read_npy(path);
    CHECK(a.descr == descr);
    CHECK(a.shape == shape);
    CHECK(a.size() == n);
    CHECK(a.item_size() == static_cast<int>(sizeof(T)));
    REQUIRE(a.data.size() == values.size() * sizeof(T));
    CHECK(std::equal(a.data.begin(), a.data.end(),
                     reinterpret_cast<const unsigned char*>(values.data())));
    for (i64 k = 0; k < n; ++k) CHECK(a.at(k) == static_cast<double>(values[k]));
  }
}

}  // namespace

TEST_CASE("write_npy / read_npy round trip every supported dtype", "[npy]") {
  round_trip<std::uint8_t>("|b1", {1, 0, 0, 1});  // numpy bools are bytes 0 and 1
  round_trip<std::uint8_t>("|u1", {0, 1, 200, 255});
  round_trip<std::int8_t>("|i1", {-128, -1, 0, 127});
  round_trip<std::uint16_t>("<u2", {0, 65535, 300});
  round_trip<std::int16_t>("<i2", {-32768, 32767, -2});
  round_trip<std::uint32_t>("<u4", {0, 4000000000u, 7});
  round_trip<std::int32_t>("<i4", {-2147483647 - 1, 2147483647, -5});
  round_trip<std::uint64_t>("<u8", {0, std::uint64_t{1} << 40, 9});
  round_trip<std::int64_t>("<i8", {-(i64{1} << 40), i64{1} << 40, -3});
  round_trip<float>("<f4", {0.5f, -1.25f, 3e30f, -0.0f});
  round_trip<double>("<f8", {0.1, -2.5e300, 1.0 / 3.0});

  const std::vector<float> f = {1.5f, -2.0f, 0.25f};
  const std::string path = temp_file("floats.npy");
  spattn::write_npy(path, "<f4", {3}, f.data(), f.size() * sizeof(float));
  CHECK(spattn::read_npy(path).as_float32() == f);
  const std::vector<std::int32_t> ints = {1, 2, 3};
  spattn::write_npy(path, "<i4", {3}, ints.data(), 12);
  CHECK_THROWS_AS(spattn::read_npy(path).as_float32(), spattn::UsageError);
  CHECK_THROWS_AS(spattn::write_npy(path, ">i4", {3}, ints.data(), 12), spattn::UsageError);
}

TEST_CASE("read_npy accepts hand-built files of versions 1.0, 2.0 and 3.0", "[npy]") {
  const std::vector<std::int32_t> v = {1, -2, 3, -4, 5, -6};
  for (int major : {1, 2, 3}) {
    INFO("version " << major);
    const std::string path = temp_file(fmt::format("v{}.npy", major));
    write_bytes(path, make_npy(dict_of("<i4", "(2, 3)"), bytes_of(v), major));
    const spattn::NpyArray a = spattn::read_npy(path);
    CHECK(a.shape == std::vector<i64>{2, 3});
    CHECK(a.at(3) == -4);
  }
  // Other spellings numpy produces: "(6,)" tuples, "=" byte order for one-byte types, '<b1'.
  const std::string path = temp_file("spellings.npy");
  write_bytes(path, make_npy(dict_of("<i4", "(6,)"), bytes_of(v)));
  CHECK(spattn::read_npy(path).shape == std::vector<i64>{6});
  write_bytes(path, make_npy("{'shape': (2,), 'fortran_order': False, 'descr': '|u1'}", {7, 9}));
  CHECK(spattn::read_npy(path).at(1) == 9);
  // parse_npy works on memory and names the source in messages.
  const Bytes bad = {1, 2, 3};
  CHECK_THROWS_WITH(spattn::parse_npy(bad.data(), bad.size(), "my-buffer"), Contains("my-buffer"));
}

TEST_CASE("malformed .npy files give one clear error each", "[npy][errors]") {
  const std::vector<std::int32_t> v(16, 7);
  const Bytes good = make_npy(dict_of("<i4", "(4, 4)"), bytes_of(v));
  auto file = [](const std::string& name, const Bytes& b) {
    const std::string path = temp_file(name);
    write_bytes(path, b);
    return path;
  };
  using spattn::BudgetError;
  using spattn::UsageError;

  // Truncated header: the length field announces more header bytes than the file holds.
  check_read_error<UsageError>(file("trunc_header.npy", Bytes(good.begin(), good.begin() + 40)),
                               {"trunc_header.npy", "truncated"});
  // Shorter than the fixed preamble, but with the magic: truncated, not "bad magic".
  check_read_error<UsageError>(file("trunc_preamble.npy", Bytes(good.begin(), good.begin() + 8)),
                               {"truncated"});
  // Truncated data: (4, 4) int32 needs 64 bytes.
  check_read_error<UsageError>(file("trunc_data.npy", Bytes(good.begin(), good.end() - 5)),
                               {"truncated data", "64"});
  // Bad magic.
  Bytes magic = good;
  magic[5] = 'X';
  check_read_error<UsageError>(file("magic.npy", magic), {"not a .npy file", "magic"});
  check_read_error<UsageError>(
      file("text.npy", Bytes{'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'}),
      {"not a .npy file"});
  check_read_error<UsageError>(file("empty.npy", Bytes{}), {"empty.npy"});
  // Unsupported version.
  check_read_error<UsageError>(
      file("version.npy", make_npy(dict_of("<i4", "(4, 4)"), bytes_of(v), 4)), {"version 4.0"});
  // Fortran order.
  check_read_error<UsageError>(
      file("fortran.npy", make_npy(dict_of("<i4", "(4, 4)", "True"), bytes_of(v))), {"Fortran"});
  // Big-endian and other unsupported dtypes name the dtype.
  check_read_error<UsageError>(file("big.npy", make_npy(dict_of(">i4", "(4, 4)"), bytes_of(v))),
                               {"'>i4'", "little-endian"});
  check_read_error<UsageError>(file("complex.npy", make_npy(dict_of("<c8", "(8,)"), bytes_of(v))),
                               {"unsupported dtype '<c8'"});
  check_read_error<UsageError>(file("quad.npy", make_npy(dict_of("<f16", "(4,)"), bytes_of(v))),
                               {"unsupported dtype '<f16'", "float16, float32, float64"});
  // A NUL in the dtype is shown escaped, and the message goes on past it.
  check_read_error<UsageError>(
      file("nul.npy", make_npy(dict_of(std::string("|u1\0", 4), "(64,)"), bytes_of(v))),
      {"unsupported dtype '|u1\\x00': allowed little-endian bool"});
  check_read_error<UsageError>(file("object.npy", make_npy(dict_of("|O", "(8,)"), bytes_of(v))),
                               {"unsupported dtype '|O'"});
  // Trailing bytes after the data.
  Bytes trailing = good;
  trailing.push_back(0);
  check_read_error<UsageError>(file("trailing.npy", trailing), {"trailing"});
  // Header problems.
  check_read_error<UsageError>(file("nodict.npy", make_npy("garbage", bytes_of(v))),
                               {"malformed .npy header"});
  check_read_error<UsageError>(
      file("noshape.npy", make_npy("{'descr': '<i4', 'fortran_order': False}", bytes_of(v))),
      {"'shape'"});
  check_read_error<UsageError>(file("negdim.npy", make_npy(dict_of("<i4", "(-4, 4)"), bytes_of(v))),
                               {"dimension"});
  check_read_error<UsageError>(
      file("unterminated.npy",
           make_npy("{'descr': '<i4, 'fortran_order': False, 'shape': (4, 4)}", bytes_of(v))),
      {"malformed .npy header"});
  // Missing file.
  check_read_error<UsageError>(temp_file("does_not_exist.npy"),
                               {"does_not_exist.npy", "cannot open"});
  // A directory is not a file of 2^63 bytes.
  check_read_error<UsageError>(temp_dir().string(), {"is a directory"});
  // Over the caller's byte budget.
  check_read_error<BudgetError>(file("budget.npy", good), {"budget"}, 32);
}

TEST_CASE("absurd shapes are refused before any allocation", "[npy][errors]") {
  auto absurd = [](const std::string& name, const std::string& descr, const std::string& shape) {
    const std::string path = temp_file(name);
    write_bytes(path, make_npy(dict_of(descr, shape), {}));
    INFO("shape " << shape << " dtype " << descr);
    try {
      spattn::read_npy(path);
      FAIL("no error thrown");
    } catch (const spattn::Error& e) {
      INFO("message: " << e.what());
      CHECK_THAT(e.what(), Contains("large") || Contains("budget"));
    }
  };
  absurd("huge2.npy", "<f4", fmt::format("({}, {})", i64{1} << 40, i64{1} << 40));
  absurd("huge1.npy", "<f8", fmt::format("({},)", i64{1} << 50));
  absurd("huge3.npy", "|u1", "(1000000, 1000000, 1000000)");
  // Element counts whose byte size wraps around 2^64: 2^61 int64 items, 2^62 int32 items.
  absurd("wrap8.npy", "<i8", fmt::format("({}, {})", i64{1} << 31, i64{1} << 30));
  absurd("wrap4.npy", "<i4", fmt::format("({}, {}, {})", i64{1} << 31, i64{1} << 30, 2));
  absurd("digits.npy", "<i4", "(99999999999999999999999999,)");
}

// ------------------------------------------------------------------------------------------
// blocks(file=...): explicit block layouts against brute force from the array itself.
// ------------------------------------------------------------------------------------------

TEST_CASE("blocks(file=...) loads int64, bool, uint8 and float layouts correctly",
          "[npy][blocks]") {
  struct Case {
    std::string descr;
    int file_heads;
    int heads;
    i64 nq, nk, b;
  };
  const Case cases[] = {
      {"<i8", 1, 1, 200, 300, 16}, {"|b1", 1, 2, 300, 200, 32}, {"<i8", 3, 3, 129, 257, 24},
      {"|b1", 2, 2, 64, 64, 64},   {"|u1", 1, 1, 1, 300, 50},   {"<f4", 2, 2, 100, 130, 10},
  };
  std::mt19937_64 rng(12345);
  for (const Case& c : cases) {
    const i64 QB = (c.nq + c.b - 1) / c.b, KB = (c.nk + c.b - 1) / c.b;
    const std::size_t n = static_cast<std::size_t>(c.file_heads * QB * KB);
    std::vector<std::uint8_t> on(n);
    for (auto& x : on) x = rng() % 3 == 0;
    const std::string path = temp_file(
        fmt::format("blocks_{}_{}_{}_{}.npy", c.descr.substr(1), c.file_heads, c.nq, c.nk));
    const std::vector<i64> shape = {c.file_heads, QB, KB};
    if (c.descr == "<i8") {
      std::vector<std::int64_t> v(n);
      for (std::size_t k = 0; k < n; ++k) v[k] = on[k] ? -static_cast<std::int64_t>(k + 1) : 0;
      spattn::write_npy(path, c.descr, shape, v.data(), n * 8);
    } else if (c.descr == "<f4") {
      // Nonzero means allowed: 0.5 and NaN are nonzero, -0.0 is zero.
      std::vector<float> v(n);
      for (std::size_t k = 0; k < n; ++k)
        v[k] = on[k] ? (k % 2 ? 0.5f : NAN) : (k % 2 ? -0.0f : 0.0f);
      spattn::write_npy(path, c.descr, shape, v.data(), n * 4);
    } else {  // |b1 and |u1: one byte per cell
      std::vector<std::uint8_t> v(n);
      for (std::size_t k = 0; k < n; ++k) v[k] = on[k] ? (c.descr == "|u1" ? 255 : 1) : 0;
      spattn::write_npy(path, c.descr, shape, v.data(), n);
    }
    const auto p = spattn::parse_spec(fmt::format("blocks(file=\"{}\", block={})", path, c.b));
    for (int bq : {16, 32, 64, 128})
      for (int bk : {16, 128}) {
        const spattn::Geometry g{c.nq, c.nk, c.heads, bq, bk};
        const spattn::Layout L = spattn::build_layout(*p, g);
        INFO(c.descr << " file heads " << c.file_heads << " nq=" << c.nq << " nk=" << c.nk
                     << " b=" << c.b << " block_q=" << bq << " block_k=" << bk);
        CHECK_FALSE(L.scanned);
        for (int h = 0; h < c.heads; ++h) {
          const i64 fh = c.file_heads == 1 ? 0 : h;
          i64 mismatches = 0, allowed = 0;
          for (i64 i = 0; i < c.nq; ++i)
            for (i64 j = 0; j < c.nk; ++j) {
              const bool want = on[static_cast<std::size_t>((fh * QB + i / c.b) * KB + j / c.b)];
              allowed += want;
              mismatches += L.head(h).allows(i, j) != want;
            }
          CHECK(mismatches == 0);
          CHECK(L.head(h).counts().allowed_pairs == allowed);
        }
      }
  }
}

TEST_CASE("blocks(file=...) rejects files of the wrong rank or with empty dimensions",
          "[npy][blocks]") {
  const std::vector<std::uint8_t> cells(12, 1);
  const std::string rank4 = temp_file("rank4.npy");
  spattn::write_npy(rank4, "|u1", {1, 1, 3, 4}, cells.data(), cells.size());
  CHECK_THROWS_WITH(spattn::parse_spec(fmt::format("blocks(file=\"{}\")", rank4)),
                    Contains("rank 4"));
  const std::string empty = temp_file("empty_dim.npy");
  spattn::write_npy(empty, "|u1", {1, 0, 4}, cells.data(), 0);
  CHECK_THROWS_WITH(spattn::parse_spec(fmt::format("blocks(file=\"{}\")", empty)),
                    Contains("empty dimension"));
  const std::string bad = temp_file("bad_blocks.npy");
  write_bytes(bad, Bytes{'n', 'o', 'p', 'e'});
  CHECK_THROWS_AS(spattn::parse_spec(fmt::format("blocks(file=\"{}\")", bad)), spattn::UsageError);
}
