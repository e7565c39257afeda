// The flash backward pass (backward.hpp) against the double reference backward
// (reference_backward.hpp), the reference against finite differences of its own forward, and
// the backward's determinism over thread counts.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/backward.hpp"
#include "spattn/attention/reference_backward.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using i64 = std::int64_t;

spattn::Layout make_layout(const std::string& spec, i64 nq, i64 nk, int heads, int bq, int bk) {
  spattn::Geometry g;
  g.nq = nq, g.nk = nk, g.heads = heads, g.block_q = bq, g.block_k = bk;
  return spattn::build_layout(*spattn::parse_spec(spec), g);
}

// max |got - want| / max |want| over a whole tensor (normwise, as the forward's accuracy).
double rel_error(const spattn::Tensor& got, const std::vector<double>& want) {
  REQUIRE(got.values.size() == want.size());
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    REQUIRE(std::isfinite(got.values[i]));
    err = std::max(err, std::abs(got.values[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / std::max(scale, 1e-30);
}

struct Case {
  std::string spec;
  i64 nq, nk;
  int hq, hkv, layout_heads, block_q, block_k;
  i64 d;
};

struct Run {
  spattn::AttentionResult fwd;
  spattn::BackwardResult bwd;
  spattn::ReferenceGradients ref;
};

Run run_case(const Case& c, int threads = 0, i64 parts = 0, const spattn::ScoreMod& mod = {}) {
  using spattn::test::random_tensor;
  const auto layout = make_layout(c.spec, c.nq, c.nk, c.layout_heads, c.block_q, c.block_k);
  const auto q = random_tensor(2, c.hq, c.nq, c.d, 11, 1);
  const auto k = random_tensor(2, c.hkv, c.nk, c.d, 11, 2);
  const auto v = random_tensor(2, c.hkv, c.nk, c.d, 11, 3);
  const auto d_o = random_tensor(2, c.hq, c.nq, c.d, 11, 4);
  Run r;
  spattn::AttentionOptions fo;
  fo.mod = mod;
  r.fwd = spattn::attention(q.view(), k.view(), v.view(), layout, fo);
  spattn::BackwardOptions opt;
  opt.threads = threads;
  opt.parts = parts;
  opt.mod = mod;
  r.bwd = spattn::attention_backward(q.view(), k.view(), v.view(), r.fwd.o.view(), r.fwd.lse.view(),
                                     d_o.view(), layout, opt);
  spattn::ReferenceOptions ro;
  ro.mod = mod;
  r.ref =
      spattn::reference_attention_backward(q.view(), k.view(), v.view(), d_o.view(), layout, ro);
  return r;
}

}  // namespace

TEST_CASE("backward matches the double reference backward", "[backward]") {
  const std::vector<Case> cases = {
      {"dense", 96, 96, 2, 2, 1, 32, 32, 16},
      {"causal", 100, 100, 2, 1, 1, 32, 32, 24},                // MQA, ragged last tile
      {"sliding(20) | sink(3)", 130, 130, 4, 2, 1, 16, 32, 8},  // GQA, Partial tiles
      {"causal", 40, 150, 2, 2, 1, 16, 16, 16},                 // nq < nk
      {"heads(0: window(5); 1: strided(7); 2..3: causal)", 70, 70, 4, 2, 4, 16, 16, 8},
      {"bigbird(block=16, random=2, seed=3)", 160, 160, 2, 2, 2, 32, 16, 16},
      {"random(4, block=1, seed=2) | global(1)", 64, 64, 1, 1, 1, 16, 16, 4},
      {"causal", 200, 200, 2, 1, 1, 64, 128, 64},  // the benchmark's d, wide key tiles
      {"sliding(50)", 150, 150, 2, 2, 1, 64, 64, 40},
  };
  for (const Case& c : cases) {
    SECTION(c.spec + fmt::format(" nq={} nk={} Hq={} Hkv={}", c.nq, c.nk, c.hq, c.hkv)) {
      const Run r = run_case(c);
      CHECK(rel_error(r.bwd.dq, r.ref.dq) < 2e-5);
      CHECK(rel_error(r.bwd.dk, r.ref.dk) < 2e-5);
      CHECK(rel_error(r.bwd.dv, r.ref.dv) < 2e-5);
    }
  }
}

TEST_CASE("backward: fully masked rows have zero dQ and add nothing", "[backward]") {
  // diagonals([3, 40]): queries 0..2 see no key; keys >= nk - 3 are seen by no query.
  const Case c{"diagonals([3, 40])", 90, 90, 2, 1, 1, 16, 16, 8};
  const Run r = run_case(c);
  for (int b = 0; b < 2; ++b)
    for (int h = 0; h < 2; ++h)
      for (i64 i = 0; i < 3; ++i) {
        CHECK(r.fwd.lse.view().at(b, h, i, 0) == -INFINITY);
        for (i64 x = 0; x < c.d; ++x) CHECK(r.bwd.dq.view().at(b, h, i, x) == 0.0f);
      }
  for (i64 j = c.nk - 3; j < c.nk; ++j)
    for (i64 x = 0; x < c.d; ++x) {
      CHECK(r.bwd.dk.view().at(1, 0, j, x) == 0.0f);
      CHECK(r.bwd.dv.view().at(1, 0, j, x) == 0.0f);
    }
  CHECK(rel_error(r.bwd.dq, r.ref.dq) < 2e-5);
  CHECK(rel_error(r.bwd.dk, r.ref.dk) < 2e-5);
  CHECK(rel_error(r.bwd.dv, r.ref.dv) < 2e-5);
}

TEST_CASE("backward: bitwise the same on every thread count", "[backward]") {
  const Case c{"sliding(40) | sink(2) | global(1)", 256, 256, 4, 2, 1, 32, 32, 16};
  for (const i64 parts : {i64{0}, i64{1}, i64{3}}) {
    const Run one = run_case(c, 1, parts);
    for (const int threads : {2, 3, 8}) {
      const Run many = run_case(c, threads, parts);
      CHECK(one.bwd.dq.values == many.bwd.dq.values);
      CHECK(one.bwd.dk.values == many.bwd.dk.values);
      CHECK(one.bwd.dv.values == many.bwd.dv.values);
    }
  }
}

TEST_CASE("reference backward equals central finite differences of its forward", "[backward]") {
  // Loss L = sum over O of W * O with W = dO: dL/dx by (L(x + e) - L(x - e)) / 2e in double.
  const i64 nq = 9, nk = 11, d = 3;
  const auto layout = make_layout("sliding(4) | sink(1)", nq, nk, 2, 16, 16);
  std::vector<double> q(2 * nq * d), k(1 * nk * d), v(1 * nk * d), w(2 * nq * d);
  std::uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / 9007199254740992.0 * 2 - 1;
  };
  for (auto* vec : {&q, &k, &v, &w})
    for (double& x : *vec) x = next();
  auto vq = spattn::view_bhnd(static_cast<const double*>(q.data()), 1, 2, nq, d);
  auto vk = spattn::view_bhnd(static_cast<const double*>(k.data()), 1, 1, nk, d);
  auto vv = spattn::view_bhnd(static_cast<const double*>(v.data()), 1, 1, nk, d);
  auto vw = spattn::view_bhnd(static_cast<const double*>(w.data()), 1, 2, nq, d);
  const auto grads = spattn::reference_attention_backward(vq, vk, vv, vw, layout);
  auto loss = [&] {
    const auto f = spattn::reference_attention_backward(vq, vk, vv, {}, layout);
    double l = 0;
    for (std::size_t i = 0; i < w.size(); ++i) l += w[i] * f.o[i];
    return l;
  };
  const double eps = 1e-6;
  auto check = [&](std::vector<double>& x, const std::vector<double>& g) {
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double keep = x[i];
      x[i] = keep + eps;
      const double up = loss();
      x[i] = keep - eps;
      const double down = loss();
      x[i] = keep;
      CHECK(std::abs((up - down) / (2 * eps) - g[i]) < 1e-7);
    }
  };
  check(q, grads.dq);
  check(k, grads.dk);
  check(v, grads.dv);
}

