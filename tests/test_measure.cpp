// measure_point and predict_point on small points: their counts against brute force over
// Pattern::allows and a hand count of kept tiles, their timing fields against each other, the
// reference check, and their refusals (bad spec, memory limit). Also the .npy inputs of a point.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "attention_testing.hpp"
#include "cli_runner.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;
using spattn::experiments::Measurement;
using spattn::experiments::SweepPoint;

SweepPoint small_point(const std::string& spec, i64 n) {
  SweepPoint p;
  p.key = "test";
  p.pattern.name = p.pattern.spec = spec;
  p.n = n;
  p.head_dim = 16;
  p.heads = 2;
  p.kv_heads = 1;
  p.batch = 2;
  p.threads = 2;
  p.block = 16;
  p.settings.repeats = 3;
  p.settings.warmup = 1;
  p.settings.seed = 7;
  return p;
}

void write_tensor(const std::string& path, const spattn::Tensor& t, int rank) {
  std::vector<i64> shape(t.shape.end() - rank, t.shape.end());
  spattn::write_npy(path, "<f4", shape, t.values.data(), t.values.size() * sizeof(float));
}

}  // namespace

TEST_CASE("measure_point: counts against brute force and a hand count", "[measure]") {
  SECTION("causal at n = 100, block 16: kept tiles counted by hand") {
    SweepPoint p = small_point("causal", 100);
    p.settings.check = true;
    const Measurement m = spattn::experiments::measure_point(p);
    // Per (batch, query head): allowed pairs 1 + 2 + ... + 100 = 5050. Query blocks r = 0..6
    // (the last holds rows 96..99) keep key blocks 0..r. Rows r < 6: 16 rows x 16 (r + 1) keys,
    // 256 x (1 + ... + 6) = 5376; row 6: 4 rows x (6 x 16 + 4) keys = 400. Computed: 5776.
    // Kept tiles 1 + ... + 7 = 28, of which the 7 diagonal ones are Partial.
    const i64 copies = 2 * 2;  // batch x query heads
    CHECK(m.layout->allowed_pairs == 5050 * copies);
    CHECK(m.layout->computed_pairs == 5776 * copies);
    CHECK(m.layout->kept_tiles == 28 * copies);
    CHECK(m.layout->full_tiles == 21 * copies);
    CHECK(m.layout->partial_tiles == 7 * copies);
    CHECK(*m.density() == Approx(5050.0 / (100 * 100)));
    CHECK(*m.efficiency() == Approx(5050.0 / 5776));
    // Timing: 3 repeats, median between min and max, GFLOP/s from the median.
    const auto& t = *m.attention;
    REQUIRE(t.seconds.size() == 3);
    CHECK(t.warmup == 1);
    const double med = t.median();
    CHECK(t.min() <= med);
    CHECK(med <= t.max());
    CHECK(med > 0);
    CHECK(*m.useful_gflops() == Approx(4.0 * 16 * 5050 * copies / med * 1e-9).epsilon(1e-9));
    CHECK(*m.computed_gflops() == Approx(4.0 * 16 * 5776 * copies / med * 1e-9).epsilon(1e-9));
    CHECK(m.layout->build_seconds >= 0);
    CHECK(*m.resources.workspace_bytes > 0);
    CHECK(*m.resources.threads_used == 2);
    CHECK(*m.resources.tasks > 0);
    CHECK(*m.resources.peak_rss_bytes > 0);
    CHECK(m.layout->layout_bytes > 0);
    // q [2, 2, 100, 16], k and v [2, 1, 100, 16], float32.
    CHECK(m.predicted->input_bytes == 4 * (2 * 2 * 100 * 16 + 2 * 2 * 1 * 100 * 16));
    REQUIRE(m.check);
    CHECK(m.check->max_abs_error <= 1e-5);
    CHECK(m.check->max_rel_error <= 1e-5);
    CHECK(m.check->rel_l2_error <= 1e-5);
    CHECK(m.check->max_lse_error <= 1e-5);
    CHECK(m.check->finite);
    CHECK_FALSE(m.fidelity);
  }
  SECTION("other patterns: allowed pairs by brute force over allows()") {
    for (const std::string spec : {"sliding(7) | sink(2)", "window(3, 9) - causal",
                                   "heads(0: causal; 1: sliding(20))", "dense"}) {
      INFO(spec);
      SweepPoint p = small_point(spec, 90);
      p.settings.check = true;
      const Measurement m = spattn::experiments::measure_point(p);
      const i64 per_batch = spattn::test::brute_force_pairs(*spattn::parse_spec(spec),
                                                            spattn::Geometry{90, 90, 2, 16, 16});
      CHECK(m.layout->allowed_pairs == 2 * per_batch);
      CHECK(m.layout->computed_pairs >= m.layout->allowed_pairs);
      CHECK(m.check->rel_l2_error <= 1e-5);
      CHECK(m.check->max_lse_error <= 1e-5);
    }
  }
  SECTION("check only up to check_max_n; tile_mode partial gives the same counts and errors") {
    SweepPoint p = small_point("sliding(9)", 64);
    p.settings.check = true;
    p.settings.check_max_n = 63;
    CHECK_FALSE(spattn::experiments::measure_point(p).check);
    p.settings.check_max_n = 64;
    p.tile_mode = "partial";
    const Measurement m = spattn::experiments::measure_point(p);
    REQUIRE(m.check);
    CHECK(m.check->max_abs_error <= 1e-5);
    p.tile_mode = "auto";
    const Measurement a = spattn::experiments::measure_point(p);
    CHECK(m.layout->allowed_pairs == a.layout->allowed_pairs);
    CHECK(m.layout->computed_pairs == a.layout->computed_pairs);
    CHECK(m.layout->full_tiles == a.layout->full_tiles);
    CHECK(m.layout->partial_tiles == a.layout->partial_tiles);
    // The masked kernel computes bitwise the same output, so the reference sees the same error.
    CHECK(m.check->max_abs_error == a.check->max_abs_error);
  }
}

