// The oracle ceiling (experiments/oracle_ceiling.hpp) and the needle metric of a measurement,
// against brute force: every row's dense causal softmax in double, its kept keys counted pair by
// pair with BlockLayout::allows, and the top-n mass from a whole sort.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "spattn/attention/select/planted.hpp"
#include "spattn/attention/select/select.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/oracle_ceiling.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using spattn::AttentionShape;
using spattn::ConstTensorView;
using spattn::Geometry;
using spattn::Layout;
using i64 = std::int64_t;

struct Brute {
  double mean = 0, min = std::numeric_limits<double>::infinity();
  double own_mean = 0;  // the layout's own recall (mass on its kept keys)
};

// layouts[b or 0], causal baseline.
Brute brute_force(const ConstTensorView& q, const ConstTensorView& k,
                  const std::vector<const Layout*>& layouts, const Geometry& g) {
  const i64 B = q.batch(), H = q.heads(), nq = q.tokens(), nk = k.tokens(), d = q.dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  Brute r;
  i64 rows = 0;
  for (i64 b = 0; b < B; ++b)
    for (i64 h = 0; h < H; ++h) {
      const auto& l = layouts[layouts.size() == 1 ? 0 : b]->head(static_cast<int>(h));
      for (i64 i = 0; i < nq; ++i) {
        const i64 p = g.position(i);
        std::vector<double> e;
        double m = -std::numeric_limits<double>::infinity();
        for (i64 j = 0; j <= std::min(p, nk - 1); ++j) {
          double s = 0;
          for (i64 x = 0; x < d; ++x)
            s += static_cast<double>(q.at(b, h, i, x)) * k.at(b, h / (H / k.heads()), j, x);
          e.push_back(scale * s);
          m = std::max(m, scale * s);
        }
        double total = 0, own = 0;
        i64 n = 0;
        for (i64 j = 0; j < static_cast<i64>(e.size()); ++j) {
          e[j] = std::exp(e[j] - m);
          total += e[j];
        }
        for (i64 j = 0; j < nk; ++j)
          if (l.allows(i, j)) {
            ++n;
            if (j < static_cast<i64>(e.size())) own += e[j];
          }
        std::vector<double> sorted = e;
        std::sort(sorted.begin(), sorted.end(), std::greater<>());
        double top = 0;
        for (i64 a = 0; a < std::min<i64>(n, static_cast<i64>(sorted.size())); ++a)
          top += sorted[a];
        const double ceil = e.empty() ? 0.0 : top / total;
        r.mean += ceil;
        r.min = std::min(r.min, ceil);
        r.own_mean += e.empty() ? 0.0 : own / total;
        ++rows;
      }
    }
  r.mean /= static_cast<double>(rows);
  r.own_mean /= static_cast<double>(rows);
  return r;
}

}  // namespace

TEST_CASE("oracle ceiling: equals the brute-force top-n mass per row", "[oracle_ceiling]") {
  // Batch 2, GQA 4/2, nq < nk, sizes off the block.
  const AttentionShape s{2, 4, 2, 45, 77, 16};
  Geometry g;
  g.nq = s.nq;
  g.nk = s.nk;
  g.heads = 4;
  g.block_q = g.block_k = 16;
  spattn::PlantedSpec ps;
  ps.columns = {5, 40};
  ps.offsets = {3, 20};
  ps.needles = spattn::spread_needles(s, 4);
  const spattn::PlantedInputs in = spattn::planted_inputs(s, ps, 11);
  const Layout causal = spattn::build_layout(*spattn::parse_spec("causal"), g);
  for (const char* spec : {"sliding(9) | sink(2)", "vertical_slash(30, 50)", "moba(16, 2)",
                           "oracle_topk(12)", "causal"}) {
    CAPTURE(spec);
    const auto sel = spattn::select_layouts(spattn::parse_spec(spec), in.q.view(), in.k.view(), g);
    std::vector<const Layout*> ls;
    for (const Layout& l : sel.layouts) ls.push_back(&l);
    for (int threads : {1, 3}) {
      const auto c = spattn::experiments::oracle_ceiling(in.q.view(), in.k.view(), ls, causal,
                                                         1.0 / 4.0, threads);
      const Brute r = brute_force(in.q.view(), in.k.view(), ls, g);
      CHECK(c.recall_mean == Approx(r.mean).margin(1e-6));
      CHECK(c.recall_min == Approx(r.min).margin(1e-6));
      // No choice of the same number of keys holds more mass than the oracle's.
      CHECK(r.own_mean <= c.recall_mean + 1e-6);
    }
  }
  SECTION("oracle_topk(k) reaches its own ceiling; causal keeps everything") {
    const auto sel =
        spattn::select_layouts(spattn::parse_spec("oracle_topk(12)"), in.q.view(), in.k.view(), g);
    std::vector<const Layout*> ls{&sel.layouts[0], &sel.layouts[1]};
    const Brute r = brute_force(in.q.view(), in.k.view(), ls, g);
    CHECK(r.own_mean == Approx(r.mean).margin(1e-9));
    const auto c =
        spattn::experiments::oracle_ceiling(in.q.view(), in.k.view(), {&causal}, causal, 0.25);
    CHECK(c.recall_mean == 1.0);
    CHECK(c.recall_min == 1.0);
  }
  SECTION("row_key_counts counts pair by pair") {
    const Layout l = spattn::build_layout(*spattn::parse_spec("sliding(9) | sink(2)"), g);
    const auto counts = spattn::experiments::row_key_counts(l.head(0));
    for (i64 i = 0; i < g.nq; ++i) {
      i64 n = 0;
      for (i64 j = 0; j < g.nk; ++j) n += l.head(0).allows(i, j) ? 1 : 0;
      CHECK(counts[i] == n);
    }
  }
  SECTION("a layout of another geometry is refused") {
    Geometry other = g;
    other.nk = 80;
    const Layout l = spattn::build_layout(*spattn::parse_spec("causal"), other);
    CHECK_THROWS_AS(
        spattn::experiments::oracle_ceiling(in.q.view(), in.k.view(), {&l}, causal, 0.25),
        spattn::UsageError);
  }
}

