// Captured Q/K/V in sweeps: float16 and bfloat16 files converted exactly, a capture longer than
// the point cut to its first or last tokens, {n} in the directory, and bad inputs found by
// --dry-run and before the first point runs; `spattn run --inputs DIR` without --n.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "cli_runner.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;
using Catch::Contains;
namespace fs = std::filesystem;
namespace ex = spattn::experiments;

// IEEE binary16 from its definition: (-1)^s 2^(e-15) (1 + m/1024), subnormals 2^-14 (m/1024).
double half_oracle(std::uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  const double sign = s ? -1.0 : 1.0;
  if (e == 31) return m == 0 ? sign * HUGE_VAL : std::nan("");
  if (e == 0) return sign * std::ldexp(m / 1024.0, -14);
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

void write_u16(const std::string& path, const char* descr, const std::vector<i64>& shape,
               const std::vector<std::uint16_t>& v) {
  spattn::write_npy(path, descr, shape, v.data(), v.size() * 2);
}

void write_f32(const std::string& path, const std::vector<i64>& shape,
               const std::vector<float>& v) {
  spattn::write_npy(path, "<f4", shape, v.data(), v.size() * sizeof(float));
}

// A capture [T, d] whose element (t, x) is 100 t + x (exact in float32): rows name their token.
std::vector<float> token_rows(i64 tokens, i64 d, float offset = 0) {
  std::vector<float> v(static_cast<std::size_t>(tokens * d));
  for (i64 t = 0; t < tokens; ++t)
    for (i64 x = 0; x < d; ++x) v[static_cast<std::size_t>(t * d + x)] = 100.0f * t + x + offset;
  return v;
}

void write_capture(const fs::path& dir, i64 tokens, i64 d) {
  fs::create_directories(dir);
  write_f32((dir / "q.npy").string(), {tokens, d}, token_rows(tokens, d, 0.25f));
  write_f32((dir / "k.npy").string(), {tokens, d}, token_rows(tokens, d, 0.5f));
  write_f32((dir / "v.npy").string(), {tokens, d}, token_rows(tokens, d, 0.75f));
}

spattn::AttentionShape shape(i64 nq, i64 nk, i64 d) {
  spattn::AttentionShape s;
  s.batch = 1, s.q_heads = 2, s.kv_heads = 1, s.nq = nq, s.nk = nk, s.dim = d;
  return s;
}

}  // namespace

TEST_CASE("float16 and bfloat16 bits convert to float32 exactly", "[inputs]") {
  // Every one of the 65536 half values against the formula: normals, subnormals, signed zeros,
  // infinities; NaNs stay NaN with their sign.
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const auto bits = static_cast<std::uint16_t>(h);
    const float got = spattn::half_to_float(bits);
    const double want = half_oracle(bits);
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
      REQUIRE(std::signbit(got) == ((h >> 15) != 0));
    } else {
      REQUIRE(static_cast<double>(got) == want);
      REQUIRE(std::signbit(got) == ((h >> 15) != 0));
    }
  }
  CHECK(spattn::half_to_float(0x3c00) == 1.0f);
  CHECK(spattn::half_to_float(0x7bff) == 65504.0f);                      // largest normal
  CHECK(spattn::half_to_float(0x0400) == std::ldexp(1.0f, -14));         // smallest normal
  CHECK(spattn::half_to_float(0x0001) == std::ldexp(1.0f, -24));         // smallest subnormal
  CHECK(spattn::half_to_float(0x03ff) == 1023 * std::ldexp(1.0f, -24));  // largest subnormal
  // bfloat16 is the top half of a float32.
  CHECK(spattn::bfloat16_to_float(0x3f80) == 1.0f);
  CHECK(spattn::bfloat16_to_float(0xc040) == -3.0f);
  CHECK(spattn::bfloat16_to_float(0x0001) == std::ldexp(1.0f, -133));   // smallest subnormal
  CHECK(spattn::bfloat16_to_float(0x7f7f) == std::ldexp(255.0f, 120));  // largest finite
  CHECK(std::isinf(spattn::bfloat16_to_float(0xff80)));
  CHECK(std::isnan(spattn::bfloat16_to_float(0x7fc0)));
}