TEST_CASE("measure_point: keys beyond the queries, a key tile size and the textbook executor",
          "[measure]") {
  // Queries at the last 70 of 110 key positions, 32 x 16 tiles; both executors checked against
  // the reference.
  for (const auto executor :
       {spattn::experiments::Executor::Flash, spattn::experiments::Executor::Textbook}) {
    SweepPoint p = small_point("causal - sliding(5)", 70);
    p.nk = 110;
    p.block = 32;
    p.block_k = 16;
    p.executor = executor;
    p.settings.check = true;
    const Measurement m = spattn::experiments::measure_point(p);
    INFO(spattn::experiments::executor_name(executor));
    CHECK(m.axes.nk == 110);
    CHECK(m.axes.block_q == 32);
    CHECK(m.axes.block_k == 16);
    CHECK(m.axes.executor == executor);
    const i64 per_batch = spattn::test::brute_force_pairs(
        *spattn::parse_spec("causal - sliding(5)"), spattn::Geometry{70, 110, 2, 32, 16});
    CHECK(m.layout->allowed_pairs == 2 * per_batch);
    // Density over batch x heads x nq x nk = 2 x 2 x 70 x 110 pairs.
    CHECK(*m.density() == Approx(2.0 * per_batch / (2 * 2 * 70 * 110)));
    REQUIRE(m.check);
    CHECK(m.check->max_abs_error <= 1e-5);
    CHECK(m.check->max_lse_error <= 1e-5);
    CHECK(*m.resources.workspace_bytes > 0);
  }
}

