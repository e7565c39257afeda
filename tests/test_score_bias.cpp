// An additive score bias (ScoreBias: per element [H or 1, nq, nk] or per tile [H or 1, q_blocks,
// k_blocks]) on every executor: the flash executor on every execution path forced and the textbook
// baseline against the double reference, on every registered pattern with GQA and nq < nk, alone
// and after soft-capping with ALiBi; residue classes, tracks, diagonals and row-level pairs; the
// order of the modifications by hand; `spattn run --bias`; bad shapes refused naming them.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "cli_runner.hpp"
#include "small_specs.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;

struct Case {
  i64 batch, hq, hkv, nq, nk, d;
  int block_q, block_k;
  bool shared_layout;
};

std::vector<float> normal_values(i64 n, std::uint64_t seed, float sigma) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(static_cast<std::size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// The biases a case runs: per element for every head, per element shared, per tile for every
// head, and per tile shared with soft-capping and ALiBi.
std::vector<std::pair<std::string, spattn::ScoreMod>> variants(const Case& s, std::uint64_t seed) {
  const i64 qb = (s.nq + s.block_q - 1) / s.block_q, kb = (s.nk + s.block_k - 1) / s.block_k;
  spattn::ScoreMod elem, elem1, tile, all;
  elem.bias = spattn::make_score_bias(normal_values(s.hq * s.nq * s.nk, seed, 1.5f), s.hq, s.nq,
                                      s.nk, 1, 1);
  elem1.bias =
      spattn::make_score_bias(normal_values(s.nq * s.nk, seed + 1, 1.5f), 1, s.nq, s.nk, 1, 1);
  tile.bias = spattn::make_score_bias(normal_values(s.hq * qb * kb, seed + 2, 2.0f), s.hq, qb, kb,
                                      s.block_q, s.block_k);
  all.bias = spattn::make_score_bias(normal_values(qb * kb, seed + 3, 2.0f), 1, qb, kb, s.block_q,
                                     s.block_k);
  all.softcap = 2.5f;
  all.alibi_slopes = spattn::alibi_slopes(s.hq);
  all.sinks.assign(static_cast<std::size_t>(s.hq), 0.25f);
  return {{"per element", elem},
          {"per element, shared", elem1},
          {"per tile", tile},
          {"per tile, shared, softcap, ALiBi, sinks", all}};
}

void check_spec(const std::string& spec, const Case& s, std::uint64_t seed) {
  INFO(spec << "  B=" << s.batch << " Hq=" << s.hq << " Hkv=" << s.hkv << " nq=" << s.nq
            << " nk=" << s.nk << " d=" << s.d);
  spattn::Geometry g;
  g.nq = s.nq, g.nk = s.nk, g.heads = s.shared_layout ? 1 : static_cast<int>(s.hq);
  g.block_q = s.block_q, g.block_k = s.block_k;
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  const spattn::Layout layout = spattn::build_layout(*p, g);
  const spattn::Tensor q = spattn::test::random_tensor(s.batch, s.hq, s.nq, s.d, seed, 0);
  const spattn::Tensor k = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.d, seed, 1);
  const spattn::Tensor v = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.d, seed, 2);
  for (const auto& [name, mod] : variants(s, seed)) {
    INFO("bias " << name);
    spattn::ReferenceOptions ro;
    ro.mod = mod;
    const spattn::ReferenceResult ref =
        spattn::reference_attention(q.view(), k.view(), v.view(), *p, g, ro);
    for (const spattn::ExecutionPath path :
         {spattn::ExecutionPath::Auto, spattn::ExecutionPath::Tiles, spattn::ExecutionPath::Runs,
          spattn::ExecutionPath::Gather, spattn::ExecutionPath::Diagonals,
          spattn::ExecutionPath::Classes}) {
      INFO("path " << spattn::execution_path_name(path));
      spattn::AttentionOptions opt;
      opt.path = path;
      opt.mod = mod;
      const auto r = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
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
}

// The table spec with its placeholders filled in for case s.
std::string instantiate(const std::string& spec, const Case& s, const spattn::test::TempDir& dir,
                        std::uint64_t seed) {
  return spattn::test::instantiate_small_spec(spec, s.nq, s.nk, dir, seed);
}

}  // namespace