TEST_CASE("backward refuses mismatched shapes", "[backward]") {
  using spattn::test::random_tensor;
  const auto layout = make_layout("causal", 32, 32, 1, 16, 16);
  const auto q = random_tensor(1, 2, 32, 8, 1, 1), k = random_tensor(1, 2, 32, 8, 1, 2);
  const auto fwd = spattn::attention(q.view(), k.view(), k.view(), layout);
  const auto bad_lse = random_tensor(1, 2, 31, 1, 1, 3);
  CHECK_THROWS_AS(spattn::attention_backward(q.view(), k.view(), k.view(), fwd.o.view(),
                                             bad_lse.view(), fwd.o.view(), layout),
                  spattn::UsageError);
  const auto bad_do = random_tensor(1, 2, 32, 4, 1, 3);
  CHECK_THROWS_WITH(spattn::attention_backward(q.view(), k.view(), k.view(), fwd.o.view(),
                                               fwd.lse.view(), bad_do.view(), layout),
                    Catch::Contains("dO has shape [1, 2, 32, 4]"));
  const auto other = make_layout("causal", 64, 64, 1, 16, 16);
  CHECK_THROWS_AS(spattn::attention_backward(q.view(), k.view(), k.view(), fwd.o.view(),
                                             fwd.lse.view(), fwd.o.view(), other),
                  spattn::UsageError);
}

