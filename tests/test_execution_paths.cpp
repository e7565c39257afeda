// The flash executor's execution paths (execution_path.hpp) and the diagonal covers behind the
// diagonal path: covers against brute-force diagonals, run arithmetic against brute-force sets,
// bitwise determinism of every path over thread counts, and the plan's efficiency on the
// patterns whose tiles waste most. Accuracy of every path against the reference, for every
// registered pattern and compositions, is in test_executor_accuracy.cpp.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/patterns/diagonals.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using i64 = std::int64_t;

// Offsets o whose diagonal holds at least one pair of the geometry and whose every pair is
// allowed on head h, by brute force.
std::set<i64> full_diagonals(const spattn::Pattern& p, const spattn::Geometry& g, int h) {
  std::set<i64> out;
  for (i64 o = spattn::min_offset(g); o <= spattn::max_offset(g); ++o) {
    bool any = false, all = true;
    for (i64 i = 0; i < g.nq && all; ++i) {
      const i64 j = g.position(i) - o;
      if (j < 0 || j >= g.nk) continue;
      any = true;
      all = p.allows(g, h, i, j);
    }
    if (any && all) out.insert(o);
  }
  return out;
}

std::set<i64> offsets_of(const spattn::DiagonalCover& c) {
  const auto v = spattn::cover_offsets(c);
  return {v.begin(), v.end()};
}

spattn::Geometry geometry(i64 nq, i64 nk, int heads, int block) {
  spattn::Geometry g;
  g.nq = nq, g.nk = nk, g.heads = heads, g.block_q = block, g.block_k = block;
  return g;
}

}  // namespace

TEST_CASE("diagonal covers: exact for residue rules and bands, a subset for compositions",
          "[paths]") {
  struct Case {
    std::string spec;
    bool exact;  // the cover is every full diagonal
  };
  const Case cases[] = {
      {"strided(9)", true},
      {"dilated(5, 3)", true},
      {"sliding(12)", true},
      {"window(6, 2)", true},
      {"causal", true},
      {"dense", true},
      {"strided(9) & causal", true},
      {"st_strided(16)", true},
      {"longformer_dilated(8, d=2)", false},  // its global tokens add diagonals of their own
      {"causal & (strided(5) | sliding(20))", true},
      {"(sliding(30) | strided(8)) & window(40, 10)", true},
      {"strided(6) & strided(4)", false},  // lcm 12: not a divisor pair, left to the tiles
      {"strided(7) | sink(2)", false},
      {"sliding(40) - strided(5)", false},
      {"heads(0: strided(3); 1: dilated(2, 5))", true},
      {"diagonals([0, 1, 2, 5, -3, -4, 200])", true},
      {"diagonals([0, 7, 8, 9, 10]) & causal", true},
      {"diagonals([]) | strided(11)", true},
  };
  for (const auto& [nq, nk] : {std::pair<i64, i64>{50, 70}, {64, 64}, {33, 20}}) {
    const spattn::Geometry g = geometry(nq, nk, 2, 16);
    for (const Case& c : cases) {
      INFO(c.spec << " nq=" << nq << " nk=" << nk);
      const auto p = spattn::parse_spec(c.spec);
      for (int h = 0; h < 2; ++h) {
        spattn::DiagonalCover cover;
        p->diagonal_cover(g, h, cover);
        const std::set<i64> got = offsets_of(cover);
        const std::set<i64> full = full_diagonals(*p, g, h);
        for (i64 o : got) {
          INFO("offset " << o);
          CHECK(full.count(o) == 1);
        }
        if (c.exact) CHECK(got == full);
      }
    }
  }
  // A layout carries the cover of each distinct head layout.
  const auto layout =
      spattn::build_layout(*spattn::parse_spec("strided(10)"), geometry(40, 40, 1, 16));
  REQUIRE(layout.diagonals.size() == 1);
  CHECK(offsets_of(layout.diagonals[0]) == std::set<i64>{-30, -20, -10, 0, 10, 20, 30});
}

TEST_CASE("diagonal runs: intersection against brute-force sets", "[paths]") {
  std::mt19937_64 rng(11);
  auto pick = [&](i64 lo, i64 hi) { return std::uniform_int_distribution<i64>(lo, hi)(rng); };
  auto members = [](const spattn::DiagonalRun& r) {
    std::set<i64> s;
    for (i64 o = r.first; !r.empty() && o <= r.last; o += r.step) s.insert(o);
    return s;
  };
  for (int trial = 0; trial < 2000; ++trial) {
    spattn::DiagonalRun a{pick(-40, 40), 0, pick(1, 12)}, b{pick(-40, 40), 0, pick(1, 12)};
    a.last = a.first + pick(-3, 80);
    b.last = b.first + pick(-3, 80);
    const std::set<i64> sa = members(a), sb = members(b);
    std::set<i64> both;
    for (i64 o : sa)
      if (sb.count(o)) both.insert(o);
    const spattn::DiagonalRun r = spattn::intersect(a, b);
    INFO(fmt::format("a = [{}, {}] / {}, b = [{}, {}] / {}", a.first, a.last, a.step, b.first,
                     b.last, b.step));
    const std::set<i64> got = members(r);
    for (i64 o : got) CHECK(both.count(o) == 1);
    if (a.step % b.step == 0 || b.step % a.step == 0) CHECK(got == both);
    for (i64 o = -50; o <= 130; ++o) CHECK(r.contains(o) == (got.count(o) == 1));
  }
}

