// Score modifications (ALiBi, soft-capping, learned sinks, the scale) on every executor: the flash
// executor on every execution path forced, and the textbook baseline, against the double
// reference, on every registered pattern with GQA and nq < nk; the paper's ALiBi slopes by hand;
// the rules for fully masked rows; bad input.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "small_specs.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/cost.hpp"
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

struct Variant {
  const char* name;
  spattn::ScoreMod mod;
  std::optional<float> scale;
};

// The variants each case runs: each modification alone, all together, and a non-default scale
// with soft-capping. Slopes of 4 query heads that are not powers of two (the interleaved rule
// for 3, then one more) and sinks of both signs.
std::vector<Variant> variants(i64 hq) {
  spattn::ScoreMod alibi, cap, sinks, all;
  alibi.alibi_slopes = spattn::alibi_slopes(hq);
  if (hq > 1) alibi.alibi_slopes[1] = 0.3f;  // any slopes, not only the paper's
  cap.softcap = 1.5f;  // scores of N(0,1) inputs reach ~ +-4: the cap bends them
  for (i64 h = 0; h < hq; ++h) sinks.sinks.push_back(static_cast<float>(h % 3) - 1.2f);
  all.alibi_slopes = alibi.alibi_slopes;
  all.softcap = 2.5f;
  all.sinks = sinks.sinks;
  return {{"alibi", alibi, {}},
          {"softcap", cap, {}},
          {"sinks", sinks, {}},
          {"alibi+softcap+sinks", all, {}},
          {"softcap, scale 0.7", cap, 0.7f}};
}

// The table spec with its placeholders filled in for case s.
std::string instantiate(const std::string& spec, const Case& s, const spattn::test::TempDir& dir,
                        std::uint64_t seed) {
  return spattn::test::instantiate_small_spec(spec, s.nq, s.nk, dir, seed);
}

// Every variant of `spec` on case s: the flash executor on every path and the textbook baseline
// against the reference (relative error and LSE error <= 1e-5).
void check_spec(const std::string& spec, const Case& s, std::uint64_t seed) {
  INFO(spec << "  B=" << s.batch << " Hq=" << s.hq << " Hkv=" << s.hkv << " nq=" << s.nq
            << " nk=" << s.nk << " d=" << s.d << " blocks " << s.block_q << "x" << s.block_k);
  spattn::Geometry g;
  g.nq = s.nq, g.nk = s.nk, g.heads = s.shared_layout ? 1 : static_cast<int>(s.hq);
  g.block_q = s.block_q, g.block_k = s.block_k;
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  const spattn::Layout layout = spattn::build_layout(*p, g);
  const spattn::Tensor q = spattn::test::random_tensor(s.batch, s.hq, s.nq, s.d, seed, 0);
  const spattn::Tensor k = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.d, seed, 1);
  const spattn::Tensor v = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.d, seed, 2);
  for (const Variant& var : variants(s.hq)) {
    INFO("variant " << var.name);
    spattn::ReferenceOptions ro;
    ro.mod = var.mod;
    if (var.scale) ro.scale = *var.scale;
    const spattn::ReferenceResult ref =
        spattn::reference_attention(q.view(), k.view(), v.view(), *p, g, ro);
    for (const spattn::ExecutionPath path :
         {spattn::ExecutionPath::Auto, spattn::ExecutionPath::Tiles, spattn::ExecutionPath::Runs,
          spattn::ExecutionPath::Gather, spattn::ExecutionPath::Diagonals,
          spattn::ExecutionPath::Classes}) {
      INFO("path " << spattn::execution_path_name(path));
      spattn::AttentionOptions opt;
      opt.path = path;
      opt.mod = var.mod;
      opt.scale = var.scale;
      const auto r = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
      const auto e = spattn::compare_to_reference(r.o.view(), r.lse.view(), ref);
      CHECK(e.finite);
      CHECK(e.max_rel <= 1e-5);
      CHECK(e.lse_max <= 1e-5);
      // The modifications' buffers are within the cost model's workspace estimate.
      if (r.stats.split_rows == 0)
        CHECK(r.stats.workspace_bytes <=
              spattn::attention_cost(layout, s.batch, s.hq, s.hkv, s.d, 0, path)
                  .flash_workspace_bytes);
    }
    spattn::TextbookOptions to;
    to.mod = var.mod;
    to.scale = var.scale;
    to.threads = 1;
    const auto r = spattn::textbook_attention(q.view(), k.view(), v.view(), layout, to);
    const auto e = spattn::compare_to_reference(r.o.view(), r.lse.view(), ref);
    INFO("textbook");
    CHECK(e.finite);
    CHECK(e.max_rel <= 1e-5);
    CHECK(e.lse_max <= 1e-5);
  }
}

}  // namespace

