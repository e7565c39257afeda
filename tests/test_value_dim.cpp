// A value head dim d_v different from the query/key head dim d (q, k [.., d], v, o [.., d_v]):
// the flash executor on every execution path forced and the textbook baseline against the double
// reference, on every registered pattern with GQA and nq < nk, with d_v above and below d
// (including d = 64 and 128, whose specialized kernels must not run the P V loops at d); score
// modifications with it; strided v; thread-count determinism; the cost model's FLOPs; `spattn run
// --dv` and the sweep axis `dv`; bad input.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "cli_runner.hpp"
#include "small_specs.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/backward.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;

const spattn::ExecutionPath kPaths[] = {
    spattn::ExecutionPath::Auto,      spattn::ExecutionPath::Tiles,
    spattn::ExecutionPath::Runs,      spattn::ExecutionPath::Gather,
    spattn::ExecutionPath::Diagonals, spattn::ExecutionPath::Classes};

struct Case {
  i64 batch, hq, hkv, nq, nk, d, dv;
  int block_q, block_k;
  bool shared_layout;
};

// Flash on every path and the textbook against the reference (relative and LSE error <= 1e-5).
void check_spec(const std::string& spec, const Case& s, std::uint64_t seed,
                const spattn::ScoreMod& mod = {}) {
  INFO(spec << "  B=" << s.batch << " Hq=" << s.hq << " Hkv=" << s.hkv << " nq=" << s.nq
            << " nk=" << s.nk << " d=" << s.d << " dv=" << s.dv);
  spattn::Geometry g;
  g.nq = s.nq, g.nk = s.nk, g.heads = s.shared_layout ? 1 : static_cast<int>(s.hq);
  g.block_q = s.block_q, g.block_k = s.block_k;
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  const spattn::Layout layout = spattn::build_layout(*p, g);
  const spattn::Tensor q = spattn::test::random_tensor(s.batch, s.hq, s.nq, s.d, seed, 0);
  const spattn::Tensor k = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.d, seed, 1);
  const spattn::Tensor v = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.dv, seed, 2);
  spattn::ReferenceOptions ro;
  ro.mod = mod;
  const spattn::ReferenceResult ref =
      spattn::reference_attention(q.view(), k.view(), v.view(), *p, g, ro);
  REQUIRE(ref.shape[3] == s.dv);
  for (const spattn::ExecutionPath path : kPaths) {
    INFO("path " << spattn::execution_path_name(path));
    spattn::AttentionOptions opt;
    opt.path = path;
    opt.mod = mod;
    const auto r = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
    REQUIRE(r.o.shape == std::array<i64, 4>{s.batch, s.hq, s.nq, s.dv});
    const auto e = spattn::compare_to_reference(r.o.view(), r.lse.view(), ref);
    CHECK(e.finite);
    CHECK(e.max_rel <= 1e-5);
    CHECK(e.lse_max <= 1e-5);
  }
  spattn::TextbookOptions to;
  to.mod = mod;
  to.threads = 1;
  const auto r = spattn::textbook_attention(q.view(), k.view(), v.view(), layout, to);
  const auto e = spattn::compare_to_reference(r.o.view(), r.lse.view(), ref);
  INFO("textbook");
  CHECK(e.finite);
  CHECK(e.max_rel <= 1e-5);
  CHECK(e.lse_max <= 1e-5);
}

// The table spec with its placeholders filled in for case s.
std::string instantiate(const std::string& spec, const Case& s, const spattn::test::TempDir& dir,
                        std::uint64_t seed) {
  return spattn::test::instantiate_small_spec(spec, s.nq, s.nk, dir, seed);
}

}  // namespace

TEST_CASE("value dim: every registered pattern, every path, GQA and nq < nk", "[value-dim]") {
  const spattn::test::TempDir dir("spattn_value_dim");
  std::uint64_t seed = 1900;
  int patterns = 0;
  for (const spattn::PatternInfo* info : spattn::Registry::global().all()) {
    if (spattn::test::is_selector(*info)) continue;  // test_selectors.cpp covers them
    const auto it = spattn::test::small_spec_table().find(info->name);
    INFO("pattern " << info->name << " (add a small spec to tests/small_specs.hpp)");
    REQUIRE(it != spattn::test::small_spec_table().end());
    const bool square = info->name == "deepspeed" || info->name.rfind("ds_", 0) == 0;
    // d_v above d on even patterns, below it on odd ones.
    const i64 dv = patterns % 2 == 0 ? 40 : 9;
    Case c{1, 4, 2, square ? 96 : 70, square ? 96 : 131, 24, dv, 32, 16, false};
    check_spec(instantiate(it->second, c, dir, seed), c, seed);
    ++seed;
    ++patterns;
  }
  CHECK(patterns >= 20);
}

