// Fidelity (relative L2 error and attention-mass recall against dense attention) against an
// independent brute-force oracle in double, for several patterns and all three input kinds; the
// recall formula on hand-made rows; and the synthetic inputs' purpose: local patterns recall far
// more of the softmax mass on them than on i.i.d. random inputs.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/experiments/fidelity.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

// The point's Measurement record as JSON (the shape of experiments/README.md).
nlohmann::json measured(const spattn::experiments::SweepPoint& p) {
  return nlohmann::json(spattn::experiments::to_json(spattn::experiments::measure_point(p)));
}

using i64 = std::int64_t;
using spattn::experiments::SweepPoint;

struct Oracle {
  double recall_mean = 0, recall_min = 1, rel_l2 = 0;
};

// Straight from the definitions, in double: for each row (b, h, i), logits
// s_j = q_i . k_j / sqrt(d) over all keys; recall = sum over keys the pattern's allows() grants
// of e^(s_j - m) / sum over all keys of e^(s_j - m); sparse and dense outputs are the softmax-
// weighted averages of V over the allowed / all keys; rel L2 = ||O_sparse - O_dense|| /
// ||O_dense|| over all elements.
// With a `baseline` pattern, "all keys" means the keys the baseline allows.
Oracle brute_force(const spattn::Tensor& q, const spattn::Tensor& k, const spattn::Tensor& v,
                   const spattn::Pattern& pattern, const spattn::Geometry& g,
                   const spattn::Pattern* baseline = nullptr) {
  const i64 B = q.shape[0], H = q.shape[1], nq = q.shape[2], nk = k.shape[2], d = q.shape[3];
  const i64 group = H / k.shape[1];
  Oracle r;
  double recall_sum = 0, diff2 = 0, ref2 = 0;
  std::vector<double> s(static_cast<std::size_t>(nk));
  for (i64 b = 0; b < B; ++b)
    for (i64 h = 0; h < H; ++h)
      for (i64 i = 0; i < nq; ++i) {
        const int hp = g.heads == 1 ? 0 : static_cast<int>(h);
        const auto in_base = [&](i64 j) { return !baseline || baseline->allows(g, hp, i, j); };
        double m = -std::numeric_limits<double>::infinity();
        for (i64 j = 0; j < nk; ++j) {
          if (!in_base(j)) continue;
          double dot = 0;
          for (i64 x = 0; x < d; ++x)
            dot += static_cast<double>(q.view().at(b, h, i, x)) * k.view().at(b, h / group, j, x);
          s[j] = dot / std::sqrt(static_cast<double>(d));
          m = std::max(m, s[j]);
        }
        double all = 0, allowed = 0;
        std::vector<double> o_all(static_cast<std::size_t>(d)), o_allowed(o_all.size());
        for (i64 j = 0; j < nk; ++j) {
          if (!in_base(j)) continue;
          const double e = std::exp(s[j] - m);
          const bool ok = pattern.allows(g, hp, i, j);
          all += e;
          if (ok) allowed += e;
          for (i64 x = 0; x < d; ++x) {
            const double ev = e * v.view().at(b, h / group, j, x);
            o_all[x] += ev;
            if (ok) o_allowed[x] += ev;
          }
        }
        const double rec = allowed / all;
        recall_sum += rec;
        r.recall_min = std::min(r.recall_min, rec);
        for (i64 x = 0; x < d; ++x) {
          const double od = o_all[x] / all, os = allowed > 0 ? o_allowed[x] / allowed : 0.0;
          diff2 += (os - od) * (os - od);
          ref2 += od * od;
        }
      }
  r.recall_mean = recall_sum / static_cast<double>(B * H * nq);
  r.rel_l2 = std::sqrt(diff2 / ref2);
  return r;
}

SweepPoint fidelity_point(const std::string& spec, i64 n, int heads, int kv_heads, int d) {
  SweepPoint p;
  p.key = "fidelity";
  p.pattern.name = p.pattern.spec = spec;
  p.n = n;
  p.head_dim = d;
  p.heads = heads;
  p.kv_heads = kv_heads;
  p.batch = 2;
  p.threads = 2;
  p.block = 16;
  p.settings.repeats = 1;
  p.settings.warmup = 0;
  p.settings.seed = 3;
  p.settings.fidelity = true;
  return p;
}

void write_tensor(const std::string& path, const spattn::Tensor& t) {
  spattn::write_npy(path, "<f4", {t.shape[0], t.shape[1], t.shape[2], t.shape[3]}, t.values.data(),
                    t.values.size() * sizeof(float));
}

}  // namespace