TEST_CASE("score mods: the ALiBi paper's slopes", "[score-mod]") {
  const std::vector<float> eight = spattn::alibi_slopes(8);
  REQUIRE(eight.size() == 8);
  for (int h = 0; h < 8; ++h) CHECK(eight[h] == std::ldexp(1.0f, -(h + 1)));
  // 6 heads: the 4 slopes of 4 (2^-2, 2^-4, 2^-6, 2^-8), then those of 8 at indices 0 and 2.
  const std::vector<float> six = spattn::alibi_slopes(6);
  const std::vector<float> want = {0.25f, 0.0625f, 0.015625f, 0.00390625f, 0.5f, 0.125f};
  CHECK(six == want);
  CHECK(spattn::alibi_slopes(1) == std::vector<float>{0.00390625f});
  CHECK_THROWS_AS(spattn::alibi_slopes(0), spattn::UsageError);
}

TEST_CASE("score mods: every registered pattern, every path, GQA and nq < nk", "[score-mod]") {
  const spattn::test::TempDir dir("spattn_score_mod");
  std::uint64_t seed = 900;
  int patterns = 0;
  for (const spattn::PatternInfo* info : spattn::Registry::global().all()) {
    // Selectors resolve to static patterns before the executor sees them (test_selectors.cpp).
    if (spattn::test::is_selector(*info)) continue;
    const auto it = spattn::test::small_spec_table().find(info->name);
    INFO("pattern " << info->name << " (add a small spec to tests/small_specs.hpp)");
    REQUIRE(it != spattn::test::small_spec_table().end());
    const bool square = info->name == "deepspeed" || info->name.rfind("ds_", 0) == 0;
    // GQA 4:2 with nq < nk (queries at the end of the keys), ragged lengths, one layout per head.
    Case c{1, 4, 2, square ? 96 : 70, square ? 96 : 131, 24, 32, 16, false};
    check_spec(instantiate(it->second, c, dir, seed), c, seed);
    ++seed;
    ++patterns;
  }
  CHECK(patterns >= 20);
}

TEST_CASE("score mods: residue classes, tracks, bands and row-level pairs", "[score-mod]") {
  // Lengths where the forced Classes path runs class items (at least 16 queries per class),
  // residue tracks (st_strided(48), strided(32) & window), split rows (global tokens) and the
  // row-level pairs (random, block=1); GQA with nq < nk.
  const Case c{2, 4, 2, 200, 333, 16, 32, 32, true};
  const Case wide{1, 8, 2, 300, 300, 64, 64, 64, false};
  const std::string specs[] = {"strided(8)",
                               "dilated(48, 3)",
                               "st_strided(12) | sink(2)",
                               "sliding(30)",
                               "random(3, block=1, seed=2)",
                               "st_strided(48)",
                               "strided(32) & window(200, 40)"};
  std::uint64_t seed = 700;
  for (const std::string& spec : specs) check_spec(spec, c, seed++);
  check_spec("sliding(40) | global(tokens=[5])", wide, seed++);
  check_spec("dense - causal", c, seed++);  // fully masked last rows
}

