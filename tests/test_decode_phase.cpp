// The decode phase of sweeps (phase = "decode"): the axes phase, kv_dtype, cache and
// decode_steps in experiment files, decode points measured through the cache simulation (their
// counts against hand counts and the full float32 cache), their refusals, the record's decode
// group through JSON, and the "decode" report of a small sweep.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;
using Catch::Matchers::Contains;
using spattn::KVDtype;
using spattn::experiments::Measurement;
using spattn::experiments::SweepPoint;

SweepPoint decode_point(const std::string& cache, KVDtype dtype, i64 n) {
  SweepPoint p;
  p.key = "test";
  p.pattern.name = p.pattern.spec = "dense";
  p.phase = "decode";
  p.cache = cache;
  p.kv_dtype = dtype;
  p.decode_steps = 5;
  p.n = n;
  p.head_dim = 16;
  p.heads = 4;
  p.kv_heads = 2;
  p.threads = 2;
  p.settings.seed = 3;
  p.settings.fidelity = true;
  return p;
}

double sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

TEST_CASE("decode phase: axes in experiment files", "[decode][toml]") {
  using spattn::experiments::expand_points;
  using spattn::experiments::parse_experiment;
  const std::string head =
      "name = \"d\"\npatterns = [\"dense\"]\nseq_len = [1024]\nphase = \"decode\"\n";
  const auto e =
      parse_experiment(head +
                           "cache = [\"full\", \"streaming(4,64)\", \"quest( 16 , 256 )\"]\n"
                           "kv_dtype = [\"f32\", \"int8\"]\ndecode_steps = 8\n",
                       "d.toml");
  const auto points = expand_points(e, false);
  REQUIRE(points.size() == 6);
  // The policies are kept in their canonical form; kv_dtype varies slower than cache (axis
  // table order).
  CHECK(points[0].cache == "full");
  CHECK(points[0].kv_dtype == KVDtype::F32);
  CHECK(points[1].cache == "streaming(4, 64)");
  CHECK(points[2].cache == "quest(16, 256)");
  CHECK(points[3].kv_dtype == KVDtype::Int8);
  CHECK(points[3].cache == "full");
  for (const SweepPoint& p : points) {
    CHECK(p.phase == "decode");
    CHECK(p.decode_steps == 8);
    CHECK_THAT(p.key, Contains(";phase=decode"));
    const SweepPoint back =
        spattn::experiments::point_from_json(spattn::experiments::point_to_json(p));
    CHECK(back.cache == p.cache);
    CHECK(back.kv_dtype == p.kv_dtype);
    CHECK(back.phase == p.phase);
    CHECK(back.decode_steps == p.decode_steps);
  }
  CHECK_THAT(points[4].key, Contains(";phase=decode;kv=int8;cache=streaming(4, 64);steps=8"));
  CHECK_THAT(points[3].key, Contains(";phase=decode;kv=int8;steps=8"));
  // Bad values name the key, the line and what is allowed.
  auto error_of = [&](const std::string& text) {
    try {
      (void)parse_experiment(text, "bad.toml");
    } catch (const spattn::UsageError& err) {
      return std::string(err.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of(head + "cache = [\"lru(4)\"]\n"),
             Contains("bad.toml:5") && Contains("cache[0] = \"lru(4)\"") && Contains("streaming"));
  CHECK_THAT(error_of(head + "cache = [\"streaming(4)\"]\n"), Contains("takes 2 arguments"));
  CHECK_THAT(error_of(head + "kv_dtype = \"fp8\"\n"),
             Contains("kv_dtype = \"fp8\" is not allowed") && Contains("bf16"));
  CHECK_THAT(
      error_of("name = \"d\"\npatterns = [\"dense\"]\nseq_len = [1024]\nphase = \"train\"\n"),
      Contains("phase = \"train\" is not allowed"));
  CHECK_THAT(error_of(head + "decode_steps = 0\n"), Contains("decode_steps"));
}

TEST_CASE("decode phase: points against hand counts and the full float32 cache", "[decode]") {
  using spattn::experiments::measure_point;
  const i64 n = 300, steps = 5;
  SECTION("full f32: the same as the full cache it is compared with, every key read") {
    const Measurement m = measure_point(decode_point("full", KVDtype::F32, n));
    REQUIRE(m.decode);
    REQUIRE(m.attention);
    CHECK(m.axes.phase == "decode");
    CHECK(m.axes.cache == std::optional<std::string>("full"));
    CHECK(m.attention->seconds.size() == static_cast<std::size_t>(steps));
    CHECK(m.decode->tokens_per_second == Approx(steps / sum(m.attention->seconds)));
    CHECK(m.decode->cache_tokens == n + steps);
    CHECK(m.decode->needle_recall == std::optional<double>(1.0));
    REQUIRE(m.fidelity);
    CHECK(m.fidelity->rel_l2_error == 0);
    CHECK(m.fidelity->recall_min == 1);
    CHECK(m.predicted->memory_bytes >= (2 * 2 * (n + steps) * 16) * 4);
  }
  SECTION("streaming(4, 32): 36 tokens held whatever the prompt, the needle at n / 3 gone") {
    const Measurement a = measure_point(decode_point("streaming(4, 32)", KVDtype::F32, n));
    const Measurement b = measure_point(decode_point("streaming(4, 32)", KVDtype::F32, 2 * n));
    for (const Measurement* m : {&a, &b}) {
      REQUIRE(m->decode);
      CHECK(m->decode->cache_tokens == 36);
      CHECK(m->decode->needle_recall == std::optional<double>(0.0));
      CHECK(m->fidelity->rel_l2_error > 0);
      CHECK(m->fidelity->recall_mean < 1);
    }
    CHECK(a.decode->kv_bytes_per_step == b.decode->kv_bytes_per_step);
    CHECK(a.decode->cache_bytes == b.decode->cache_bytes);
  }
  SECTION("bf16 and int8 K/V: half the f32 bytes, errors bounded by their rounding") {
    const Measurement f = measure_point(decode_point("full", KVDtype::F32, n));
    const Measurement h = measure_point(decode_point("full", KVDtype::BF16, n));
    const Measurement q = measure_point(decode_point("full", KVDtype::Int8, n));
    CHECK(h.axes.kv_dtype == "bf16");
    CHECK(f.decode->kv_bytes_per_step == 2 * h.decode->kv_bytes_per_step);
    // int8 rows: d bytes and a 4-byte scale, against 4 d bytes.
    CHECK(f.decode->kv_bytes_per_step * (16 + 4) == q.decode->kv_bytes_per_step * (4 * 16));
    CHECK(h.fidelity->rel_l2_error > 0);
    CHECK(h.fidelity->rel_l2_error < 1e-2);
    CHECK(q.fidelity->rel_l2_error > 0);
    CHECK(q.fidelity->rel_l2_error < 5e-2);
  }
}

TEST_CASE("decode phase: refusals", "[decode]") {
  using spattn::experiments::measure_point;
  auto error_of = [](const SweepPoint& p) {
    try {
      (void)measure_point(p);
    } catch (const spattn::UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  SweepPoint p = decode_point("full", KVDtype::F32, 100);
  p.pattern.spec = "causal";
  CHECK_THAT(error_of(p), Contains("the pattern must be \"dense\""));
  p = decode_point("full", KVDtype::F32, 100);
  p.batch = 2;
  CHECK_THAT(error_of(p), Contains("batch 2 in phase = \"decode\""));
  p = decode_point("full", KVDtype::F32, 100);
  p.executor = spattn::experiments::Executor::Textbook;
  CHECK_THAT(error_of(p), Contains("executor, path and tile_mode apply to phase = \"prefill\""));
  p = decode_point("h2o(8, 8)", KVDtype::F32, 70000);
  p.settings.fidelity = false;
  CHECK_THAT(error_of(p), Contains("65536"));
  // Decode-only axes on a prefill point.
  p = decode_point("streaming(4, 32)", KVDtype::F32, 100);
  p.phase = "prefill";
  CHECK_THAT(error_of(p), Contains("cache = 'streaming(4, 32)' applies to phase = \"decode\""));
}

TEST_CASE("decode phase: the record's decode group through JSON", "[decode][measurement]") {
  const Measurement m =
      spattn::experiments::measure_point(decode_point("quest(16, 64)", KVDtype::BF16, 256));
  const nlohmann::json j = nlohmann::json::parse(spattn::experiments::to_json(m).dump());
  CHECK(j["axes"]["phase"] == "decode");
  CHECK(j["axes"]["kv_dtype"] == "bf16");
  CHECK(j["axes"]["cache"] == "quest(16, 64)");
  const Measurement back = spattn::experiments::measurement_from_json(j, "test");
  REQUIRE(back.decode);
  CHECK(back.decode->steps == m.decode->steps);
  CHECK(back.decode->cache_tokens == m.decode->cache_tokens);
  CHECK(back.decode->kv_bytes_per_step == m.decode->kv_bytes_per_step);
  CHECK(back.decode->kernel == m.decode->kernel);
  CHECK(back.decode->needle_recall == m.decode->needle_recall);
  CHECK(back.axes.cache == m.axes.cache);
  CHECK(spattn::experiments::to_json(back).dump() == spattn::experiments::to_json(m).dump());
}

TEST_CASE("decode phase: a small sweep and its decode report", "[decode][cli]") {
  const spattn::test::TempDir dir("spattn_decode_sweep");
  const std::string toml = dir.file("d.toml");
  std::ofstream(toml)
      << "name = \"d\"\npatterns = [\"dense\"]\nphase = \"decode\"\n"
         "seq_len = [256, 512]\nheads = 2\nhead_dim = 16\nthreads = 1\n"
         "cache = [\"full\", \"streaming(4, 64)\"]\nkv_dtype = [\"f32\", \"bf16\"]\n"
         "decode_steps = 3\nfidelity = true\n[report]\nlayout = \"decode\"\n";
  const auto r = spattn::test::run_cli("sweep '" + toml + "' --out '" + dir.file("out") + "'");
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  std::filesystem::path table;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.file("out")))
    if (e.path().filename() == "table.md") table = e.path();
  REQUIRE(!table.empty());
  std::ifstream in(table);
  const std::string md{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  INFO(md);
  CHECK_THAT(md, Contains("Decode tokens per second"));
  CHECK_THAT(md, Contains("Speed-up of narrow K/V over float32"));
  CHECK_THAT(md, Contains("| streaming(4, 64) | bf16 "));
  CHECK_THAT(md, Contains("| full             | f32  "));
  // streaming(4, 64) holds 68 tokens at every N.
  CHECK_THAT(md, Contains("(68) "));
}