TEST_CASE("score bias: every registered pattern, every path, GQA and nq < nk", "[score-bias]") {
  const spattn::test::TempDir dir("spattn_score_bias");
  std::uint64_t seed = 2900;
  int patterns = 0;
  for (const spattn::PatternInfo* info : spattn::Registry::global().all()) {
    if (spattn::test::is_selector(*info)) continue;  // test_selectors.cpp covers them
    const auto it = spattn::test::small_spec_table().find(info->name);
    INFO("pattern " << info->name << " (add a small spec to tests/small_specs.hpp)");
    REQUIRE(it != spattn::test::small_spec_table().end());
    const bool square = info->name == "deepspeed" || info->name.rfind("ds_", 0) == 0;
    Case c{1, 4, 2, square ? 96 : 70, square ? 96 : 131, 24, 32, 16, false};
    check_spec(instantiate(it->second, c, dir, seed), c, seed);
    ++seed;
    ++patterns;
  }
  CHECK(patterns >= 20);
}

TEST_CASE("score bias: residue classes, tracks, diagonals and row-level pairs", "[score-bias]") {
  const Case c{2, 4, 2, 200, 333, 16, 32, 32, true};
  const Case wide{1, 8, 2, 300, 300, 64, 64, 64, false};
  const std::string specs[] = {"strided(8)", "dilated(48, 3)", "st_strided(48)",
                               "random(3, block=1, seed=2)", "strided(32) & window(200, 40)"};
  std::uint64_t seed = 2700;
  for (const std::string& spec : specs) check_spec(spec, c, seed++);
  check_spec("sliding(40) | global(tokens=[5])", wide, seed++);  // a split row
  check_spec("dense - causal", c, seed++);                       // fully masked rows
}

TEST_CASE("score bias: soft-capping first, then ALiBi and the bias, then the mask",
          "[score-bias]") {
  // One query against two keys, by hand: z_j = C tanh(s_j / C) - m |p - j| + b_j.
  spattn::Geometry g;
  g.nq = 1, g.nk = 2, g.heads = 1, g.block_q = g.block_k = 16;
  const auto layout = spattn::build_layout(*spattn::parse_spec("dense"), g);
  spattn::Tensor q(1, 1, 1, 1), k(1, 1, 2, 1), v(1, 1, 2, 1);
  q.values = {2.0f};
  k.values = {1.5f, -0.5f};
  v.values = {1.0f, 3.0f};
  spattn::AttentionOptions opt;
  opt.scale = 1.0f;
  opt.mod.softcap = 2.0f;
  opt.mod.alibi_slopes = {0.5f};
  opt.mod.bias = spattn::make_score_bias({0.25f, -1.0f}, 1, 1, 2, 1, 1);
  const auto r = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
  const double z0 = 2.0 * std::tanh(3.0 / 2.0) - 0.5 * 1 + 0.25;  // query at position 1
  const double z1 = 2.0 * std::tanh(-1.0 / 2.0) - 0.0 - 1.0;
  const double lse = std::log(std::exp(z0) + std::exp(z1));
  CHECK(r.lse.values[0] == Approx(lse).epsilon(1e-6));
  CHECK(r.o.values[0] ==
        Approx((std::exp(z0) * 1.0 + std::exp(z1) * 3.0) / std::exp(lse)).epsilon(1e-6));
}