TEST_CASE("predict_point: the same counts as measure_point, and the memory and time model",
          "[measure]") {
  SweepPoint p = small_point("sliding(20) | sink(1)", 200);
  p.heads = 4;
  p.settings.predict_gflops = 50;
  const spattn::experiments::PreparedPoint u = spattn::experiments::prepare_point(p);
  const auto& pred = u.prediction;
  const Measurement m = spattn::experiments::measure_point(p);
  CHECK(u.figures.allowed_pairs == m.layout->allowed_pairs);
  CHECK(u.figures.computed_pairs == m.layout->computed_pairs);
  CHECK(spattn::experiments::predict_point(p).memory_bytes == pred.memory_bytes);
  CHECK(m.predicted->memory_bytes == pred.memory_bytes);
  CHECK(pred.useful_flops == 4.0 * 16 * static_cast<double>(u.figures.allowed_pairs));
  CHECK(pred.computed_flops == 4.0 * 16 * static_cast<double>(u.figures.computed_pairs));
  // Memory: q [2, 4, 200, 16] + k, v [2, 1, 200, 16] + o and lse [2, 4, 200, 17], float32, plus
  // the layout and the executor's workspace estimate (2 threads, 4 query heads per K/V head).
  const i64 io = 4 * (2 * 4 * 200 * 16 + 2 * 2 * 1 * 200 * 16 + 2 * 4 * 200 * 17);
  // sliding(20) is a band of 20 diagonals, short enough for the diagonal path; when the plan
  // takes it, the transposed K and V ([2 batches][1 K/V head][16 dims][200 + 32 keys] each)
  // are part of the workspace.
  REQUIRE(u.figures.paths);
  const i64 transposed = u.figures.paths->diagonal_rows > 0 ? 2 * 4 * 2 * 1 * 16 * (200 + 32) : 0;
  const i64 ws = spattn::flash_workspace_estimate(spattn::Geometry{200, 200, 4, 16, 16}, 16, 2, 4) +
                 transposed;
  CHECK(pred.workspace_bytes == ws);
  CHECK(pred.memory_bytes == io + m.layout->layout_bytes + ws);
  // Time: warm-up + repeats calls of the computed FLOPs at 50 GFLOP/s.
  CHECK(pred.seconds == Approx(4 * pred.computed_flops / 50e9));
  SECTION("check adds the reference's matrix and outputs, and its FLOPs at 1/50 the rate") {
    p.settings.check = true;
    const auto c = spattn::experiments::predict_point(p);
    // One double n x n score matrix and the double outputs [2, 4, 200, 17].
    CHECK(c.memory_bytes == pred.memory_bytes + 8 * (200 * 200 + 2 * 4 * 200 * 17));
    CHECK(c.seconds == Approx(pred.seconds + 50 * 4.0 * 16 * 2 * 4 * 200 * 200 / 50e9));
    p.settings.check_max_n = 199;  // not checked at n = 200: nothing added
    CHECK(spattn::experiments::predict_point(p).memory_bytes == pred.memory_bytes);
    p.settings.check = false;
  }
  SECTION("fidelity adds a dense output, the oracle's logits and 1.5x the dense FLOPs") {
    p.settings.fidelity = true;
    const auto f = spattn::experiments::predict_point(p);
    const i64 dense_layout = 8 * (13 + 1) + 8 * 13 * 13;  // 13 x 13 tiles of 16 at n = 200
    const i64 oracle = 8 * 16 * 200 * p.threads;          // a query block's logits per thread
    CHECK(f.memory_bytes == pred.memory_bytes + 4 * (2 * 4 * 200 * 17) + dense_layout + oracle);
    CHECK(f.seconds == Approx(pred.seconds + 1.5 * 4.0 * 16 * 2 * 4 * 200 * 200 / 50e9));
  }
}