TEST_CASE("value dim: classes, tracks, diagonals, split rows and pairs; d = 64 and 128",
          "[value-dim]") {
  // d = 64 and 128 have specialized kernels: with d_v != d the generic instance must run.
  const Case c{2, 4, 2, 200, 333, 64, 24, 32, 32, true};
  const Case c128{1, 2, 1, 150, 150, 128, 72, 32, 32, true};
  const Case wide{1, 8, 2, 300, 300, 16, 64, 64, 64, false};
  const std::string specs[] = {"strided(8)", "st_strided(48)", "sliding(30)",
                               "random(3, block=1, seed=2)", "strided(32) & window(200, 40)"};
  std::uint64_t seed = 1700;
  for (const std::string& spec : specs) check_spec(spec, c, seed++);
  check_spec("dilated(48, 3)", c128, seed++);
  check_spec("st_strided(12) | sink(2)", c128, seed++);
  check_spec("sliding(40) | global(tokens=[5])", wide, seed++);  // a split row
  check_spec("dense - causal", c, seed++);                       // fully masked rows
}

TEST_CASE("value dim: with ALiBi, soft-capping and sinks", "[value-dim][score-mod]") {
  spattn::ScoreMod mod;
  mod.alibi_slopes = spattn::alibi_slopes(4);
  mod.softcap = 2.0f;
  mod.sinks = {0.5f, -1.0f, 0.0f, 1.5f};
  check_spec("sliding(20) | sink(2)", Case{1, 4, 2, 90, 140, 48, 20, 32, 16, false}, 11, mod);
  check_spec("strided(6)", Case{1, 4, 4, 120, 120, 20, 48, 32, 32, true}, 12, mod);
}

TEST_CASE("value dim: strided v, and bitwise the same on any thread count", "[value-dim]") {
  spattn::Geometry g;
  g.nq = g.nk = 100, g.heads = 1, g.block_q = g.block_k = 16;
  const auto p = spattn::parse_spec("sliding(20) | strided(7)");
  const auto layout = spattn::build_layout(*p, g);
  const auto q = spattn::test::random_tensor(1, 2, 100, 32, 5, 0);
  const auto k = spattn::test::random_tensor(1, 1, 100, 32, 5, 1);
  // v [1, 1, 100, 12] read as every other column of a [1, 1, 100, 24] tensor.
  const auto wide = spattn::test::random_tensor(1, 1, 100, 24, 5, 2);
  spattn::ConstTensorView v = wide.view();
  v.shape[3] = 12;
  v.stride[3] = 2;
  const auto ref = spattn::reference_attention(q.view(), k.view(), v, layout);
  for (const spattn::ExecutionPath path : kPaths) {
    INFO("path " << spattn::execution_path_name(path));
    spattn::AttentionOptions opt;
    opt.path = path;
    opt.threads = 1;
    const auto r1 = spattn::attention(q.view(), k.view(), v, layout, opt);
    const auto e = spattn::compare_to_reference(r1.o.view(), r1.lse.view(), ref);
    CHECK(e.max_rel <= 1e-5);
    CHECK(e.lse_max <= 1e-5);
    opt.threads = 3;
    const auto r3 = spattn::attention(q.view(), k.view(), v, layout, opt);
    CHECK(std::memcmp(r1.o.values.data(), r3.o.values.data(), r1.o.values.size() * sizeof(float)) ==
          0);
  }
}

TEST_CASE("value dim: the cost model counts 2 d + 2 d_v per pair", "[value-dim]") {
  spattn::Geometry g;
  g.nq = g.nk = 32, g.heads = 1, g.block_q = g.block_k = 16;
  const auto layout = spattn::build_layout(*spattn::parse_spec("causal"), g);
  spattn::AttentionShape s;
  s.batch = 1, s.q_heads = 2, s.kv_heads = 1, s.nq = s.nk = 32, s.dim = 192, s.dim_v = 128;
  const spattn::AttentionCost c = spattn::attention_cost(layout, s);
  const double pairs = 2.0 * 32 * 33 / 2;  // causal: 528 allowed pairs per head
  REQUIRE(static_cast<double>(c.allowed_pairs) == pairs);
  CHECK(c.useful_flops == (2 * 192 + 2 * 128) * pairs);
  // Inputs: q [2, 32, 192], k [1, 32, 192], v [1, 32, 128]; outputs o [2, 32, 128] and lse.
  CHECK(c.input_bytes == 4 * (2 * 32 * 192 + 32 * 192 + 32 * 128));
  CHECK(c.output_bytes == 4 * (2 * 32 * 129));
}