TEST_CASE("execution paths: bitwise the same output on 1, 2 and 3 threads", "[paths]") {
  const i64 B = 2, Hq = 4, Hkv = 2, N = 96, d = 24;
  const std::string specs[] = {"st_strided(16) | sink(2)", "dilated(5, 3) | global(2)",
                               "st_fixed(32, 8)", "sliding(12) | sink(3)",
                               "ds_fixed(block=16, num_local_blocks=4, num_global_blocks=1)"};
  const spattn::Tensor q = spattn::test::random_tensor(B, Hq, N, d, 3, 0);
  const spattn::Tensor k = spattn::test::random_tensor(B, Hkv, N, d, 3, 1);
  const spattn::Tensor v = spattn::test::random_tensor(B, Hkv, N, d, 3, 2);
  for (const std::string& spec : specs) {
    const auto layout = spattn::build_layout(*spattn::parse_spec(spec), geometry(N, N, 1, 32));
    for (const spattn::ExecutionPath path :
         {spattn::ExecutionPath::Auto, spattn::ExecutionPath::Tiles, spattn::ExecutionPath::Runs,
          spattn::ExecutionPath::Gather, spattn::ExecutionPath::Diagonals,
          spattn::ExecutionPath::Classes}) {
      INFO(spec << " path " << spattn::execution_path_name(path));
      spattn::AttentionOptions opt;
      opt.path = path;
      opt.threads = 1;
      const auto one = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
      for (int t : {2, 3}) {
        opt.threads = t;
        const auto r = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
        CHECK(r.o.values == one.o.values);
        CHECK(r.lse.values == one.lse.values);
      }
    }
  }
}

TEST_CASE("execution paths: the paths each force, and the pairs they count", "[paths]") {
  const spattn::Geometry g = geometry(256, 256, 1, 64);
  auto cost = [&](const std::string& spec, spattn::ExecutionPath path) {
    return spattn::attention_cost(spattn::build_layout(*spattn::parse_spec(spec), g), 1, 1, 1, 8, 1,
                                  path);
  };
  // strided(16) & causal on the diagonal path, as residue tracks: T = 16, one residue (0), one
  // track of the 16 query vectors, query blocks of 4 (each meets up to 16 key vectors). Block
  // a0 = 0, 4, 8, 12 meets key vectors 0 .. a0 + 3 at offsets 16(a - b) >= 0, in chunks of 8
  // from 0, so it evaluates 4 x (a0 + 4) vector pairs of 16 lanes: 16 x 4 x (4 + 8 + 12 + 16)
  // = 2560 pairs, against 16 x (1 + 2 + ... + 16) = 2176 allowed (the pairs above the diagonal
  // of each block's last 4 key vectors, 6 x 16 per block, are masked).
  const auto diag = cost("strided(16) & causal", spattn::ExecutionPath::Diagonals);
  CHECK(diag.allowed_pairs == 2176);
  CHECK(diag.paths.diagonal == 2560);
  CHECK(diag.paths.whole + diag.paths.run + diag.paths.gather == 0);  // every tile left empty
  CHECK(diag.paths.skipped_tiles == diag.kept_tiles);
  // sliding(10) is a dense band of 10 diagonals: the single-vector path evaluates all 10
  // offsets in each of the 16 vectors (every offset reaches a key from some lane), 2560 pairs,
  // against 2560 - 45 allowed (the first 9 queries see fewer keys).
  const auto band = cost("sliding(10)", spattn::ExecutionPath::Diagonals);
  CHECK(band.allowed_pairs == 2560 - 45);
  CHECK(band.paths.diagonal == 2560);
  // Tiles: the whole area, nothing else.
  const auto tiles = cost("strided(16) & causal", spattn::ExecutionPath::Tiles);
  CHECK(tiles.paths.whole == tiles.tile_area_pairs);
  CHECK(tiles.paths.diagonal == 0);
  // sink(3) | sliding(12): the sink tile's 3 used columns are gathered or run, never whole.
  const auto gather = cost("sink(3) | sliding(12)", spattn::ExecutionPath::Gather);
  CHECK(gather.paths.diagonal == 0);
  CHECK(gather.paths.gather > 0);
  const auto runs = cost("sink(3) | sliding(12)", spattn::ExecutionPath::Runs);
  CHECK(runs.paths.gather == 0);
  CHECK(runs.paths.run > 0);
  CHECK(runs.computed_pairs < tiles.tile_area_pairs);
  // A plan never computes fewer pairs than it keeps.
  for (auto p : {spattn::ExecutionPath::Auto, spattn::ExecutionPath::Runs,
                 spattn::ExecutionPath::Gather, spattn::ExecutionPath::Diagonals})
    CHECK(cost("st_fixed(32, 4) | strided(7)", p).computed_pairs >=
          cost("st_fixed(32, 4) | strided(7)", p).allowed_pairs);
  CHECK(spattn::parse_execution_path("gather") == spattn::ExecutionPath::Gather);
  CHECK(spattn::parse_execution_path("classes") == spattn::ExecutionPath::Classes);
  CHECK_THROWS_WITH(spattn::parse_execution_path("fast"),
                    Catch::Contains("'fast'") &&
                        Catch::Contains("auto, tiles, runs, gather, diagonals, classes"));
}

