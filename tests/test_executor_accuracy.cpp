// The flash executor against the dense reference: every registered pattern, compositions, ragged
// and unequal lengths, head dims 1..256, GQA/MQA and batches.
//
// Error measures (compare_to_reference): for o, the normwise relative error per (batch, head),
//   max_{i,x} |o - ref| / max_{i,x} |ref|   (ref in double, o in float32),
// maximized over (batch, head); for LSE, max_i |lse - ref| / max(1, |ref|), where -inf (a fully
// masked row) must match exactly. Both must be <= 1e-5.
//
// The reference is driven by Pattern::allows at the geometry, not by the layout, so a wrong
// layout fails here as well as a wrong kernel.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "small_specs.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;

struct Shape {
  i64 batch, hq, hkv, nq, nk, d;
  int block_q, block_k;
  bool shared_layout;  // one layout head for all query heads
};

std::string describe(const Shape& s) {
  return fmt::format("B={} Hq={} Hkv={} nq={} nk={} d={} blocks {}x{}{}", s.batch, s.hq, s.hkv,
                     s.nq, s.nk, s.d, s.block_q, s.block_k, s.shared_layout ? " shared" : "");
}

// Runs attention() and the reference on seeded random inputs and checks the errors.
void check_case(const std::string& spec, const Shape& s, std::uint64_t seed) {
  INFO(spec << "  " << describe(s));
  spattn::Geometry g;
  g.nq = s.nq;
  g.nk = s.nk;
  g.heads = s.shared_layout ? 1 : static_cast<int>(s.hq);
  g.block_q = s.block_q;
  g.block_k = s.block_k;
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  const spattn::Layout layout = spattn::build_layout(*p, g);
  const spattn::Tensor q = spattn::test::random_tensor(s.batch, s.hq, s.nq, s.d, seed, 0);
  const spattn::Tensor k = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.d, seed, 1);
  const spattn::Tensor v = spattn::test::random_tensor(s.batch, s.hkv, s.nk, s.d, seed, 2);
  const spattn::ReferenceResult ref =
      spattn::reference_attention(q.view(), k.view(), v.view(), *p, g);
  // Every execution path, forced, gives the reference's result (a pair computed twice or left
  // out would change the softmax), and the pairs it reports are those of the cost model's plan.
  for (const spattn::ExecutionPath path :
       {spattn::ExecutionPath::Auto, spattn::ExecutionPath::Tiles, spattn::ExecutionPath::Runs,
        spattn::ExecutionPath::Gather, spattn::ExecutionPath::Diagonals,
        spattn::ExecutionPath::Classes}) {
    INFO("path " << spattn::execution_path_name(path));
    spattn::AttentionOptions opt;
    opt.path = path;
    const spattn::AttentionResult r = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
    const spattn::ReferenceError e = spattn::compare_to_reference(r.o.view(), r.lse.view(), ref);
    CHECK(e.finite);
    CHECK(e.max_rel <= 1e-5);
    CHECK(e.lse_max <= 1e-5);
    const spattn::AttentionCost cost =
        spattn::attention_cost(layout, s.batch, s.hq, s.hkv, s.d, 0, path);
    CHECK(r.stats.paths.total() == cost.computed_pairs);
    CHECK(r.stats.paths.diagonal == cost.paths.diagonal);
    CHECK(cost.computed_pairs >= cost.allowed_pairs);
    // The cost model's workspace estimate bounds what the executor allocated (split heavy rows
    // add partial results the estimate leaves out).
    if (r.stats.split_rows == 0) CHECK(r.stats.workspace_bytes <= cost.flash_workspace_bytes);
  }
}

// Shapes chosen round-robin over the axes so that every head dim, the GQA ratios 8:2 and 8:1 and
// batch 3 all appear, with seeded ragged lengths; the work B·Hq·nq·nk·d is capped so the suite
// stays fast (also under sanitizers).
class ShapePicker {
 public:
  explicit ShapePicker(std::uint64_t seed) : rng_(seed) {}