TEST_CASE("value dim: bad shapes are refused naming them", "[value-dim]") {
  spattn::Geometry g;
  g.nq = g.nk = 32, g.heads = 1, g.block_q = g.block_k = 16;
  const auto layout = spattn::build_layout(*spattn::parse_spec("causal"), g);
  const auto q = spattn::test::random_tensor(1, 2, 32, 16, 1, 0);
  const auto k = spattn::test::random_tensor(1, 1, 32, 16, 1, 1);
  const auto big = spattn::test::random_tensor(1, 1, 32, 300, 1, 2);
  CHECK_THROWS_WITH(
      spattn::attention(q.view(), k.view(), big.view(), layout),
      Catch::Contains("d_v") && Catch::Contains("300") && Catch::Contains("allowed 1..256"));
  const auto short_v = spattn::test::random_tensor(1, 1, 31, 8, 1, 2);
  CHECK_THROWS_WITH(spattn::attention(q.view(), k.view(), short_v.view(), layout),
                    Catch::Contains("tokens"));
  // An output of q's head dim is refused when d_v differs.
  const auto v = spattn::test::random_tensor(1, 1, 32, 8, 1, 2);
  spattn::Tensor o(1, 2, 32, 16), lse(1, 2, 32, 1);
  CHECK_THROWS_WITH(spattn::attention(q.view(), k.view(), v.view(), layout, o.view(), lse.view()),
                    Catch::Contains("[1, 2, 32, 8]"));
  // The backward pass does not take a separate d_v: refused, naming both.
  spattn::Tensor o8(1, 2, 32, 8);
  CHECK_THROWS_WITH(spattn::attention_backward(q.view(), k.view(), v.view(), o8.view(), lse.view(),
                                               o8.view(), layout),
                    Catch::Contains("d_v = 8"));
}

TEST_CASE("value dim: spattn run --dv and the sweep axis dv", "[value-dim][cli]") {
  const auto r = spattn::test::run_cli(
      "run 'sliding(40) | sink(2)' --n 150 --nk 200 --heads 4 --kv-heads 2 --d 48 --dv 20 "
      "--block 32 --check --repeats 1 --json");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["axes"]["head_dim"] == 48);
  CHECK(j["axes"]["head_dim_v"] == 20);
  CHECK(j["check"]["max_rel_error"].get<double>() <= 1e-5);
  CHECK(j["predicted"]["useful_flops"].get<double>() ==
        (2 * 48 + 2 * 20) * j["layout"]["allowed_pairs"].get<double>());
  const auto t = spattn::test::run_cli(
      "run causal --n 100 --heads 2 --d 16 --dv 40 --executor textbook --check --repeats 1 --json");
  REQUIRE(t.code == 0);
  CHECK(nlohmann::json::parse(t.out)["check"]["max_rel_error"].get<double>() <= 1e-5);
  for (const char* bad : {"--dv 0", "--dv 257"}) {
    INFO(bad);
    const auto b = spattn::test::run_cli(std::string("run causal --n 64 --repeats 1 ") + bad);
    CHECK(b.code == 2);
    CHECK_THAT(b.err, Catch::Matchers::Contains("--dv") && Catch::Matchers::Contains("1..256"));
  }

  using namespace spattn::experiments;
  const Experiment e = parse_experiment(
      "name = \"t\"\nseq_len = [96]\nheads = 2\nhead_dim = 32\nblock = 32\ndv = [0, 16]\n"
      "check = true\nrepeats = 1\npatterns = [{name = \"w\", spec = \"sliding(20)\"}]\n",
      "dv.toml");
  const std::vector<SweepPoint> points = expand_points(e, false);
  REQUIRE(points.size() == 2);
  CHECK(points[0].key.find("dv") == std::string::npos);  // the default stays out of the key
  CHECK(points[1].key.find(";dv=16") != std::string::npos);
  for (const SweepPoint& p : points) {
    INFO(p.key);
    const Measurement m = measure_point(point_from_json(point_to_json(p)));
    CHECK(m.axes.head_dim_v == (p.head_dim_v > 0 ? p.head_dim_v : 32));
    REQUIRE(m.check);
    CHECK(m.check->max_rel_error <= 1e-5);
  }
}
