// End-to-end tests of `spattn run`: output fields against brute-force counts, --check, --save
// against the library, --inputs with good and bad files, and the memory budget.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "cli_runner.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;

using Result = spattn::test::CliResult;
using spattn::experiments::Executor;
using spattn::experiments::Measurement;
using spattn::experiments::Status;

// The one-line record of `run --json` / `stats --json`, parsed by the record's own parser.
Measurement record(const std::string& out) {
  return spattn::experiments::measurement_from_json(nlohmann::json::parse(out), "--json output");
}

Result run(const std::string& args) {
  return spattn::test::run_cli(args);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

void write_tensor(const std::string& path, const spattn::Tensor& t) {
  spattn::write_npy(path, "<f4", {t.shape[0], t.shape[1], t.shape[2], t.shape[3]}, t.values.data(),
                    t.values.size() * sizeof(float));
}

}  // namespace

TEST_CASE("cli run: human and JSON output agree with brute force", "[cli-run]") {
  // sliding(7) | sink(2) at nq = 90, nk = 120, 2 heads, batch 2.
  spattn::Geometry g;
  g.nq = 90, g.nk = 120, g.heads = 2, g.block_q = 32, g.block_k = 16;
  const i64 per_batch =
      spattn::test::brute_force_pairs(*spattn::parse_spec("sliding(7) | sink(2)"), g);
  const std::string args =
      "run 'sliding(7) | sink(2)' --n 90 --nk 120 --heads 2 --kv-heads 1 --batch 2 --d 16 "
      "--block-q 32 --block-k 16 --repeats 3 --seed 4";
  SECTION("human") {
    const Result r = run(args);
    REQUIRE(r.code == 0);
    CHECK(r.err.empty());
    for (const char* field :
         {"spec", "shape", "mask build", "attention", "allowed pairs", "computed pairs",
          "efficiency", "useful GFLOP/s", "computed GFLOP/s", "workspace", "peak memory"})
      CHECK(contains(r.out, field));
    CHECK(contains(r.out, "allowed pairs        " + std::to_string(2 * per_batch) + "\n"));
  }
  SECTION("json: one line, a Measurement record with the layout's counts") {
    const Result r = run(args + " --json");
    REQUIRE(r.code == 0);
    REQUIRE(std::count(r.out.begin(), r.out.end(), '\n') == 1);  // JSONL: `>> runs.jsonl`
    const Measurement m = record(r.out);
    CHECK(m.source == "run");
    CHECK(m.status == Status::Ok);
    CHECK(m.axes.n == 90);
    CHECK(m.axes.nk == 120);
    CHECK(m.axes.heads == 2);
    CHECK(m.axes.kv_heads == 1);
    CHECK(m.axes.batch == 2);
    CHECK(m.axes.head_dim == 16);
    CHECK(m.axes.block_q == 32);
    CHECK(m.axes.block_k == 16);
    CHECK(m.axes.seed == 4);
    CHECK(m.axes.executor == Executor::Flash);
    CHECK(m.axes.inputs == "random");
    // Every count equals the layout's, built here by the library.
    const spattn::Layout layout =
        spattn::build_layout(*spattn::parse_spec("sliding(7) | sink(2)"), g);
    const spattn::LayoutCounts c = layout.counts();
    REQUIRE(m.layout);
    CHECK(m.layout->allowed_pairs == 2 * per_batch);
    CHECK(m.layout->allowed_pairs == 2 * c.allowed_pairs);
    REQUIRE(m.layout->paths);
    CHECK(m.layout->paths->tile_area_pairs == 2 * c.computed_pairs);
    CHECK(m.layout->computed_pairs >= m.layout->allowed_pairs);
    CHECK(m.layout->computed_pairs == m.layout->paths->whole_pairs + m.layout->paths->run_pairs +
                                          m.layout->paths->gather_pairs +
                                          m.layout->paths->diagonal_pairs);
    CHECK(m.layout->kept_tiles == 2 * c.kept_tiles);
    CHECK(m.layout->full_tiles == 2 * c.full_tiles);
    CHECK(m.layout->partial_tiles == 2 * c.partial_tiles);
    CHECK(m.layout->distinct_head_layouts == static_cast<int>(layout.distinct.size()));
    const double allowed = static_cast<double>(m.layout->allowed_pairs),
                 computed = static_cast<double>(m.layout->computed_pairs);
    CHECK(computed >= allowed);
    CHECK(*m.efficiency() == Approx(allowed / computed));
    CHECK(m.predicted->useful_flops == 4.0 * 16 * allowed);
    REQUIRE(m.attention);
    CHECK(m.attention->seconds.size() == 3);
    CHECK(m.attention->warmup == 1);
    const double med = m.attention->median();
    CHECK(m.attention->min() <= med);
    CHECK(med <= m.attention->max());
    CHECK(*m.useful_gflops() == Approx(4.0 * 16 * allowed / med * 1e-9).epsilon(1e-9));
    CHECK(*m.resources.peak_rss_bytes > 0);
    CHECK(*m.resources.workspace_bytes > 0);
    CHECK_FALSE(m.check);
    CHECK_FALSE(m.saved);
  }
}