  Shape next(i64 min_nk = 1) {
    static constexpr i64 kDims[] = {1, 7, 64, 80, 128, 256};
    static constexpr i64 kHeads[][2] = {{1, 1}, {8, 2}, {2, 2}, {8, 1}, {4, 2}};
    static constexpr i64 kBatch[] = {1, 3, 2, 1};
    static constexpr int kBlocks[] = {16, 32, 64, 128};
    const std::size_t n = count_++;
    Shape s;
    s.d = kDims[n % 6];
    s.hq = kHeads[n % 5][0];
    s.hkv = kHeads[n % 5][1];
    s.batch = kBatch[n % 4];
    s.block_q = kBlocks[uniform(0, 3)];
    s.block_k = kBlocks[uniform(0, 3)];
    s.shared_layout = n % 3 == 2;
    // Lengths: ragged (not multiples of the blocks), nq < nk, nq == nk or nq > nk.
    const i64 budget = 24'000'000;  // multiply-adds of the reference per case
    const i64 max_n = std::clamp<i64>(
        static_cast<i64>(std::sqrt(static_cast<double>(budget) / (s.batch * s.hq * s.d))), 24, 300);
    s.nk = std::max<i64>(uniform(std::min<i64>(20, max_n), max_n), std::min(min_nk, i64{300}));
    switch (n % 4) {
      case 0:
        s.nq = s.nk;
        break;
      case 1:
        s.nq = uniform(1, s.nk);
        break;
      case 2:
        s.nq = std::max<i64>(1, s.nk / 3);
        break;
      default:
        s.nq = std::min<i64>(s.nk + uniform(1, 20), 300);
        break;
    }
    return s;
  }

 private:
  i64 uniform(i64 lo, i64 hi) { return std::uniform_int_distribution<i64>(lo, hi)(rng_); }
  std::mt19937_64 rng_;
  std::size_t count_ = 0;
};

using spattn::test::small_spec_table;

// The table spec with its placeholders filled in for case s.
std::string instantiate(const std::string& spec, const Shape& s, const spattn::test::TempDir& dir,
                        std::uint64_t seed) {
  return spattn::test::instantiate_small_spec(spec, s.nq, s.nk, dir, seed);
}

}  // namespace

TEST_CASE("accuracy: every registered pattern against the reference", "[accuracy]") {
  const spattn::test::TempDir dir("spattn_accuracy");
  ShapePicker picker(20240601);
  std::set<i64> dims_seen;
  std::set<std::pair<i64, i64>> gqa_seen;
  std::set<i64> batch_seen;
  std::uint64_t seed = 1;
  for (const spattn::PatternInfo* info : spattn::Registry::global().all()) {
    // Selectors need Q and K to have a layout: tests/test_selectors.cpp runs them.
    if (spattn::test::is_selector(*info)) continue;
    const auto it = small_spec_table().find(info->name);
    // Two shapes per pattern.
    for (int rep = 0; rep < 2; ++rep, ++seed) {
      Shape s = picker.next();
      if (it != small_spec_table().end()) {
        if (info->name == "deepspeed" || info->name.rfind("ds_", 0) == 0) {
          // DeepSpeed's SparsityConfig layouts are square, seq_len a multiple of the block.
          s.nk = std::max<i64>(96, s.nk / 16 * 16);
          s.nq = s.nk;
        }
        check_case(instantiate(it->second, s, dir, seed), s, seed);
      } else {
        // A pattern this file does not know yet: its own example, if it fits the geometry.
        INFO("pattern '" << info->name << "' example '" << info->example
                         << "' (add a small-geometry spec for it to tests/small_specs.hpp)");
        bool ran = false;
        for (int attempt = 0; attempt < 4 && !ran; ++attempt) {
          try {
            spattn::Geometry g;
            g.nq = s.nq, g.nk = s.nk, g.heads = s.shared_layout ? 1 : static_cast<int>(s.hq);
            g.block_q = s.block_q, g.block_k = s.block_k;
            spattn::build_layout(*spattn::parse_spec(info->example), g);
            ran = true;
          } catch (const spattn::UsageError&) {
            s = picker.next(300);  // try a longer sequence
          }
        }
        REQUIRE(ran);
        check_case(info->example, s, seed);
      }
      dims_seen.insert(s.d);
      gqa_seen.insert({s.hq, s.hkv});
      batch_seen.insert(s.batch);
    }
  }
  CHECK(dims_seen.size() == 6);
  CHECK(gqa_seen.count({8, 2}) == 1);
  CHECK(gqa_seen.count({8, 1}) == 1);
  CHECK(batch_seen.count(3) == 1);
}