TEST_CASE("score bias: bad shapes are refused naming them", "[score-bias]") {
  spattn::Geometry g;
  g.nq = 40, g.nk = 50, g.heads = 1, g.block_q = g.block_k = 16;
  const auto layout = spattn::build_layout(*spattn::parse_spec("causal"), g);
  const auto q = spattn::test::random_tensor(1, 4, 40, 8, 1, 0);
  const auto k = spattn::test::random_tensor(1, 2, 50, 8, 1, 1);
  auto refused = [&](const spattn::ScoreBias& b, const std::string& needle) {
    spattn::AttentionOptions opt;
    opt.mod.bias = b;
    CHECK_THROWS_WITH(spattn::attention(q.view(), k.view(), k.view(), layout, opt),
                      Catch::Contains(needle));
    spattn::ReferenceOptions ro;
    ro.mod.bias = b;
    CHECK_THROWS_WITH(spattn::reference_attention(q.view(), k.view(), k.view(), layout, ro),
                      Catch::Contains(needle));
    spattn::TextbookOptions to;
    to.mod.bias = b;
    CHECK_THROWS_WITH(spattn::textbook_attention(q.view(), k.view(), k.view(), layout, to),
                      Catch::Contains(needle));
  };
  refused(spattn::make_score_bias(std::vector<float>(2 * 40 * 50), 2, 40, 50, 1, 1),
          "shape [2, 40, 50] but there are 4 query heads");
  refused(spattn::make_score_bias(std::vector<float>(40 * 49), 1, 40, 49, 1, 1),
          "allowed [4 or 1, 40, 50] (per element)");
  refused(spattn::make_score_bias(std::vector<float>(3 * 3), 1, 3, 3, 16, 16),
          "shape [1, 3, 3] (tiles of 16 x 16 tokens)");
  CHECK_THROWS_WITH(spattn::make_score_bias(std::vector<float>(5), 1, 2, 3, 1, 1),
                    Catch::Contains("5 values cannot have shape [1, 2, 3]"));
  std::vector<float> nan(40 * 50, 0.0f);
  nan[7] = std::nanf("");
  CHECK_THROWS_WITH(spattn::make_score_bias(nan, 1, 40, 50, 1, 1),
                    Catch::Contains("flat index 7 is nan"));
}

TEST_CASE("score bias: spattn run --bias per element and per tile", "[score-bias][cli]") {
  const spattn::test::TempDir dir("spattn_score_bias_cli");
  const std::string elem = dir.file("elem.npy"), tile = dir.file("tile.npy"),
                    bad = dir.file("bad.npy");
  const std::vector<float> e = normal_values(2 * 100 * 130, 1, 1.0f);
  spattn::write_npy(elem, "<f4", {2, 100, 130}, e.data(), e.size() * sizeof(float));
  const std::vector<float> t = normal_values(4 * 5, 2, 1.0f);  // 100 / 32 -> 4, 130 / 32 -> 5
  spattn::write_npy(tile, "<f4", {1, 4, 5}, t.data(), t.size() * sizeof(float));
  spattn::write_npy(bad, "<f4", {1, 4, 4}, t.data(), 16 * sizeof(float));
  for (const std::string& f : {elem, tile}) {
    INFO(f);
    const auto r = spattn::test::run_cli(fmt::format(
        "run 'sliding(40) | sink(2)' --n 100 --nk 130 --heads 2 --kv-heads 1 --d 16 --block 32 "
        "--bias '{}' --softcap 5 --check --repeats 1 --json",
        f));
    REQUIRE(r.code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["axes"]["bias"] == true);
    CHECK(j["check"]["max_rel_error"].get<double>() <= 1e-5);
    CHECK(j["check"]["max_lse_error"].get<double>() <= 1e-5);
  }
  const auto b = spattn::test::run_cli(fmt::format(
      "run causal --n 100 --nk 130 --heads 2 --d 16 --block 32 --bias '{}' --repeats 1", bad));
  CHECK(b.code == 2);
  CHECK_THAT(b.err, Catch::Matchers::Contains("shape [1, 4, 4] is not allowed") &&
                        Catch::Matchers::Contains("[2 or 1, 100, 130]") &&
                        Catch::Matchers::Contains("[2 or 1, 4, 5]"));
  // A quadratic bias beyond the memory budget is refused, not read (a BudgetError: exit 1).
  const auto big = spattn::test::run_cli(fmt::format(
      "run causal --n 100 --nk 130 --heads 2 --d 16 --bias '{}' --memory-budget 60K --repeats 1",
      elem));
  CHECK(big.code == 1);
  CHECK_THAT(big.err, Catch::Matchers::Contains("elem.npy"));
}