TEST_CASE("fidelity: recall and relative L2 error against a brute-force oracle", "[fidelity]") {
  const spattn::test::TempDir dir("spattn_fidelity_npy");
  const i64 n = 96;
  const int heads = 2, kv_heads = 1, d = 16;
  // npy inputs: N(0, 3^2) logits scale (q times 3) so the attention is peaked, unlike random.
  spattn::Tensor q = spattn::test::random_tensor(2, heads, n, d, 21, 0);
  for (float& x : q.values) x *= 3.0f;
  write_tensor(dir.file("q.npy"), q);
  write_tensor(dir.file("k.npy"), spattn::test::random_tensor(2, kv_heads, n, d, 21, 1));
  write_tensor(dir.file("v.npy"), spattn::test::random_tensor(2, kv_heads, n, d, 21, 2));

  for (const std::string kind : {"random", "synthetic", "npy"})
    for (const std::string spec :
         {"sliding(12)", "causal", "window(8, 8) | sink(2)", "heads(0: dense; 1: sliding(30))",
          "bigbird(block=16, window=1, global=1, random=1)"}) {
      INFO(kind << ", " << spec);
      SweepPoint p = fidelity_point(spec, n, heads, kv_heads, d);
      p.settings.inputs.kind = kind;
      if (kind == "npy") p.settings.inputs.npy_dir = dir.path().string();
      const nlohmann::json m = measured(p);
      REQUIRE(m["fidelity"].is_object());
      CHECK(m["fidelity"]["inputs"] ==
            (kind == "npy" ? "npy:" + dir.path().string() : std::string(kind)));
      // The oracle reads the same inputs: generated from the same seed, or the files.
      spattn::AttentionShape s;
      s.batch = 2, s.q_heads = heads, s.kv_heads = kv_heads, s.nq = s.nk = n, s.dim = d;
      const auto in = spattn::experiments::make_inputs(p.settings.inputs, s, 3, 1 << 30);
      const Oracle want = brute_force(in.q, in.k, in.v, *spattn::parse_spec(spec),
                                      spattn::Geometry{n, n, heads, 16, 16});
      const double tol = 1e-5;
      CHECK(m["fidelity"]["recall_mean"].get<double>() == Approx(want.recall_mean).margin(tol));
      CHECK(m["fidelity"]["recall_min"].get<double>() == Approx(want.recall_min).margin(tol));
      CHECK(m["fidelity"]["rel_l2_error"].get<double>() == Approx(want.rel_l2).margin(tol));
      CHECK(want.recall_mean < 0.999);  // every pattern here drops real mass
    }
  SECTION("a causal baseline: mass counted over the keys up to the query only") {
    for (const std::string spec : {"sliding(12)", "causal", "st_strided(8)"}) {
      INFO(spec);
      SweepPoint p = fidelity_point(spec, n, heads, kv_heads, d);
      p.settings.inputs.kind = "synthetic";
      p.settings.fidelity_baseline = "causal";
      const nlohmann::json m = measured(p);
      CHECK(m["fidelity"]["baseline"] == "causal");
      spattn::AttentionShape s;
      s.batch = 2, s.q_heads = heads, s.kv_heads = kv_heads, s.nq = s.nk = n, s.dim = d;
      const auto in = spattn::experiments::make_inputs(p.settings.inputs, s, 3, 1 << 30);
      const auto causal = spattn::parse_spec("causal");
      const Oracle want = brute_force(in.q, in.k, in.v, *spattn::parse_spec(spec),
                                      spattn::Geometry{n, n, heads, 16, 16}, causal.get());
      CHECK(m["fidelity"]["recall_mean"].get<double>() == Approx(want.recall_mean).margin(1e-5));
      CHECK(m["fidelity"]["recall_min"].get<double>() == Approx(want.recall_min).margin(1e-5));
      CHECK(m["fidelity"]["rel_l2_error"].get<double>() == Approx(want.rel_l2).margin(1e-5));
      if (spec == "causal") CHECK(want.recall_mean == Approx(1.0).margin(1e-12));
    }
  }
  SECTION("dense recalls everything, with no error") {
    const nlohmann::json m = measured(fidelity_point("dense", n, heads, kv_heads, d));
    CHECK(m["fidelity"]["rel_l2_error"] == 0.0);
    CHECK(m["fidelity"]["recall_mean"] == 1.0);
    CHECK(m["fidelity"]["recall_min"] == 1.0);
  }
  SECTION("not computed above fidelity_max_n") {
    SweepPoint p = fidelity_point("causal", n, heads, kv_heads, d);
    p.settings.fidelity_max_n = n - 1;
    CHECK(measured(p)["fidelity"].is_null());
  }
}