TEST_CASE("accuracy: compositions against the reference", "[accuracy]") {
  ShapePicker picker(77);
  const std::string specs[] = {
      "sliding(20) | sink(2) | global(tokens=[7])",
      "(window(9) | strided(7)) & causal",
      "causal - sliding(5)",
      "dense - causal",  // strictly upper triangle: the last rows are fully masked
      "(chunked(16) & causal) | (random(1, block=16, seed=3) & causal)",
      "(dilated(3, 2) | prefix(10)) - window(0)",
      // Residue tracks (sparse diagonals with one key alignment): T = 48 and T = 32, two-sided.
      "st_strided(48)",
      "strided(32) & window(200, 40)",
      "st_strided(16) | global(tokens=[5])",
  };
  std::uint64_t seed = 100;
  for (const std::string& spec : specs) check_case(spec, picker.next(), seed++);
  // Per-head assignment needs the query head count it names.
  for (Shape s : {picker.next(), picker.next(), picker.next()}) {
    s.hq = 8;
    s.hkv = s.hkv == 1 ? 1 : 2;
    s.shared_layout = false;
    s.d = std::min<i64>(s.d, 64);
    check_case("heads(0..3: sliding(10) | sink(1); 4, 5: causal; 6..7: window(3) - window(1))", s,
               seed++);
  }
}

TEST_CASE("accuracy: strided [B, N, H, d] inputs and huge logits", "[accuracy]") {
  const i64 B = 2, H = 4, Hkv = 2, N = 77, d = 32;
  spattn::Geometry g;
  g.nq = N, g.nk = N, g.heads = 1, g.block_q = 32, g.block_k = 16;
  const auto p = spattn::parse_spec("sliding(20) | sink(3)");
  const auto layout = spattn::build_layout(*p, g);
  const spattn::Tensor qb = spattn::test::random_tensor(B, N, H, d, 5, 0);
  const spattn::Tensor kb = spattn::test::random_tensor(B, N, Hkv, d, 5, 1);
  const spattn::Tensor vb = spattn::test::random_tensor(B, N, Hkv, d, 5, 2);
  const auto q = spattn::view_bnhd(qb.values.data(), B, N, H, d);
  const auto k = spattn::view_bnhd(kb.values.data(), B, N, Hkv, d);
  const auto v = spattn::view_bnhd(vb.values.data(), B, N, Hkv, d);
  SECTION("strided views") {
    const auto r = spattn::attention(q, k, v, layout);
    const auto e = spattn::compare_to_reference(r.o.view(), r.lse.view(),
                                                spattn::reference_attention(q, k, v, *p, g));
    CHECK(e.finite);
    CHECK(e.max_rel <= 1e-5);
    CHECK(e.lse_max <= 1e-5);
  }
  SECTION("logits of magnitude 1e4 stay finite") {
    // Scale 1e4 / sqrt-free: logits = 1e4 * q.k, up to ~1e5 in magnitude. A float logit this
    // large carries an absolute rounding error near 1e-2, so the weights may differ from the
    // double reference by that much: only finiteness and the LSE's relative error are checked.
    spattn::AttentionOptions opt;
    opt.scale = 1e4f;
    const auto r = spattn::attention(q, k, v, layout, opt);
    spattn::ReferenceOptions ro;
    ro.scale = 1e4;
    const auto e = spattn::compare_to_reference(r.o.view(), r.lse.view(),
                                                spattn::reference_attention(q, k, v, *p, g, ro));
    CHECK(e.finite);
    CHECK(e.lse_max <= 1e-5);
  }
}

TEST_CASE("accuracy: residue classes, bands and row-level pairs against the reference",
          "[accuracy]") {
  // Lengths where classes hold at least 16 queries (the planner's minimum), so that the forced
  // Classes path runs class items: strided sets (one residue, dense blocks per class), dilated
  // windows (narrow bands per class), two-sided rules, unequal nq < nk (queries at the end) and
  // nq > nk, GQA groups and a head dim that is not a multiple of 16, next to bands of step 1.
  const Shape shapes[] = {
      {1, 2, 2, 300, 300, 64, 64, 64, true},
      {2, 8, 2, 200, 333, 7, 32, 32, true},
      {1, 4, 1, 257, 257, 24, 16, 16, false},
      {1, 2, 1, 333, 200, 16, 32, 32, true},  // nq > nk: queries from position -133
  };
  const std::string specs[] = {
      "strided(8)", "dilated(48, 3)", "st_strided(12) | sink(2)", "sliding(30)",
      "strided(5) & window(90, 11)", "longformer_dilated(32, d=2)", "st_strided(16)",
      "dilated(20, 2) | global(tokens=[3])",
      // Row-level pairs: a few scattered keys per query.
      "random(3, block=1, seed=2)", "random(2, block=1, seed=5) | sliding(20)"};
  std::uint64_t seed = 500;
  for (const Shape& s : shapes)
    for (const std::string& spec : specs) check_case(spec, s, seed++);
}