TEST_CASE("measure_point and predict_point refuse bad points", "[measure]") {
  using spattn::BudgetError;
  using spattn::UsageError;
  using spattn::experiments::measure_point;
  using spattn::experiments::predict_point;
  SECTION("a bad spec") {
    const SweepPoint p = small_point("slidng(4)", 64);
    CHECK_THROWS_AS(measure_point(p), UsageError);
    CHECK_THROWS_AS(predict_point(p), UsageError);
    CHECK_THROWS_AS(measure_point(small_point("sliding(", 64)), UsageError);
  }
  SECTION("bad axes") {
    SweepPoint p = small_point("causal", 64);
    p.tile_mode = "masked";
    CHECK_THROWS_WITH(measure_point(p), Catch::Contains("tile_mode 'masked'"));
    p = small_point("causal", 64);
    p.kv_heads = 3;
    CHECK_THROWS_AS(predict_point(p), UsageError);
    p = small_point("causal", 64);
    p.block = 48;
    CHECK_THROWS_AS(predict_point(p), UsageError);
    p = small_point("causal", 64);
    p.settings.inputs.kind = "gaussian";
    CHECK_THROWS_WITH(measure_point(p), Catch::Contains("'gaussian'"));
  }
  SECTION("a memory limit too small") {
    // n = 4096, 8 heads, d = 64: the inputs alone are 3 x 8 x 4096 x 64 x 4 bytes = 24 MiB.
    SweepPoint p = small_point("sliding(64)", 4096);
    p.heads = p.kv_heads = 8;
    p.head_dim = 64;
    p.batch = 1;
    p.settings.memory_bytes = 8 << 20;
    const auto pred = predict_point(p);
    CHECK(pred.memory_bytes > 24 << 20);
    CHECK_THROWS_AS(measure_point(p), BudgetError);
    // A limit below the layout itself is refused by the layout build, in both.
    p.settings.memory_bytes = 1000;
    CHECK_THROWS_AS(predict_point(p), BudgetError);
    CHECK_THROWS_AS(measure_point(p), BudgetError);
  }
}

TEST_CASE("measure inputs: .npy files fitted to the point", "[measure]") {
  const spattn::test::TempDir dir("spattn_measure_npy");
  spattn::AttentionShape s;
  s.batch = 2, s.q_heads = 4, s.kv_heads = 2, s.nq = s.nk = 40, s.dim = 8;
  spattn::experiments::InputSpec spec;
  spec.kind = "npy";
  spec.npy_dir = dir.path().string();
  // q as one head [N, d] (repeated to every batch and head), k as [H, N, d], v as [B, H, N, d].
  const spattn::Tensor q = spattn::test::random_tensor(1, 1, 40, 8, 3, 0);
  const spattn::Tensor k = spattn::test::random_tensor(1, 2, 40, 8, 3, 1);
  const spattn::Tensor v = spattn::test::random_tensor(2, 2, 40, 8, 3, 2);
  write_tensor(dir.file("q.npy"), q, 2);
  write_tensor(dir.file("k.npy"), k, 3);
  write_tensor(dir.file("v.npy"), v, 4);
  SECTION("k and v must have one shape") {
    CHECK_THROWS_WITH(spattn::experiments::make_inputs(spec, s, 0, 1 << 30),
                      Catch::Contains("same shape"));
  }
  write_tensor(dir.file("v.npy"), k, 3);
  SECTION("missing or size-1 axes are repeated") {
    const auto in = spattn::experiments::make_inputs(spec, s, 0, 1 << 30);
    REQUIRE(in.q.shape == std::array<i64, 4>{2, 4, 40, 8});
    REQUIRE(in.k.shape == std::array<i64, 4>{2, 2, 40, 8});
    for (i64 b = 0; b < 2; ++b)
      for (i64 h = 0; h < 4; ++h)
        for (i64 n = 0; n < 40; ++n)
          for (i64 x = 0; x < 8; ++x) {
            REQUIRE(in.q.view().at(b, h, n, x) == q.view().at(0, 0, n, x));
            if (h < 2) REQUIRE(in.k.view().at(b, h, n, x) == k.view().at(0, h, n, x));
          }
  }
  SECTION("an axis that differs from the point's is refused with both shapes") {
    s.dim = 9;
    CHECK_THROWS_WITH(
        spattn::experiments::make_inputs(spec, s, 0, 1 << 30),
        Catch::Contains("q.npy has shape (40, 8)") && Catch::Contains("(2, 4, 40, 9)"));
  }
  SECTION("fewer tokens than the point's: the file, its token count and N") {
    s.nq = s.nk = 41;
    CHECK_THROWS_WITH(spattn::experiments::make_inputs(spec, s, 0, 1 << 30),
                      Catch::Contains("q.npy has 40 tokens (axis 0 of shape (40, 8))") &&
                          Catch::Contains("needs 41 queries"));
  }
  SECTION("NaN and Inf are refused with the file and the first bad index") {
    spattn::Tensor bad = k;
    bad.view().at(0, 1, 7, 2) = std::numeric_limits<float>::infinity();
    bad.view().at(0, 1, 9, 0) = std::numeric_limits<float>::quiet_NaN();
    write_tensor(dir.file("k.npy"), bad, 3);
    CHECK_THROWS_WITH(spattn::experiments::make_inputs(spec, s, 0, 1 << 30),
                      Catch::Contains("k.npy: element [1, 7, 2]") && Catch::Contains("inf"));
  }
  // A causal point over these files, checked against the reference.
  auto npy_point = [&] {
    SweepPoint p = small_point("causal", 40);
    p.heads = 4;
    p.kv_heads = 2;
    p.head_dim = 8;
    p.settings.inputs = spec;
    p.settings.check = true;
    return p;
  };
  SECTION("a point with npy inputs measures them") {
    SweepPoint p = npy_point();
    const Measurement m = spattn::experiments::measure_point(p);
    CHECK(m.check->max_abs_error <= 1e-5);
    CHECK(m.axes.inputs == "npy:" + dir.path().string());
    p.n = 48;
    CHECK_THROWS_AS(spattn::experiments::measure_point(p), spattn::UsageError);
  }
  SECTION("finite inputs whose logits overflow float32 fail the point, not a NaN result") {
    // q·k = 8 * 1e20 * 1e20 = 8e40, beyond float: the output would be NaN, and its check and
    // fidelity would compare NaN with NaN.
    spattn::Tensor big = q;
    std::fill(big.values.begin(), big.values.end(), 1e20f);
    write_tensor(dir.file("q.npy"), big, 2);
    write_tensor(dir.file("v.npy"), k, 3);
    spattn::Tensor big_k = k;
    std::fill(big_k.values.begin(), big_k.values.end(), 1e20f);
    write_tensor(dir.file("k.npy"), big_k, 3);
    SweepPoint p = npy_point();
    p.settings.fidelity = true;
    try {
      (void)spattn::experiments::measure_point(p);
      FAIL("measured a NaN output");
    } catch (const spattn::UsageError&) {
      FAIL("a runtime error was expected, not a usage error");
    } catch (const spattn::Error& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains("overflowed float32"));
    }
  }
}