TEST_CASE("backward from the forward of every execution path", "[backward]") {
  // The forward's paths give o and lse that agree to rounding; the backward from each matches
  // the reference (GQA, Partial tiles, diagonal and residue-class covers, a global row split).
  using spattn::test::random_tensor;
  const i64 n = 320, d = 16;
  const auto layout = make_layout("dilated(12, 3) | strided(40) | global(1)", n, n, 1, 32, 32);
  const auto q = random_tensor(1, 4, n, d, 5, 1), k = random_tensor(1, 2, n, d, 5, 2),
             v = random_tensor(1, 2, n, d, 5, 3), d_o = random_tensor(1, 4, n, d, 5, 4);
  const auto ref =
      spattn::reference_attention_backward(q.view(), k.view(), v.view(), d_o.view(), layout);
  using P = spattn::ExecutionPath;
  for (const P path : {P::Auto, P::Tiles, P::Runs, P::Gather, P::Diagonals, P::Classes}) {
    spattn::AttentionOptions fo;
    fo.path = path;
    fo.split_tiles = 2;  // split the global row over its key tiles
    const auto fwd = spattn::attention(q.view(), k.view(), v.view(), layout, fo);
    const auto bwd = spattn::attention_backward(q.view(), k.view(), v.view(), fwd.o.view(),
                                                fwd.lse.view(), d_o.view(), layout);
    INFO("path " << static_cast<int>(path));
    CHECK(fwd.stats.split_rows > 0);
    if (path == P::Diagonals || path == P::Classes) CHECK(fwd.stats.paths.diagonal > 0);
    if (path == P::Gather) CHECK(fwd.stats.paths.gather > 0);
    CHECK(rel_error(bwd.dq, ref.dq) < 2e-5);
    CHECK(rel_error(bwd.dk, ref.dk) < 2e-5);
    CHECK(rel_error(bwd.dv, ref.dv) < 2e-5);
  }
}

namespace {

// max |got - want| / max |want| for the sink gradients.
double rel_error(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  double err = 0, scale = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / std::max(scale, 1e-30);
}

}  // namespace

TEST_CASE("backward with score modifications matches the double reference", "[backward]") {
  // ALiBi with the paper's slopes, soft-capping, learned sinks, and all three; GQA, nq < nk,
  // Partial tiles, per-head layouts and rows that see no key (their LSE is the sink's).
  spattn::ScoreMod alibi, softcap, sinks, all;
  alibi.alibi_slopes = spattn::alibi_slopes(4);
  softcap.softcap = 1.5f;  // small enough that tanh bends the random scores
  sinks.sinks = {0.5f, -1.0f, 2.0f, 0.0f};
  all.alibi_slopes = {0.3f, 0.1f, 0.05f, 0.7f};
  all.softcap = 2.0f;
  all.sinks = {1.0f, -0.5f, 0.25f, 3.0f};
  const std::vector<std::pair<std::string, spattn::ScoreMod>> mods = {
      {"alibi", alibi}, {"softcap", softcap}, {"sinks", sinks}, {"all", all}};
  const std::vector<Case> cases = {
      {"sliding(20) | sink(3)", 130, 130, 4, 2, 1, 16, 32, 8},
      {"causal", 40, 150, 4, 1, 1, 16, 16, 16},
      {"diagonals([3, 40])", 90, 90, 4, 2, 1, 16, 16, 8},
      {"heads(0: window(5); 1: strided(7); 2..3: dense)", 70, 70, 4, 2, 4, 16, 16, 20},
      {"dense", 128, 128, 4, 4, 1, 64, 64, 64},
  };
  for (const auto& [name, mod] : mods)
    for (const Case& c : cases) {
      SECTION(name + " " + c.spec + fmt::format(" nq={} nk={}", c.nq, c.nk)) {
        const Run r = run_case(c, 0, 0, mod);
        CHECK(rel_error(r.bwd.dq, r.ref.dq) < 2e-5);
        CHECK(rel_error(r.bwd.dk, r.ref.dk) < 2e-5);
        CHECK(rel_error(r.bwd.dv, r.ref.dv) < 2e-5);
        CHECK(r.bwd.d_sinks.size() == mod.sinks.size());
        if (!mod.sinks.empty()) CHECK(rel_error(r.bwd.d_sinks, r.ref.d_sinks) < 2e-5);
      }
    }
}

