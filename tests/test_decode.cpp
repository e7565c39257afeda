// The decode executor against the double reference: f32 over several layouts, GQA, nq = 1..64
// and key parts; bitwise determinism over thread counts; bf16 and int8 K/V against the
// reference on the values they hold (kernel exactness) and on the float32 originals (bounded
// rounding error); errors.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "spattn/attention/decode.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

using namespace spattn;

namespace {

Layout make_layout(const std::string& spec, std::int64_t nq, std::int64_t nk, int heads,
                   int bq = 64, int bk = 64) {
  return build_layout(*parse_spec(spec), Geometry{nq, nk, heads, bq, bk});
}

struct Inputs {
  Tensor q, k, v;
};

Inputs inputs(std::int64_t hq, std::int64_t hkv, std::int64_t nq, std::int64_t nk, std::int64_t d,
              std::uint64_t seed = 7) {
  return {test::random_tensor(1, hq, nq, d, seed, 0), test::random_tensor(1, hkv, nk, d, seed, 1),
          test::random_tensor(1, hkv, nk, d, seed, 2)};
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.values.size() == b.values.size() &&
         std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("decode f32 equals the reference on several layouts", "[decode]") {
  const char* specs[] = {"dense", "causal", "sliding(300)", "streaming(4, 200)",
                         "strided(7) | sliding(64)"};
  for (const char* spec : specs)
    for (std::int64_t nq : {1, 5, 64})
      for (int bq : {16, 64}) {
        CAPTURE(spec, nq, bq);
        const std::int64_t nk = 2500, d = 64;
        const Inputs in = inputs(4, 2, nq, nk, d);
        const Layout layout = make_layout(spec, nq, nk, 1, bq, 64);
        DecodeOptions opt;
        opt.part_keys = 512;  // 5 parts
        const DecodeResult r =
            decode_attention(in.q.view(), kv_view(in.k.view()), kv_view(in.v.view()), layout, opt);
        CHECK(r.stats.parts == 5);
        const ReferenceResult ref =
            reference_attention(in.q.view(), in.k.view(), in.v.view(), layout);
        const ReferenceError err = compare_to_reference(r.o.view(), r.lse.view(), ref);
        CHECK(err.finite);
        CHECK(err.max_rel < 1e-5);
        CHECK(err.lse_max < 1e-5);
      }
}

TEST_CASE("decode: rows with no key give zeros and -inf, odd sizes work", "[decode]") {
  // causal with nq > nk: the first queries have negative positions and see nothing.
  const std::int64_t nq = 40, nk = 30, d = 20;
  const Inputs in = inputs(2, 1, nq, nk, d);
  const Layout layout = make_layout("causal", nq, nk, 1, 16, 16);
  DecodeOptions opt;
  opt.part_keys = 16;
  const DecodeResult r =
      decode_attention(in.q.view(), kv_view(in.k.view()), kv_view(in.v.view()), layout, opt);
  const ReferenceResult ref = reference_attention(in.q.view(), in.k.view(), in.v.view(), layout);
  const ReferenceError err = compare_to_reference(r.o.view(), r.lse.view(), ref);
  CHECK(err.finite);
  CHECK(err.max_rel < 1e-5);
  CHECK(err.lse_max < 1e-5);
  CHECK(std::isinf(r.lse.values[0]));
  CHECK(r.o.values[0] == 0.0f);
}

TEST_CASE("decode output is bitwise the same on 1, 2, 3 and 8 threads", "[decode]") {
  for (KVDtype t : {KVDtype::F32, KVDtype::BF16, KVDtype::Int8}) {
    CAPTURE(kv_dtype_name(t));
    const Inputs in = inputs(2, 2, 3, 5000, 64);
    const KVTensor k = quantize_kv(in.k.view(), t), v = quantize_kv(in.v.view(), t);
    const Layout layout = make_layout("sliding(3000) | sink(4)", 3, 5000, 1);
    DecodeOptions opt;
    opt.threads = 1;
    const DecodeResult one = decode_attention(in.q.view(), k.view(), v.view(), layout, opt);
    CHECK(one.stats.parts == 5);
    for (int threads : {2, 3, 8}) {
      opt.threads = threads;
      const DecodeResult r = decode_attention(in.q.view(), k.view(), v.view(), layout, opt);
      CHECK(bitwise_equal(one.o, r.o));
      CHECK(bitwise_equal(one.lse, r.lse));
    }
  }
}

TEST_CASE("bfloat16 rounding is to nearest even", "[decode][kv-dtype]") {
  CHECK(float_to_bf16(1.0f) == 0x3f80);
  CHECK(bf16_to_float(0x3f80) == 1.0f);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties to the even (1.0).
  CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6: ties to 1 + 2^-6.
  CHECK(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);
  CHECK(float_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -16)) == 0x3f81);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST_CASE("int8 K/V: per-token scale max|x|/127, values within half a step", "[decode][kv-dtype]") {
  const Tensor k = test::random_tensor(1, 2, 50, 24, 3, 1);
  const KVTensor q8 = quantize_kv(k.view(), KVDtype::Int8);
  const KVView v = q8.view();
  for (std::int64_t h = 0; h < 2; ++h)
    for (std::int64_t n = 0; n < 50; ++n) {
      float amax = 0;
      for (std::int64_t x = 0; x < 24; ++x)
        amax = std::max(amax, std::abs(k.view().at(0, h, n, x)));
      REQUIRE(v.scale(0, h, n) == amax / 127.0f);
      for (std::int64_t x = 0; x < 24; ++x)
        CHECK(std::abs(v.value(0, h, n, x) - k.view().at(0, h, n, x)) <=
              0.5f * v.scale(0, h, n) * 1.0001f);
    }
  CHECK(q8.bytes() == 2 * 50 * (24 + 4));
}

TEST_CASE("bf16 and int8 decode: exact on the stored values, bounded against float32",
          "[decode][kv-dtype]") {
  // Tolerances: against the values stored, float32 accumulation (the bf16 dot products on
  // AVX512_BF16 round the query to 16 mantissa bits: ~1e-5 relative in the logits); against
  // the float32 originals, the storage rounding (bf16: 2^-9 relative per element; int8: half
  // of max|x| / 127 per element).
  struct Case {
    KVDtype t;
    double exact, vs_f32;
  };
  for (const Case c : {Case{KVDtype::BF16, 2e-4, 2e-2}, Case{KVDtype::Int8, 2e-5, 4e-2}})
    for (bool portable : {false, true})
      for (std::int64_t d : {64, 40}) {
        CAPTURE(kv_dtype_name(c.t), portable, d);
        const std::int64_t nq = 4, nk = 3000;
        const Inputs in = inputs(4, 4, nq, nk, d);
        const KVTensor k = quantize_kv(in.k.view(), c.t), v = quantize_kv(in.v.view(), c.t);
        const Layout layout = make_layout("causal", nq, nk, 1);
        DecodeOptions opt;
        opt.portable_kernels = portable;
        const DecodeResult r = decode_attention(in.q.view(), k.view(), v.view(), layout, opt);
        const Tensor kd = dequantize_kv(k.view()), vd = dequantize_kv(v.view());
        const ReferenceError stored =
            compare_to_reference(r.o.view(), r.lse.view(),
                                 reference_attention(in.q.view(), kd.view(), vd.view(), layout));
        CHECK(stored.finite);
        CHECK(stored.max_rel < c.exact);
        CHECK(stored.lse_max < c.exact);
        const ReferenceError orig = compare_to_reference(
            r.o.view(), r.lse.view(),
            reference_attention(in.q.view(), in.k.view(), in.v.view(), layout));
        CHECK(orig.max_rel < c.vs_f32);
        CHECK(orig.lse_max < c.vs_f32);
      }
}

TEST_CASE("decode refuses bad shapes, dtypes and query counts", "[decode]") {
  const Inputs in = inputs(2, 2, 65, 100, 16);
  const Layout big = make_layout("causal", 65, 100, 1);
  CHECK_THROWS_WITH(decode_attention(in.q.view(), kv_view(in.k.view()), kv_view(in.v.view()), big),
                    Catch::Contains("65 queries") && Catch::Contains("1..64"));
  const Inputs ok = inputs(2, 2, 4, 100, 16);
  const Layout wrong = make_layout("causal", 4, 99, 1);
  CHECK_THROWS_AS(decode_attention(ok.q.view(), kv_view(ok.k.view()), kv_view(ok.v.view()), wrong),
                  UsageError);
  CHECK_THROWS_WITH(parse_kv_dtype("fp8"), Catch::Contains("'fp8'") && Catch::Contains("bf16"));
  CHECK(parse_kv_dtype("int8") == KVDtype::Int8);
  KVView noscale = quantize_kv(ok.k.view(), KVDtype::Int8).view();
  noscale.scales = nullptr;
  const Layout layout = make_layout("causal", 4, 100, 1);
  CHECK_THROWS_WITH(decode_attention(ok.q.view(), noscale, kv_view(ok.v.view()), layout),
                    Catch::Contains("scales"));
}
