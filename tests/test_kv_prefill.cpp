// The flash executor with bfloat16 and int8 K/V (attention() on KVViews): on every execution
// path against the double reference computed on the rounded K/V, bitwise equal to the float32
// executor on the dequantized K/V, bitwise the same on 1, 2 and 3 threads, mixed dtypes, GQA,
// nq != nk, and the refusals of bad views. Also `spattn run --kv-dtype`.
#include <catch2/catch.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "attention_testing.hpp"
#include "cli_runner.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/kv_tensor.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using i64 = std::int64_t;
using spattn::ExecutionPath;
using spattn::KVDtype;

constexpr ExecutionPath kPaths[] = {ExecutionPath::Auto,      ExecutionPath::Tiles,
                                    ExecutionPath::Runs,      ExecutionPath::Gather,
                                    ExecutionPath::Diagonals, ExecutionPath::Classes};

struct Case {
  i64 B, Hq, Hkv, nq, nk, d;
  int block;
};

void check_dtype(const std::string& spec, const Case& c, KVDtype kd, KVDtype vd,
                 std::uint64_t seed) {
  const spattn::Tensor q = spattn::test::random_tensor(c.B, c.Hq, c.nq, c.d, seed, 0);
  const spattn::Tensor k = spattn::test::random_tensor(c.B, c.Hkv, c.nk, c.d, seed, 1);
  const spattn::Tensor v = spattn::test::random_tensor(c.B, c.Hkv, c.nk, c.d, seed, 2);
  const spattn::KVTensor kn = spattn::quantize_kv(k.view(), kd);
  const spattn::KVTensor vn = spattn::quantize_kv(v.view(), vd);
  const spattn::Tensor kr = spattn::dequantize_kv(kn.view()), vr = spattn::dequantize_kv(vn.view());
  spattn::Geometry g;
  g.nq = c.nq, g.nk = c.nk, g.heads = static_cast<int>(c.Hq), g.block_q = g.block_k = c.block;
  const auto pattern = spattn::parse_spec(spec);
  const auto layout = spattn::build_layout(*pattern, g);
  const auto ref = spattn::reference_attention(q.view(), kr.view(), vr.view(), *pattern, g);
  for (const ExecutionPath path : kPaths) {
    INFO(spec << " K " << spattn::kv_dtype_name(kd) << " V " << spattn::kv_dtype_name(vd)
              << " path " << spattn::execution_path_name(path));
    spattn::AttentionOptions opt;
    opt.path = path;
    opt.threads = 1;
    spattn::Tensor o(c.B, c.Hq, c.nq, c.d), lse(c.B, c.Hq, c.nq, 1);
    spattn::attention(q.view(), kn.view(), vn.view(), layout, o.view(), lse.view(), opt);
    // Against the double reference on the rounded K/V.
    const spattn::ReferenceError e = spattn::compare_to_reference(o.view(), lse.view(), ref);
    CHECK(e.finite);
    CHECK(e.max_rel <= 1e-5);
    CHECK(e.lse_max <= 1e-4);
    // The float32 executor on the dequantized K/V runs the same kernels on the same values.
    const auto f = spattn::attention(q.view(), kr.view(), vr.view(), layout, opt);
    CHECK(o.values == f.o.values);
    CHECK(lse.values == f.lse.values);
    // Any thread count, bitwise.
    for (int t : {2, 3}) {
      opt.threads = t;
      spattn::Tensor o2(c.B, c.Hq, c.nq, c.d), lse2(c.B, c.Hq, c.nq, 1);
      spattn::attention(q.view(), kn.view(), vn.view(), layout, o2.view(), lse2.view(), opt);
      CHECK(o2.values == o.values);
      CHECK(lse2.values == lse.values);
    }
  }
}

}  // namespace

TEST_CASE("narrow K/V prefill: every path against the reference on the rounded K/V",
          "[kv_prefill]") {
  const Case cases[] = {
      {2, 4, 2, 96, 96, 24, 32},   // GQA, d not a multiple of 16
      {1, 2, 1, 64, 160, 64, 16},  // queries at the end of more keys
  };
  const std::string specs[] = {"causal", "st_strided(16) | sink(2)", "sliding(12) | sink(3)",
                               "dilated(5, 3) | global(2)", "random(3, block=1, seed=2)"};
  std::uint64_t seed = 70;
  for (const Case& c : cases)
    for (const std::string& spec : specs)
      for (const KVDtype dt : {KVDtype::BF16, KVDtype::Int8}) check_dtype(spec, c, dt, dt, seed++);
  // Mixed: K in bf16 and V in int8, or V alone narrow.
  check_dtype("st_fixed(32, 8)", cases[0], KVDtype::BF16, KVDtype::Int8, 99);
  check_dtype("dense", cases[1], KVDtype::F32, KVDtype::BF16, 98);
}