TEST_CASE("cli run: an empty pattern has no efficiency, as in spattn stats", "[cli-run]") {
  for (const std::string cmd : {"run", "stats"}) {
    const Result r =
        run(cmd + " 'dense - dense' --n 64 --json" + (cmd == "run" ? " --repeats 1" : ""));
    REQUIRE(r.code == 0);
    const Measurement m = record(r.out);
    CHECK(m.source == cmd);
    CHECK(m.layout->allowed_pairs == 0);
    CHECK_FALSE(m.efficiency());
    CHECK(nlohmann::json::parse(r.out)["layout"]["efficiency"].is_null());
    CHECK(run(cmd + " 'dense - dense' --n 64" + (cmd == "run" ? " --repeats 1" : ""))
              .out.find("n/a (no tile kept)") != std::string::npos);
  }
}

TEST_CASE("cli run: --check reports errors under 1e-5, for both executors", "[cli-run]") {
  const Result r =
      run("run 'causal - sliding(3)' --n 150 --nk 170 --heads 4 --kv-heads 2 --d 80 --check --json "
          "--repeats 1");
  REQUIRE(r.code == 0);
  const Measurement m = record(r.out);
  REQUIRE(m.check);
  CHECK(m.check->max_rel_error <= 1e-5);
  CHECK(m.check->max_lse_error <= 1e-5);
  CHECK(m.check->rel_l2_error <= 1e-5);
  CHECK(m.check->finite);
  CHECK(m.check->reference_seconds > 0);
  const Result h = run("run causal --n 64 --check --repeats 1");
  REQUIRE(h.code == 0);
  CHECK(contains(h.out, "max rel error"));
  // The textbook baseline and the flash executor through the same harness, with --save: both
  // match the reference, and each other.
  const spattn::test::TempDir dir("spattn_cli_run_executors");
  for (const std::string executor : {"textbook", "flash"}) {
    const Result t =
        run("run 'sliding(9) | sink(1)' --n 70 --nk 90 --heads 2 --d 7 --executor " + executor +
            " --check --json --repeats 1 --save '" + dir.file(executor) + "'");
    REQUIRE(t.code == 0);
    const Measurement tj = record(t.out);
    CHECK(spattn::experiments::executor_name(tj.axes.executor) == executor);
    REQUIRE(tj.check);
    CHECK(tj.check->max_rel_error <= 1e-5);
    CHECK(tj.check->max_abs_error <= 1e-5);
    CHECK(tj.saved == dir.file(executor));
  }
  const std::vector<float> flash = spattn::read_npy(dir.file("flash/o.npy")).as_float32();
  const std::vector<float> textbook = spattn::read_npy(dir.file("textbook/o.npy")).as_float32();
  REQUIRE(flash.size() == textbook.size());
  double worst = 0;
  for (std::size_t i = 0; i < flash.size(); ++i)
    worst = std::max(worst, static_cast<double>(std::fabs(flash[i] - textbook[i])));
  CHECK(worst <= 1e-5);
  const Result bad = run("run causal --n 10 --executor fast");
  CHECK(bad.code == 2);
  CHECK(contains(bad.err, "--executor 'fast' is not allowed: use one of flash, textbook"));
}