TEST_CASE("score mods: fully masked rows give O = 0 and LSE = the sink", "[score-mod]") {
  spattn::Geometry g;
  g.nq = 40, g.nk = 40, g.heads = 1, g.block_q = 16, g.block_k = 16;
  const auto p = spattn::parse_spec("dense - causal");  // the last row keeps no key
  const auto layout = spattn::build_layout(*p, g);
  const auto q = spattn::test::random_tensor(1, 2, 40, 8, 3, 0);
  const auto k = spattn::test::random_tensor(1, 1, 40, 8, 3, 1);
  const auto v = spattn::test::random_tensor(1, 1, 40, 8, 3, 2);
  spattn::AttentionOptions opt;
  opt.mod.sinks = {0.5f, -3.0f};
  opt.mod.alibi_slopes = {0.25f, 0.125f};
  const auto r = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
  for (int h = 0; h < 2; ++h) {
    CHECK(r.lse.view().at(0, h, 39, 0) == opt.mod.sinks[h]);
    for (int x = 0; x < 8; ++x) CHECK(r.o.view().at(0, h, 39, x) == 0.0f);
  }
  // A kept row: the sink lowers every weight by the same factor e^(LSE - LSE with the sink).
  spattn::AttentionOptions plain;
  plain.mod.alibi_slopes = opt.mod.alibi_slopes;
  const auto r0 = spattn::attention(q.view(), k.view(), v.view(), layout, plain);
  const double lse0 = r0.lse.view().at(0, 1, 0, 0), lse = r.lse.view().at(0, 1, 0, 0);
  CHECK(lse == Approx(std::log(std::exp(lse0) + std::exp(-3.0))).epsilon(1e-6));
  CHECK(r.o.view().at(0, 1, 0, 3) ==
        Approx(r0.o.view().at(0, 1, 0, 3) * std::exp(lse0 - lse)).epsilon(1e-5));
}

TEST_CASE("score mods: bad input is refused naming the value", "[score-mod]") {
  spattn::Geometry g;
  g.nq = 32, g.nk = 32, g.heads = 1, g.block_q = 16, g.block_k = 16;
  const auto layout = spattn::build_layout(*spattn::parse_spec("causal"), g);
  const auto q = spattn::test::random_tensor(1, 4, 32, 8, 1, 0);
  const auto k = spattn::test::random_tensor(1, 2, 32, 8, 1, 1);
  const auto v = spattn::test::random_tensor(1, 2, 32, 8, 1, 2);
  auto refused = [&](const spattn::ScoreMod& mod, const std::string& needle) {
    spattn::AttentionOptions opt;
    opt.mod = mod;
    CHECK_THROWS_WITH(spattn::attention(q.view(), k.view(), v.view(), layout, opt),
                      Catch::Contains(needle));
    spattn::ReferenceOptions ro;
    ro.mod = mod;
    CHECK_THROWS_AS(spattn::reference_attention(q.view(), k.view(), v.view(), layout, ro),
                    spattn::UsageError);
    spattn::TextbookOptions to;
    to.mod = mod;
    CHECK_THROWS_AS(spattn::textbook_attention(q.view(), k.view(), v.view(), layout, to),
                    spattn::UsageError);
  };
  spattn::ScoreMod m;
  m.alibi_slopes = {0.5f, 0.25f, 0.125f};
  refused(m, "3 values but there are 4 query heads");
  m = {};
  m.sinks = {0.0f, 1.0f};
  refused(m, "2 values but there are 4 query heads");
  m = {};
  m.sinks = {0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f, 2.0f};
  refused(m, "query head 1 is nan");
  m = {};
  m.softcap = 0.0f;
  refused(m, "softcap = 0");
  m.softcap = -3.0f;
  refused(m, "softcap = -3");
}

TEST_CASE("score mods: the cost model counts their work", "[score-mod]") {
  spattn::Geometry g;
  g.nq = 32, g.nk = 32, g.heads = 1, g.block_q = 16, g.block_k = 16;
  const auto layout = spattn::build_layout(*spattn::parse_spec("dense"), g);
  spattn::AttentionShape s;
  s.batch = 1, s.q_heads = 2, s.kv_heads = 1, s.nq = 32, s.nk = 32, s.dim = 8;
  spattn::AttentionCost c = spattn::attention_cost(layout, s);
  REQUIRE(c.computed_pairs == 2 * 32 * 32);  // dense: every pair of both heads
  spattn::add_score_mod_cost(c, {}, s);
  CHECK(c.score_mod_flops == 0);
  spattn::ScoreMod m;
  m.softcap = 3.0f;
  spattn::add_score_mod_cost(c, m, s);
  CHECK(c.score_mod_flops == spattn::kSoftcapFlopsPerPair * 2048);
  m.alibi_slopes = {0.5f, 0.25f};
  m.sinks = {0.0f, 1.0f};
  spattn::add_score_mod_cost(c, m, s);
  CHECK(c.score_mod_flops ==
        (spattn::kSoftcapFlopsPerPair + spattn::kAlibiFlopsPerPair) * 2048 + 2 * 32 * (8 + 6));
}