TEST_CASE("narrow K/V prefill: rounding error against the float32 reference, and refusals",
          "[kv_prefill]") {
  const i64 N = 128, d = 32;
  const spattn::Tensor q = spattn::test::random_tensor(1, 2, N, d, 5, 0);
  const spattn::Tensor k = spattn::test::random_tensor(1, 2, N, d, 5, 1);
  const spattn::Tensor v = spattn::test::random_tensor(1, 2, N, d, 5, 2);
  spattn::Geometry g;
  g.nq = g.nk = N, g.heads = 2, g.block_q = g.block_k = 64;
  const auto pattern = spattn::parse_spec("causal");
  const auto layout = spattn::build_layout(*pattern, g);
  const auto exact = spattn::reference_attention(q.view(), k.view(), v.view(), *pattern, g);
  // Against the unrounded K/V the error is the storage's: bf16 keeps 8 significant bits
  // (relative rounding 2^-9), int8 a step of max|x| / 127 per token.
  double bf16_err = 0;
  for (const auto& [dt, bound] : {std::pair{KVDtype::BF16, 1e-2}, std::pair{KVDtype::Int8, 5e-2}}) {
    const auto kn = spattn::quantize_kv(k.view(), dt), vn = spattn::quantize_kv(v.view(), dt);
    spattn::Tensor o(1, 2, N, d), lse(1, 2, N, 1);
    spattn::attention(q.view(), kn.view(), vn.view(), layout, o.view(), lse.view());
    const auto e = spattn::compare_to_reference(o.view(), lse.view(), exact);
    INFO(spattn::kv_dtype_name(dt));
    CHECK(e.max_rel > 1e-6);  // the rounding is there
    CHECK(e.max_rel < bound);
    if (dt == KVDtype::BF16) bf16_err = e.max_rel;
  }
  CHECK(bf16_err > 0);
  // Refusals: an int8 view without scales, a null view, a shape mismatch.
  const auto kn = spattn::quantize_kv(k.view(), KVDtype::Int8);
  spattn::KVView bad = kn.view();
  bad.scales = nullptr;
  spattn::Tensor o(1, 2, N, d), lse(1, 2, N, 1);
  CHECK_THROWS_AS(spattn::attention(q.view(), bad, kn.view(), layout, o.view(), lse.view()),
                  spattn::UsageError);
  CHECK_THROWS_WITH(spattn::attention(q.view(), bad, kn.view(), layout, o.view(), lse.view()),
                    Catch::Contains("no per-token scales"));
  bad = kn.view();
  bad.data = nullptr;
  CHECK_THROWS_WITH(spattn::attention(q.view(), bad, kn.view(), layout, o.view(), lse.view()),
                    Catch::Contains("has no data"));
  const auto short_k =
      spattn::quantize_kv(spattn::test::random_tensor(1, 2, N - 1, d, 5, 3).view(), KVDtype::BF16);
  CHECK_THROWS_AS(
      spattn::attention(q.view(), short_k.view(), short_k.view(), layout, o.view(), lse.view()),
      spattn::UsageError);
}

TEST_CASE("spattn run --kv-dtype: the check against the reference on the rounded K/V",
          "[kv_prefill][cli]") {
  for (const char* dt : {"bf16", "int8"}) {
    const auto r = spattn::test::run_cli(
        std::string("run 'sliding(20) | sink(2)' --n 256 --heads 2 --d 32 --repeats 1 --check "
                    "--json --kv-dtype ") +
        dt);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    const auto j = nlohmann::json::parse(r.out);
    CHECK(j["axes"]["kv_dtype"] == dt);
    CHECK(j["check"]["max_rel_error"].get<double>() <= 1e-5);
  }
  const auto bad = spattn::test::run_cli("run dense --n 64 --kv-dtype fp8");
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("fp8") && Catch::Contains("bf16"));
  const auto textbook =
      spattn::test::run_cli("run dense --n 64 --kv-dtype bf16 --executor textbook");
  CHECK(textbook.code == 2);
  CHECK_THAT(textbook.err, Catch::Contains("flash executor only"));
}