TEST_CASE("cli run: --inputs and --save round trip against the library", "[cli-run]") {
  const spattn::test::TempDir dir("spattn_cli_run_io");
  const i64 B = 2, H = 4, Hkv = 2, nq = 50, nk = 75, d = 24;
  const spattn::Tensor q = spattn::test::random_tensor(B, H, nq, d, 11, 0);
  const spattn::Tensor k = spattn::test::random_tensor(B, Hkv, nk, d, 11, 1);
  const spattn::Tensor v = spattn::test::random_tensor(B, Hkv, nk, d, 11, 2);
  write_tensor(dir.file("q.npy"), q);
  write_tensor(dir.file("k.npy"), k);
  write_tensor(dir.file("v.npy"), v);
  const std::string spec = "window(5, 9) | sink(1)";
  const std::string base =
      "run '" + spec + "' --n 50 --block 16 --repeats 1 --inputs '" + dir.path().string() + "'";

  SECTION("--save writes what attention() computes on the same inputs") {
    // --nk, --heads, --kv-heads, --d and --batch come from the files.
    const Result r = run(base + " --save '" + dir.file("out") + "'");
    REQUIRE(r.code == 0);
    spattn::Geometry g;
    g.nq = nq, g.nk = nk, g.heads = static_cast<int>(H), g.block_q = 16, g.block_k = 16;
    const auto layout = spattn::build_layout(*spattn::parse_spec(spec), g);
    const auto want = spattn::attention(q.view(), k.view(), v.view(), layout);
    const spattn::NpyArray o = spattn::read_npy(dir.file("out/o.npy"));
    const spattn::NpyArray lse = spattn::read_npy(dir.file("out/lse.npy"));
    CHECK(o.shape == std::vector<i64>{B, H, nq, d});
    CHECK(lse.shape == std::vector<i64>{B, H, nq});
    // The executor is deterministic (bitwise, any thread count): the saved output is equal.
    CHECK(o.as_float32() == want.o.values);
    CHECK(lse.as_float32() == want.lse.values);
  }
  SECTION("flags that disagree with the files are refused") {
    const Result r = run(base + " --d 32");
    CHECK(r.code == 2);
    CHECK(contains(r.err, "q.npy has 24 head dim"));
    CHECK(contains(r.err, "--d 32"));
    const Result n = run(base + " --nk 70");
    CHECK(n.code == 2);
    CHECK(contains(n.err, "k.npy has 75 tokens"));
  }
  SECTION("a size error names the axis in the file's own shape") {
    // 3-D files [H, N, d] (batch 1): heads are axis 0 of the file, not axis 1 of [B, H, N, d].
    auto write3 = [&](const std::string& name, const spattn::Tensor& t) {
      spattn::write_npy(dir.file(name), "<f4", {t.shape[1], t.shape[2], t.shape[3]},
                        t.values.data(), t.values.size() * sizeof(float));
    };
    write3("q.npy", spattn::test::random_tensor(1, H, nq, d, 1, 0));
    write3("k.npy", spattn::test::random_tensor(1, Hkv, nk, d, 1, 1));
    write3("v.npy", spattn::test::random_tensor(1, Hkv, nk, d, 1, 2));
    const Result r = run(base + " --heads " + std::to_string(H + 1));
    CHECK(r.code == 2);
    CHECK(contains(r.err, "heads (axis 0 of the file's [H, N, d])"));
    const Result t = run(base + " --nk " + std::to_string(nk + 1));
    CHECK(t.code == 2);
    CHECK(contains(t.err, "tokens (axis 1 of the file's [H, N, d])"));
    const Result b = run(base + " --batch 2");
    CHECK(b.code == 2);
    CHECK(contains(b.err, "batch entries (the file's [H, N, d] has no such axis: 1)"));
  }
  SECTION("wrong dtype") {
    std::vector<double> values(q.values.begin(), q.values.end());
    spattn::write_npy(dir.file("q.npy"), "<f8", {B, H, nq, d}, values.data(),
                      values.size() * sizeof(double));
    const Result r = run(base);
    CHECK(r.code == 2);
    CHECK(contains(r.err, "q.npy: dtype '<f8'"));
    CHECK(contains(r.err, "float32"));
  }
  SECTION("mismatched sizes between files") {
    // v may have its own head dim d_v (--dv from the file); any other axis must match k's.
    write_tensor(dir.file("v.npy"), spattn::test::random_tensor(B, Hkv, nk + 1, d, 1, 1));
    const Result r = run(base);
    CHECK(r.code == 2);
    CHECK(contains(r.err, "k.npy"));
    CHECK(contains(r.err, "v.npy"));
    CHECK(contains(r.err, "same shape but for the head dim"));
  }
  SECTION("v with its own head dim sets d_v; --dv must agree") {
    write_tensor(dir.file("v.npy"), spattn::test::random_tensor(B, Hkv, nk, d + 8, 1, 1));
    const Result r = run(base + " --check --json");
    REQUIRE(r.code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["axes"]["head_dim_v"] == d + 8);
    CHECK(j["check"]["max_rel_error"].get<double>() <= 1e-5);
    const Result bad = run(base + " --dv " + std::to_string(d));
    CHECK(bad.code == 2);
    CHECK(contains(bad.err, "--dv"));
  }
  SECTION("a NaN is reported with its file and index") {
    spattn::Tensor bad = v;
    bad.view().at(1, 0, 3, 5) = std::numeric_limits<float>::quiet_NaN();
    write_tensor(dir.file("v.npy"), bad);
    const Result r = run(base);
    CHECK(r.code == 2);
    CHECK(contains(r.err, "v.npy: element [1, 0, 3, 5]"));
    CHECK(contains(r.err, "nan"));
  }
  SECTION("finite inputs whose logits overflow float32 are an error, not a NaN result") {
    // q·k = 24 * 1e20 * 1e20 = 2.4e41 > float's 3.4e38: the scores are inf and the output NaN.
    spattn::Tensor big_q = q, big_k = k;
    std::fill(big_q.values.begin(), big_q.values.end(), 1e20f);
    std::fill(big_k.values.begin(), big_k.values.end(), 1e20f);
    write_tensor(dir.file("q.npy"), big_q);
    write_tensor(dir.file("k.npy"), big_k);
    for (const std::string executor : {"flash", "textbook"}) {
      const Result r = run(base + " --executor " + executor + " --save '" + dir.file("nan") + "'");
      CHECK(r.code == 1);
      INFO(r.err);
      CHECK(contains(r.err, "o[0, 0, 0, 0] is "));
      CHECK(contains(r.err, "nan although q, k and v are finite"));
      CHECK(contains(r.err, "overflowed float32"));
      CHECK_FALSE(std::filesystem::exists(dir.file("nan/o.npy")));  // nothing saved
    }
    // Large but representable logits (|q·k| = 24 * 1e18) stay finite and exact in float: fine.
    std::fill(big_q.values.begin(), big_q.values.end(), 1e9f);
    std::fill(big_k.values.begin(), big_k.values.end(), 1e9f);
    write_tensor(dir.file("q.npy"), big_q);
    write_tensor(dir.file("k.npy"), big_k);
    CHECK(run(base).code == 0);
  }
  SECTION("a missing file") {
    std::remove(dir.file("k.npy").c_str());
    const Result r = run(base);
    CHECK(r.code == 2);
    CHECK(contains(r.err, "k.npy"));
  }
}