TEST_CASE("reference backward with score modifications equals finite differences", "[backward]") {
  // As the plain check, with ALiBi, soft-capping and sinks on, and the sinks as inputs too.
  const i64 nq = 7, nk = 9, d = 3;
  const auto layout = make_layout("sliding(4) | sink(1)", nq, nk, 2, 16, 16);
  std::vector<double> q(2 * nq * d), k(1 * nk * d), v(1 * nk * d), w(2 * nq * d);
  std::uint64_t state = 777;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / 9007199254740992.0 * 4 - 2;
  };
  for (auto* vec : {&q, &k, &v, &w})
    for (double& x : *vec) x = next();
  spattn::ReferenceOptions ro;
  ro.mod.alibi_slopes = {0.25f, 0.5f};
  ro.mod.softcap = 0.75f;
  ro.mod.sinks = {0.5f, -0.25f};
  auto vq = spattn::view_bhnd(static_cast<const double*>(q.data()), 1, 2, nq, d);
  auto vk = spattn::view_bhnd(static_cast<const double*>(k.data()), 1, 1, nk, d);
  auto vv = spattn::view_bhnd(static_cast<const double*>(v.data()), 1, 1, nk, d);
  auto vw = spattn::view_bhnd(static_cast<const double*>(w.data()), 1, 2, nq, d);
  const auto grads = spattn::reference_attention_backward(vq, vk, vv, vw, layout, ro);
  auto loss = [&] {
    const auto f = spattn::reference_attention_backward(vq, vk, vv, {}, layout, ro);
    double l = 0;
    for (std::size_t i = 0; i < w.size(); ++i) l += w[i] * f.o[i];
    return l;
  };
  const double eps = 1e-6;
  auto check = [&](auto& x, const std::vector<double>& g, double step) {
    REQUIRE(x.size() == g.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      const auto keep = x[i];
      x[i] = keep + step;
      const double up = loss();
      x[i] = keep - step;
      const double down = loss();
      x[i] = keep;
      const double delta = static_cast<double>(keep + step) - static_cast<double>(keep - step);
      CHECK(std::abs((up - down) / delta - g[i]) < 1e-6);
    }
  };
  check(q, grads.dq, eps);
  check(k, grads.dk, eps);
  check(v, grads.dv, eps);
  // The sinks are floats: a step of 2^-14 is exact in them; the difference quotient's error is
  // O(step^2).
  CHECK(grads.d_sinks.size() == 2);
  check(ro.mod.sinks, grads.d_sinks, 1.0 / 16384);
}

TEST_CASE("backward refuses bad score modifications and sink outputs", "[backward]") {
  using spattn::test::random_tensor;
  const auto layout = make_layout("causal", 32, 32, 1, 16, 16);
  const auto q = random_tensor(1, 2, 32, 8, 1, 1), k = random_tensor(1, 2, 32, 8, 1, 2);
  const auto fwd = spattn::attention(q.view(), k.view(), k.view(), layout);
  spattn::BackwardOptions opt;
  opt.mod.sinks = {1.0f};  // one sink for two heads
  CHECK_THROWS_AS(spattn::attention_backward(q.view(), k.view(), k.view(), fwd.o.view(),
                                             fwd.lse.view(), fwd.o.view(), layout, opt),
                  spattn::UsageError);
  opt.mod.sinks = {1.0f, 2.0f};
  spattn::Tensor dq(1, 2, 32, 8), dk(1, 2, 32, 8), dv(1, 2, 32, 8);
  std::vector<float> d_sinks(1);
  CHECK_THROWS_WITH(spattn::attention_backward(q.view(), k.view(), k.view(), fwd.o.view(),
                                               fwd.lse.view(), fwd.o.view(), layout, dq.view(),
                                               dk.view(), dv.view(), opt, d_sinks),
                    Catch::Contains("d_sinks has 1 elements but must have 2"));
  opt.mod.sinks.clear();
  opt.mod.softcap = -1.0f;
  CHECK_THROWS_AS(spattn::attention_backward(q.view(), k.view(), k.view(), fwd.o.view(),
                                             fwd.lse.view(), fwd.o.view(), layout, opt),
                  spattn::UsageError);
}