TEST_CASE("spattn run: --mask-full-tiles and 2-D inputs", "[measure]") {
  const spattn::test::TempDir dir("spattn_measure_run");
  // One head as [N, d] files: read as batch 1, one head.
  write_tensor(dir.file("q.npy"), spattn::test::random_tensor(1, 1, 70, 12, 4, 0), 2);
  write_tensor(dir.file("k.npy"), spattn::test::random_tensor(1, 1, 70, 12, 4, 1), 2);
  write_tensor(dir.file("v.npy"), spattn::test::random_tensor(1, 1, 70, 12, 4, 2), 2);
  const std::string base = "run causal --n 70 --block 16 --repeats 1 --inputs '" +
                           dir.path().string() + "' --json --save ";
  const auto plain = spattn::test::run_cli(base + "'" + dir.file("plain") + "'");
  const auto masked =
      spattn::test::run_cli(base + "'" + dir.file("masked") + "' --mask-full-tiles --check");
  REQUIRE(plain.code == 0);
  REQUIRE(masked.code == 0);
  const Measurement j =
      spattn::experiments::measurement_from_json(nlohmann::json::parse(masked.out), "run --json");
  CHECK(j.axes.tile_mode == "partial");
  CHECK(j.axes.heads == 1);
  CHECK(j.axes.batch == 1);
  CHECK(j.check->max_rel_error <= 1e-5);
  CHECK(j.saved == dir.file("masked"));
  // Same output, bitwise.
  CHECK(spattn::read_npy(dir.file("plain/o.npy")).data ==
        spattn::read_npy(dir.file("masked/o.npy")).data);
  CHECK(spattn::read_npy(dir.file("plain/lse.npy")).data ==
        spattn::read_npy(dir.file("masked/lse.npy")).data);
  CHECK(spattn::test::run_cli("run causal --n 10 --executor textbook --mask-full-tiles").code == 2);
}