TEST_CASE("cli run: the memory budget", "[cli-run]") {
  SECTION("--check is refused when the reference does not fit, with its estimate") {
    // Reference estimate at nq = nk = 1000, 2 heads, d = 64, batch 1: the 1000 x 1000 double
    // score matrix plus 2 x 1000 x 65 doubles of output.
    spattn::AttentionShape s;
    s.batch = 1, s.q_heads = 2, s.kv_heads = 2, s.nq = 1000, s.nk = 1000, s.dim = 64;
    const i64 estimate = spattn::reference_memory_bytes(s);
    CHECK(estimate == 8 * (1000 * 1000 + 2 * 1000 * 65));
    const Result r = run("run causal --n 1000 --heads 2 --check --memory-budget 6M");
    CHECK(r.code == 1);
    CHECK(contains(r.err, "--check"));
    CHECK(contains(r.err, spattn::format_bytes(estimate)));
    CHECK(contains(r.err, spattn::format_bytes(6 << 20)));
    // Without --check the same budget is enough.
    CHECK(run("run causal --n 1000 --heads 2 --memory-budget 6M --repeats 1").code == 0);
  }
  SECTION("a bad budget is a usage error") {
    const Result r = run("run causal --n 10 --memory-budget 12Q");
    CHECK(r.code == 2);
    CHECK(contains(r.err, "--memory-budget '12Q'"));
  }
  SECTION("bad shape flags") {
    CHECK(run("run causal --n 10 --heads 4 --kv-heads 3").code == 2);
    CHECK(run("run causal --n 10 --d 300").code == 2);
    CHECK(run("run causal --n 10 --repeats 0").code == 2);
  }
}