TEST_CASE("fidelity: compare_to_dense on hand-made rows", "[fidelity]") {
  // One batch, one head, 3 rows, d = 2. Row 0: the sparse LSE is log(1/4) below the dense one,
  // so the pattern holds a quarter of the mass. Row 1: equal LSEs, recall 1. Row 2: fully
  // masked (-inf), recall 0. Mean (0.25 + 1 + 0) / 3, min 0.
  spattn::Tensor od(1, 1, 3, 2), os(1, 1, 3, 2), ld(1, 1, 3, 1), ls(1, 1, 3, 1);
  od.values = {3, 4, 0, 0, 0, 0};  // ||O_dense|| = 5
  os.values = {0, 0, 0, 0, 0, 0};  // ||O_sparse - O_dense|| = 5
  ld.values = {2.0f, 1.0f, 0.5f};
  ls.values = {2.0f + std::log(0.25f), 1.0f, -std::numeric_limits<float>::infinity()};
  const auto f = spattn::experiments::compare_to_dense(os.view(), ls.view(), od.view(), ld.view());
  CHECK(f.rows == 3);
  CHECK(f.recall_mean == Approx((0.25 + 1.0 + 0.0) / 3).epsilon(1e-6));
  CHECK(f.recall_min == 0.0);
  CHECK(f.rel_l2_error == Approx(1.0));
  os.values = {3, 4 + 0.5f, 0, 0, 0, 0};  // error 0.5 of 5
  CHECK(spattn::experiments::compare_to_dense(os.view(), ls.view(), od.view(), ld.view())
            .rel_l2_error == Approx(0.1));
  spattn::Tensor wrong(1, 1, 2, 2);
  CHECK_THROWS_AS(
      spattn::experiments::compare_to_dense(wrong.view(), ls.view(), od.view(), ld.view()),
      spattn::UsageError);
}

TEST_CASE("fidelity: local patterns recall far more mass on synthetic inputs than on random",
          "[fidelity]") {
  // Random inputs make attention nearly uniform, so a pattern's recall is close to its share of
  // the keys: window(32) holds ~65 of 512 keys, about 1/8. The synthetic inputs put most of the
  // mass near the diagonal and on the 4 sinks, and some on planted far matches.
  auto recall = [](const std::string& spec, const std::string& kind) {
    SweepPoint p = fidelity_point(spec, 512, 4, 4, 64);
    p.batch = 1;
    p.block = 64;
    p.settings.inputs.kind = kind;
    return measured(p)["fidelity"];
  };
  const auto rw = recall("window(32)", "random"), sw = recall("window(32)", "synthetic");
  const double share = (512.0 * 65 - 2 * (32 * 33 / 2)) / (512.0 * 512);  // window's pairs
  CHECK(rw["recall_mean"].get<double>() == Approx(share).epsilon(0.3));
  CHECK(sw["recall_mean"].get<double>() > 3 * rw["recall_mean"].get<double>());
  // The sinks: adding them raises the synthetic recall much more than the random one (4 keys).
  const auto rs = recall("window(32) | sink(4)", "random");
  const auto ss = recall("window(32) | sink(4)", "synthetic");
  CHECK(ss["recall_mean"].get<double>() - sw["recall_mean"].get<double>() >
        10 * (rs["recall_mean"].get<double>() - rw["recall_mean"].get<double>()));
  // The planted matches: some rows put most of their mass far outside the window.
  CHECK(ss["recall_min"].get<double>() < 0.5);
  CHECK(ss["recall_mean"].get<double>() > 0.6);
}

TEST_CASE("fidelity: synthetic inputs are reproducible", "[fidelity]") {
  spattn::AttentionShape s;
  s.batch = 2, s.q_heads = 4, s.kv_heads = 2, s.nq = 300, s.nk = 320, s.dim = 32;
  const auto a = spattn::experiments::synthetic_inputs(s, 5);
  const auto b = spattn::experiments::synthetic_inputs(s, 5);
  const auto c = spattn::experiments::synthetic_inputs(s, 6);
  CHECK(a.q.values == b.q.values);
  CHECK(a.k.values == b.k.values);
  CHECK(a.v.values == b.v.values);
  CHECK(a.k.values != c.k.values);
  // Every sink key (positions 0..3) adds exactly s^2 = 8 sqrt(d) to q . k over the sink dim
  // (dim 2P = 16 at d = 32): q has s there, sink keys s, other keys 0.
  const double s2 = 8 * std::sqrt(32.0);
  CHECK(static_cast<double>(a.q.view().at(1, 3, 17, 16)) * a.k.view().at(1, 1, 2, 16) ==
        Approx(s2).epsilon(1e-6));
  CHECK(a.k.view().at(1, 1, 4, 16) == 0.0f);
}