TEST_CASE("execution paths: residue classes, hand-counted", "[paths]") {
  auto cost = [&](const std::string& spec, i64 n, spattn::ExecutionPath path) {
    return spattn::attention_cost(
        spattn::build_layout(*spattn::parse_spec(spec), geometry(n, n, 1, 64)), 1, 1, 1, 8, 1,
        path);
  };
  // strided(16) & causal at N = 1024: 16 classes of 64 queries, each a causal block over its 64
  // keys (allowed 16 x 64 x 65 / 2 = 33280). Items of Q queries meet key indices 0 .. a0 + Q - 1:
  // Q = 64 evaluates 64 x 64 per class (65536 in all, efficiency 0.51), Q = 32 32 x (32 + 64)
  // (49152, 0.68), Q = 16 16 x (16 + 32 + 48 + 64) (40960, 0.81): only Q = 16 keeps 70%, and
  // it is also the cheapest by the kernel costs, in Auto as when forced.
  for (const auto path : {spattn::ExecutionPath::Classes, spattn::ExecutionPath::Auto}) {
    INFO(spattn::execution_path_name(path));
    const auto c = cost("strided(16) & causal", 1024, path);
    CHECK(c.allowed_pairs == 33280);
    CHECK(c.paths.diagonal == 40960);
    CHECK(c.paths.whole + c.paths.run + c.paths.gather == 0);
  }
  // sliding(10) at N = 256, forced: one class of step 1 (the band itself). No item size keeps
  // 70% (2560 pairs of the rows against 6256 for Q = 16), so the first, Q = 64, stays: items at
  // 0, 64, 128, 192 meet keys 0 .. 63, then a0 - 9 .. a0 + 63: 64 x 64 + 3 x 64 x 73 = 18112.
  const auto band = cost("sliding(10)", 256, spattn::ExecutionPath::Classes);
  CHECK(band.allowed_pairs == 2560 - 45);
  CHECK(band.paths.diagonal == 18112);
  // random(4, block=1): four keys per query and no shared columns; a column gather would
  // evaluate 64 rows x ~40 used columns per tile, so every tile runs its kept pairs one by one
  // (the row-level gather): evaluated = allowed, counted as gathered.
  const auto rnd = cost("random(4, block=1, seed=1)", 256, spattn::ExecutionPath::Auto);
  CHECK(rnd.allowed_pairs == 4 * 256);
  CHECK(rnd.paths.gather == rnd.allowed_pairs);
  CHECK(rnd.paths.whole + rnd.paths.run + rnd.paths.diagonal == 0);
  CHECK(cost("random(4, block=1, seed=1)", 256, spattn::ExecutionPath::Gather).paths.gather >
        4 * rnd.allowed_pairs);
  // Diagonals never takes classes: the residue tracks' count of the test above.
  CHECK(cost("strided(16) & causal", 256, spattn::ExecutionPath::Diagonals).paths.diagonal == 2560);
}

TEST_CASE("execution paths: efficiency of the patterns that waste tiles, at 16K and 64K",
          "[paths]") {
  // Efficiency = allowed / computed pairs of the Auto plan (counts, not speed).
  std::vector<std::string> specs = {
      "strided(128)",
      "st_strided(128)",
      "st_fixed(128, 8)",
      "ds_variable(block=16, local_window_blocks=[4], global_block_indices=[0])",
      "ds_fixed(block=16, num_local_blocks=4, num_global_blocks=1, attention=\"unidirectional\")",
      "dilated(256, 4)",
      "longformer_dilated(512, d=4)",
      "window(256) | global(16)",
      "sliding(512) | sink(4)"};
  for (i64 l : {16, 64, 256, 512}) {
    specs.push_back(fmt::format("strided({})", l));
    specs.push_back(fmt::format("st_fixed({}, {})", l, l / 8));
    specs.push_back(fmt::format("dilated({}, 4)", l));
    specs.push_back(fmt::format("dilated(128, {})", l / 16));
  }
  for (i64 n : {16384, 65536}) {
    const spattn::Geometry g = geometry(n, n, 1, 64);
    for (const std::string& spec : specs) {
      INFO(spec << " N=" << n);
      if (spec == "dilated(128, 1)") continue;  // a plain band of 257 keys (tiles: 0.80)
      const auto layout = spattn::build_layout(*spattn::parse_spec(spec), g);
      const auto c = spattn::attention_cost(layout, 1, 8, 8, 64, 2);
      CHECK(c.efficiency >= 0.75);
    }
  }
}