TEST_CASE("input files in float16 and bfloat16 are read as float32", "[inputs]") {
  const spattn::test::TempDir dir("spattn_inputs_16");
  // 1.5, -2^-24 (subnormal), 65504, -0 as halves; 1.5, -2^-133, 3.0e38, -0 as bfloat16.
  write_u16(dir.file("h.npy"), "<f2", {2, 2}, {0x3e00, 0x8001, 0x7bff, 0x8000});
  write_u16(dir.file("b.npy"), "<u2", {2, 2}, {0x3fc0, 0x8001, 0x7f62, 0x8000});
  const ex::InputFile h = ex::read_input_npy(dir.file("h.npy"), 1 << 20);
  CHECK(h.tensor.values == std::vector<float>{1.5f, -std::ldexp(1.0f, -24), 65504.0f, -0.0f});
  CHECK(std::signbit(h.tensor.values[3]));
  const ex::InputFile b = ex::read_input_npy(dir.file("b.npy"), 1 << 20);
  CHECK(b.tensor.values == std::vector<float>{1.5f, -std::ldexp(1.0f, -133),
                                              spattn::bfloat16_to_float(0x7f62), -0.0f});
  CHECK(b.tensor.values[2] == std::ldexp(226.0f, 120));  // (1 + 98/128) 2^127
  // An infinity or NaN in a 16-bit file is refused like a float32 one: file and index.
  write_u16(dir.file("h.npy"), "<f2", {2, 2}, {0x3e00, 0x3e00, 0x3e00, 0x7c00});
  CHECK_THROWS_WITH(ex::read_input_npy(dir.file("h.npy"), 1 << 20),
                    Contains("h.npy: element [1, 1] (flat index 3) is inf"));
  write_u16(dir.file("b.npy"), "<u2", {2, 2}, {0x3e00, 0x7fc1, 0x3e00, 0x3e00});
  CHECK_THROWS_WITH(ex::read_input_npy(dir.file("b.npy"), 1 << 20),
                    Contains("b.npy: element [0, 1] (flat index 1) is nan"));
  // Other dtypes are named with what is allowed.
  write_u16(dir.file("i.npy"), "<i2", {2, 2}, {1, 2, 3, 4});
  CHECK_THROWS_WITH(ex::read_input_npy(dir.file("i.npy"), 1 << 20),
                    Contains("dtype '<i2' is not allowed") && Contains("float16 ('<f2')") &&
                        Contains("bfloat16"));
}

TEST_CASE("a capture longer than the point gives its first or last tokens", "[inputs]") {
  const spattn::test::TempDir dir("spattn_inputs_slice");
  write_capture(dir.path(), 10, 4);
  ex::InputSpec spec;
  spec.kind = "npy";
  spec.npy_dir = dir.path().string();
  // Row n of the point's tensor came from capture token t when its elements are 100 t + x + c.
  auto token_of = [](const spattn::Tensor& t, i64 h, i64 n, float c) {
    const float v = t.view().at(0, h, n, 0) - c;
    return static_cast<i64>(v / 100);
  };
  SECTION("first (the default): tokens 0..nk-1; queries the last nq of them") {
    const ex::Qkv in = ex::make_inputs(spec, shape(3, 6, 4), 0, 1 << 20);
    for (i64 n = 0; n < 6; ++n) CHECK(token_of(in.k, 0, n, 0.5f) == n);
    for (i64 n = 0; n < 6; ++n) CHECK(token_of(in.v, 0, n, 0.75f) == n);
    for (i64 h = 0; h < 2; ++h)
      for (i64 n = 0; n < 3; ++n) CHECK(token_of(in.q, h, n, 0.25f) == 3 + n);
    CHECK(in.k.view().at(0, 0, 5, 3) == 503.5f);
  }
  SECTION("last: tokens T-nk..T-1; queries the last nq") {
    spec.tokens = "last";
    const ex::Qkv in = ex::make_inputs(spec, shape(3, 6, 4), 0, 1 << 20);
    for (i64 n = 0; n < 6; ++n) CHECK(token_of(in.k, 0, n, 0.5f) == 4 + n);
    for (i64 n = 0; n < 3; ++n) CHECK(token_of(in.q, 1, n, 0.25f) == 7 + n);
    CHECK(ex::input_name(spec) == "npy:" + spec.npy_dir + " (last tokens)");
  }
  SECTION("a capture shorter than the point: the file, its length and N, header only") {
    for (auto check :
         {+[](const ex::InputSpec& s) { ex::make_inputs(s, shape(12, 12, 4), 0, 1 << 20); },
          +[](const ex::InputSpec& s) { ex::check_npy_inputs(s, shape(12, 12, 4)); }})
      CHECK_THROWS_WITH(check(spec), Contains("q.npy has 10 tokens (axis 0 of shape (10, 4))") &&
                                         Contains("the point needs 12 queries"));
  }
  SECTION("check_npy_inputs accepts what make_inputs accepts, and sizes the scratch") {
    // q.npy is 10 x 4 float32: 160 raw bytes and a 160-byte float copy.
    CHECK(ex::check_npy_inputs(spec, shape(6, 6, 4)) == 320);
    CHECK_THROWS_WITH(ex::check_npy_inputs(spec, shape(6, 6, 5)),
                      Contains("q.npy has shape (10, 4)"));
  }
}