TEST_CASE("fidelity on planted inputs: oracle ceiling and needle hit in the record",
          "[oracle_ceiling]") {
  spattn::experiments::SweepPoint p;
  p.key = "test";
  p.pattern.name = p.pattern.spec = "vertical_slash(30, 50)";
  p.n = 300;
  p.head_dim = 16;
  p.heads = 2;
  p.kv_heads = 1;
  p.batch = 2;
  p.threads = 2;
  p.block = 32;
  p.settings.repeats = 1;
  p.settings.warmup = 0;
  p.settings.seed = 3;
  p.settings.inputs.kind = "planted";
  p.settings.fidelity = true;
  p.settings.fidelity_baseline = "causal";
  for (const char* spec : {"vertical_slash(30, 50)", "sliding(40)", "causal"}) {
    CAPTURE(spec);
    p.pattern.name = p.pattern.spec = spec;
    const spattn::experiments::PreparedPoint u = spattn::experiments::prepare_point(p);
    const auto m = spattn::experiments::measure_prepared(u);
    REQUIRE(m.fidelity);
    REQUIRE(m.fidelity->needle_hit);
    REQUIRE(m.fidelity->oracle_recall_mean);
    // Brute force: the needles of the planted structure, each (batch, head) on its layout.
    const AttentionShape s{2, 2, 1, 300, 300, 16};
    const auto spec_planted = spattn::experiments::planted_spec(s);
    REQUIRE(spec_planted.needles.size() == 16);
    i64 hits = 0, total = 0;
    for (i64 b = 0; b < 2; ++b) {
      const spattn::Pattern& pat =
          u.pattern->needs_inputs() ? *u.batch_patterns[static_cast<std::size_t>(b)] : *u.pattern;
      for (int h = 0; h < 2; ++h)
        for (const auto& [row, key] : spec_planted.needles) {
          ++total;
          hits += pat.allows(u.g, h, row, key) ? 1 : 0;
        }
    }
    CHECK(*m.fidelity->needle_hit == Approx(static_cast<double>(hits) / total));
    CHECK(*m.fidelity->oracle_recall_mean >= m.fidelity->recall_mean - 1e-6);
    CHECK(*m.fidelity->oracle_recall_min <= *m.fidelity->oracle_recall_mean);
    if (std::string(spec) == "causal") {
      CHECK(*m.fidelity->needle_hit == 1.0);
      CHECK(*m.fidelity->oracle_recall_mean == 1.0);
    }
    // The record keeps them through JSON.
    const auto back = spattn::experiments::measurement_from_json(
        nlohmann::json::parse(spattn::experiments::to_json(m).dump()), "test");
    CHECK(back.fidelity->needle_hit == m.fidelity->needle_hit);
    CHECK(back.fidelity->oracle_recall_mean == m.fidelity->oracle_recall_mean);
    CHECK(back.fidelity->oracle_recall_min == m.fidelity->oracle_recall_min);
  }
  SECTION("random inputs have no needles; score modifications no oracle") {
    p.settings.inputs.kind = "random";
    p.softcap = 30;
    p.pattern.name = p.pattern.spec = "sliding(40)";
    const auto m = spattn::experiments::measure_point(p);
    REQUIRE(m.fidelity);
    CHECK_FALSE(m.fidelity->needle_hit);
    CHECK_FALSE(m.fidelity->oracle_recall_mean);
  }
}