TEST_CASE("experiment files: {n} in the npy directory and the tokens key", "[inputs]") {
  const std::string base = "name = \"t\"\npatterns = \"causal\"\nseq_len = [16, 32]\n";
  const ex::Experiment e = ex::parse_experiment(
      base + "inputs = {kind = \"npy\", dir = \"/cap/{n}\", tokens = \"last\"}\n", "t.toml");
  CHECK(e.settings.inputs.tokens == "last");
  const auto points = ex::expand_points(e, false);
  REQUIRE(points.size() == 2);
  CHECK(ex::input_dir(points[1].settings.inputs, points[1].n) == fs::path("/cap/32"));
  CHECK_THAT(points[0].key, Contains(";inputs=npy:/cap/{n} (last tokens)"));
  // The child gets the choice, and a point of an earlier version (no tokens) reads as "first".
  nlohmann::json j = ex::point_to_json(points[0]);
  CHECK(ex::point_from_json(j).settings.inputs.tokens == "last");
  j["settings"]["inputs"].erase("tokens");
  CHECK(ex::point_from_json(j).settings.inputs.tokens == "first");
  CHECK_THROWS_WITH(
      ex::parse_experiment(base + "inputs = {kind = \"npy\", dir = \"d\", tokens = \"middle\"}\n",
                           "t.toml"),
      Contains("t.toml:4") && Contains("middle") && Contains("first, last"));
  CHECK_THROWS_WITH(
      ex::parse_experiment(base + "inputs = {kind = \"random\", tokens = \"last\"}\n", "t.toml"),
      Contains("inputs.tokens is only allowed with kind = \"npy\""));
  CHECK_THROWS_WITH(ex::parse_experiment(base + "inputs = \"npy:cap/{len}\"\n", "t.toml"),
                    Contains("t.toml:4") && Contains("unknown placeholder '{len}'"));
}

TEST_CASE("spattn sweep: captured inputs checked by --dry-run and before the first point",
          "[inputs][cli]") {
  const spattn::test::TempDir dir("spattn_inputs_sweep");
  write_capture(dir.path() / "cap", 48, 8);  // one 48-token capture
  write_capture(dir.path() / "per" / "16", 16, 8);
  write_capture(dir.path() / "per" / "32", 40, 8);  // longer than 32: cut
  auto write_toml = [&](const std::string& inputs, const std::string& seq) {
    std::ofstream(dir.file("e.toml"))
        << "name = \"cap\"\npatterns = \"causal\"\nseq_len = " << seq
        << "\nhead_dim = 8\nheads = 2\nblock = 16\nrepeats = 1\nwarmup = 0\ninputs = " << inputs
        << "\n";
  };
  const std::string out = " --out '" + dir.file("results") + "' --no-report";
  SECTION("N beyond the capture: --dry-run names it, the sweep refuses to start") {
    write_toml("\"npy:cap\"", "[16, 32, 64]");
    const auto dry = spattn::test::run_cli("sweep '" + dir.file("e.toml") + "' --dry-run");
    CHECK(dry.code == 0);
    CHECK_THAT(dry.out, Contains("2 would run, 1 would not"));
    CHECK_THAT(dry.out, Contains("q.npy has 48 tokens") && Contains("needs 64 queries"));
    const auto r = spattn::test::run_cli("sweep '" + dir.file("e.toml") + "'" + out);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains("1 of 3 points cannot use their inputs, so nothing was run") &&
                          Contains("n=64") && Contains("q.npy has 48 tokens"));
    CHECK_FALSE(fs::exists(dir.file("results")));
  }
  SECTION("{n} picks a directory per N, and a longer capture is cut") {
    write_toml("\"npy:per/{n}\"", "[16, 32]");
    const auto r = spattn::test::run_cli("sweep '" + dir.file("e.toml") + "'" + out);
    REQUIRE(r.code == 0);
    fs::path run_dir;
    for (const auto& d : fs::directory_iterator(dir.path() / "results" / "cap")) run_dir = d.path();
    std::ifstream in(run_dir / "results.jsonl");
    int ok = 0;
    for (std::string line; std::getline(in, line);)
      if (line.find("\"kind\":\"point\"") != std::string::npos) {
        CHECK_THAT(line, Contains("\"status\":\"ok\"") && Contains("npy:") && Contains("per/{n}"));
        ++ok;
      }
    CHECK(ok == 2);
  }
}

TEST_CASE("spattn run --inputs DIR takes N from the files", "[inputs][cli]") {
  const spattn::test::TempDir dir("spattn_inputs_run");
  write_capture(dir.path(), 40, 8);
  const auto r = spattn::test::run_cli("run causal --block 16 --repeats 1 --json --inputs '" +
                                       dir.path().string() + "'");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("\"n\":40") && Contains("\"nk\":40") && Contains("\"head_dim\":8") &&
                        Contains("\"heads\":1"));
  const auto none = spattn::test::run_cli("run causal --repeats 1");
  CHECK(none.code == 2);
  CHECK_THAT(none.err, Contains("--n"));
}
