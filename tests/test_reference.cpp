// The reference executor against hand-computed cases, and the textbook baseline against the
// reference.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "attention_testing.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using spattn::ConstTensorView;
using spattn::Geometry;
using spattn::ReferenceOptions;
using spattn::ReferenceResult;
using spattn::Tensor;
using spattn::test::random_tensor;

constexpr double kInf = std::numeric_limits<double>::infinity();

// A [1, 1, n, d] tensor holding `values` in C order.
Tensor tensor_1h(std::int64_t n, std::int64_t d, const std::vector<float>& values) {
  Tensor t(1, 1, n, d);
  REQUIRE(values.size() == t.values.size());
  t.values = values;
  return t;
}

bool always(int, std::int64_t, std::int64_t) {
  return true;
}

spattn::Layout layout_of(const std::string& spec, std::int64_t nq, std::int64_t nk, int heads,
                         int block = 16) {
  Geometry g;
  g.nq = nq;
  g.nk = nk;
  g.heads = heads;
  g.block_q = block;
  g.block_k = block;
  return spattn::build_layout(*spattn::parse_spec(spec), g);
}

}  // namespace

TEST_CASE("reference: 2 queries x 3 keys, d = 1, by hand", "[reference]") {
  // k = (0, ln 2, ln 3), v = (6, 12, 18), scale 1.
  // Query 0 (q = 1): logits (0, ln 2, ln 3), exp = (1, 2, 3), sum 6:
  //   weights (1/6, 2/6, 3/6), o = 6/6 + 24/6 + 54/6 = 14, LSE = ln 6.
  // Query 1 (q = 0): logits all 0, weights 1/3 each, o = (6 + 12 + 18) / 3 = 12, LSE = ln 3.
  const Tensor q = tensor_1h(2, 1, {1.0f, 0.0f});
  const Tensor k = tensor_1h(3, 1, {0.0f, std::log(2.0f), std::log(3.0f)});
  const Tensor v = tensor_1h(3, 1, {6.0f, 12.0f, 18.0f});
  ReferenceOptions opt;
  opt.scale = 1.0;
  SECTION("dense") {
    const ReferenceResult r =
        spattn::reference_attention(q.view(), k.view(), v.view(), always, opt);
    REQUIRE(r.shape == std::array<std::int64_t, 4>{1, 1, 2, 1});
    CHECK(r.o_at(0, 0, 0, 0) == Approx(14.0).epsilon(1e-6));
    CHECK(r.lse_at(0, 0, 0) == Approx(std::log(6.0)).epsilon(1e-6));
    CHECK(r.o_at(0, 0, 1, 0) == Approx(12.0).epsilon(1e-12));
    CHECK(r.lse_at(0, 0, 1) == Approx(std::log(3.0)).epsilon(1e-12));
  }
  SECTION("causal, nq < nk: query i sits at position i + 1") {
    // Query 0 (position 1) sees keys 0 and 1: exp (1, 2), weights (1/3, 2/3),
    //   o = 6/3 + 24/3 = 10, LSE = ln 3. Query 1 (position 2) sees all: o = 12, LSE = ln 3.
    const auto layout = layout_of("causal", 2, 3, 1);
    const ReferenceResult r =
        spattn::reference_attention(q.view(), k.view(), v.view(), layout, opt);
    CHECK(r.o_at(0, 0, 0, 0) == Approx(10.0).epsilon(1e-6));
    CHECK(r.lse_at(0, 0, 0) == Approx(std::log(3.0)).epsilon(1e-6));
    CHECK(r.o_at(0, 0, 1, 0) == Approx(12.0).epsilon(1e-12));
  }
}

TEST_CASE("reference: d = 2 with the default scale 1/sqrt(2), by hand", "[reference]") {
  // q0 = (sqrt 2, 0); k0 = (0, 0), k1 = (ln 3, 5): logits q.k / sqrt 2 = (0, ln 3),
  // exp (1, 3), weights (1/4, 3/4). v0 = (4, 0), v1 = (0, 8): o = (1, 6), LSE = ln 4.
  // q1 = (0, 0): weights (1/2, 1/2), o = (2, 4), LSE = ln 2.
  const Tensor q = tensor_1h(2, 2, {std::sqrt(2.0f), 0.0f, 0.0f, 0.0f});
  const Tensor k = tensor_1h(2, 2, {0.0f, 0.0f, std::log(3.0f), 5.0f});
  const Tensor v = tensor_1h(2, 2, {4.0f, 0.0f, 0.0f, 8.0f});
  const ReferenceResult r = spattn::reference_attention(q.view(), k.view(), v.view(), always);
  CHECK(r.o_at(0, 0, 0, 0) == Approx(1.0).epsilon(1e-6));
  CHECK(r.o_at(0, 0, 0, 1) == Approx(6.0).epsilon(1e-6));
  CHECK(r.lse_at(0, 0, 0) == Approx(std::log(4.0)).epsilon(1e-6));
  CHECK(r.o_at(0, 0, 1, 0) == Approx(2.0).epsilon(1e-12));
  CHECK(r.o_at(0, 0, 1, 1) == Approx(4.0).epsilon(1e-12));
  CHECK(r.lse_at(0, 0, 1) == Approx(std::log(2.0)).epsilon(1e-12));
}

TEST_CASE("reference: masked rows, one key, huge logits", "[reference]") {
  const Tensor q = tensor_1h(3, 1, {100.0f, -100.0f, 1.0f});
  const Tensor k = tensor_1h(3, 1, {100.0f, -100.0f, 2.0f});
  const Tensor v = tensor_1h(3, 1, {7.0f, -3.0f, 5.0f});
  ReferenceOptions opt;
  opt.scale = 1.0;
  SECTION("a fully masked row gives zeros and LSE -inf, never NaN") {
    const auto r = spattn::reference_attention(
        q.view(), k.view(), v.view(), [](int, std::int64_t i, std::int64_t) { return i != 1; },
        opt);
    CHECK(r.o_at(0, 0, 1, 0) == 0.0);
    CHECK(r.lse_at(0, 0, 1) == -kInf);
    CHECK(std::isfinite(r.o_at(0, 0, 0, 0)));
  }
  SECTION("one allowed key: o is that key's value, LSE its logit") {
    // Query 2 sees only key 2: logit 1 * 2 = 2, o = v2 = 5.
    const auto r = spattn::reference_attention(
        q.view(), k.view(), v.view(), [](int, std::int64_t, std::int64_t j) { return j == 2; },
        opt);
    CHECK(r.o_at(0, 0, 2, 0) == 5.0);
    CHECK(r.lse_at(0, 0, 2) == 2.0);
  }
  SECTION("logits of 1e4 stay finite") {
    // Query 0: logits (1e4, -1e4, 200): key 0 takes all the weight (exp(200 - 1e4) underflows
    // to 0), o = 7, LSE = 1e4. Query 1: logits (-1e4, 1e4, -200): o = -3, LSE = 1e4.
    const auto r = spattn::reference_attention(q.view(), k.view(), v.view(), always, opt);
    CHECK(r.o_at(0, 0, 0, 0) == 7.0);
    CHECK(r.lse_at(0, 0, 0) == 1e4);
    CHECK(r.o_at(0, 0, 1, 0) == -3.0);
    CHECK(r.lse_at(0, 0, 1) == 1e4);
  }
}

TEST_CASE("reference: GQA maps query head h to K/V head h / (Hq / Hkv)", "[reference]") {
  // Hq = 6, Hkv = 3 (2 query heads per group). K/V head g has every value equal to g + 1, so
  // every output of query head h is h / 2 + 1 whatever the weights.
  const std::int64_t n = 5, d = 3;
  const Tensor q = random_tensor(2, 6, n, d, 1, 0);
  const Tensor k = random_tensor(2, 3, n, d, 1, 1);
  Tensor v(2, 3, n, d);
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t g = 0; g < 3; ++g)
      for (std::int64_t j = 0; j < n; ++j)
        for (std::int64_t x = 0; x < d; ++x) v.view().at(b, g, j, x) = static_cast<float>(g + 1);
  const auto r = spattn::reference_attention(q.view(), k.view(), v.view(), always);
  for (std::int64_t b = 0; b < 2; ++b)
    for (std::int64_t h = 0; h < 6; ++h)
      for (std::int64_t i = 0; i < n; ++i)
        CHECK(r.o_at(b, h, i, 1) == Approx(static_cast<double>(h / 2 + 1)).epsilon(1e-12));
}

TEST_CASE("reference: strided [B, N, H, d] views give the same result as contiguous copies",
          "[reference]") {
  const std::int64_t B = 2, H = 3, N = 7, d = 4;
  // Buffers in [B, N, H, d] order, viewed as [B, H, N, d] without a copy.
  const Tensor qb = random_tensor(B, N, H, d, 5, 0), kb = random_tensor(B, N, H, d, 5, 1),
               vb = random_tensor(B, N, H, d, 5, 2);
  auto strided = [&](const Tensor& t) { return spattn::view_bnhd(t.values.data(), B, N, H, d); };
  auto contiguous = [&](const Tensor& t) {
    Tensor c(B, H, N, d);
    const ConstTensorView s = strided(t);
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t n = 0; n < N; ++n)
          for (std::int64_t x = 0; x < d; ++x) c.view().at(b, h, n, x) = s.at(b, h, n, x);
    return c;
  };
  const Tensor qc = contiguous(qb), kc = contiguous(kb), vc = contiguous(vb);
  const auto mask = [](int h, std::int64_t i, std::int64_t j) { return j <= i + h; };
  const auto a = spattn::reference_attention(strided(qb), strided(kb), strided(vb), mask);
  const auto c = spattn::reference_attention(qc.view(), kc.view(), vc.view(), mask);
  CHECK(a.o == c.o);
  CHECK(a.lse == c.lse);
}

TEST_CASE("reference: refuses work over its memory budget with the estimate", "[reference]") {
  const Tensor q = random_tensor(1, 2, 100, 8, 1, 0), k = random_tensor(1, 2, 200, 8, 1, 1);
  // Estimate: the 100 x 200 double score matrix (160000 bytes) plus the outputs, 1 x 2 x 100 x 9
  // doubles (14400 bytes): 174400 bytes.
  spattn::AttentionShape s;
  s.batch = 1, s.q_heads = 2, s.kv_heads = 2, s.nq = 100, s.nk = 200, s.dim = 8;
  CHECK(spattn::reference_memory_bytes(s) == 174400);
  ReferenceOptions opt;
  opt.max_bytes = 174399;
  try {
    spattn::reference_attention(q.view(), k.view(), k.view(), always, opt);
    FAIL("no BudgetError");
  } catch (const spattn::BudgetError& e) {
    const std::string msg = e.what();
    CHECK(msg.find(spattn::format_bytes(174400)) != std::string::npos);
    CHECK(msg.find(spattn::format_bytes(174399)) != std::string::npos);
  }
  opt.max_bytes = 174400;
  CHECK_NOTHROW(spattn::reference_attention(q.view(), k.view(), k.view(), always, opt));
}

TEST_CASE("reference: predicate, layout and pattern masks agree", "[reference]") {
  // The same mask three ways must give bitwise equal results (the arithmetic is identical).
  const std::int64_t nq = 40, nk = 53, d = 5;
  const int heads = 2;
  const Tensor q = random_tensor(1, heads, nq, d, 9, 0), k = random_tensor(1, heads, nk, d, 9, 1),
               v = random_tensor(1, heads, nk, d, 9, 2);
  for (const std::string spec : {"sliding(5) | sink(2)", "heads(0: causal; 1: window(3, 1))"}) {
    INFO(spec);
    const auto pattern = spattn::parse_spec(spec);
    const auto layout = layout_of(spec, nq, nk, heads);
    const Geometry& g = layout.geometry;
    // The predicate restates the rules by hand: p(i) = i + 13.
    const auto predicate = [&](int h, std::int64_t i, std::int64_t j) {
      const std::int64_t p = i + (nk - nq);
      if (spec[0] == 's') return (p - 5 < j && j <= p) || j < 2;
      return h == 0 ? j <= p : (p - 3 <= j && j <= p + 1);
    };
    const auto a = spattn::reference_attention(q.view(), k.view(), v.view(), predicate);
    const auto b = spattn::reference_attention(q.view(), k.view(), v.view(), layout);
    const auto c = spattn::reference_attention(q.view(), k.view(), v.view(), *pattern, g);
    CHECK(a.o == b.o);
    CHECK(a.lse == b.lse);
    CHECK(a.o == c.o);
    CHECK(a.lse == c.lse);
  }
}

TEST_CASE("reference: bad inputs are refused", "[reference]") {
  const Tensor q = random_tensor(1, 2, 4, 3, 1, 0), k = random_tensor(1, 2, 4, 3, 1, 1);
  const auto layout = layout_of("causal", 5, 4, 1);
  CHECK_THROWS_AS(spattn::reference_attention(q.view(), k.view(), k.view(), layout),
                  spattn::UsageError);
  Geometry g;
  g.nq = 4, g.nk = 4, g.heads = 3;
  CHECK_THROWS_AS(
      spattn::reference_attention(q.view(), k.view(), k.view(), *spattn::parse_spec("causal"), g),
      spattn::UsageError);
}

TEST_CASE("textbook: matches the reference", "[reference][textbook]") {
  struct Case {
    std::string spec;
    std::int64_t batch, hq, hkv, nq, nk, d;
    int block;
    int layout_heads;
  };
  const Case cases[] = {
      {"dense", 1, 2, 2, 33, 33, 16, 16, 1},
      {"causal", 2, 4, 2, 70, 100, 64, 32, 1},
      {"sliding(9) | sink(3)", 1, 3, 1, 129, 129, 7, 64, 3},
      {"heads(0: window(4); 1: causal - sliding(5))", 2, 2, 1, 50, 61, 80, 16, 2},
      {"causal - causal", 1, 1, 1, 20, 20, 8, 16, 1},  // every row fully masked
  };
  for (const Case& c : cases) {
    INFO(c.spec << " nq " << c.nq << " nk " << c.nk << " d " << c.d);
    const Tensor q = random_tensor(c.batch, c.hq, c.nq, c.d, 3, 0),
                 k = random_tensor(c.batch, c.hkv, c.nk, c.d, 3, 1),
                 v = random_tensor(c.batch, c.hkv, c.nk, c.d, 3, 2);
    const auto layout = layout_of(c.spec, c.nq, c.nk, c.layout_heads, c.block);
    for (int threads : {1, 2}) {
      spattn::TextbookOptions opt;
      opt.threads = threads;
      const auto t = spattn::textbook_attention(q.view(), k.view(), v.view(), layout, opt);
      const auto ref = spattn::reference_attention(q.view(), k.view(), v.view(),
                                                   *spattn::parse_spec(c.spec), layout.geometry);
      const auto e = spattn::compare_to_reference(t.o.view(), t.lse.view(), ref);
      CHECK(e.finite);
      CHECK(e.max_rel <= 1e-5);
      CHECK(e.lse_max <= 1e-5);
      CHECK(t.stats.workspace_bytes ==
            spattn::textbook_workspace_bytes(c.nq, c.nk, c.d,
                                             std::min<std::int64_t>(threads, c.batch * c.hq)));
    }
  }
}

TEST_CASE("textbook: refuses work over its memory budget", "[reference][textbook]") {
  const Tensor q = random_tensor(1, 1, 64, 8, 1, 0);
  const auto layout = layout_of("causal", 64, 64, 1);
  spattn::TextbookOptions opt;
  opt.threads = 1;
  // One task: S 64 x 64 + Q, O 64 x 8 + K, V 64 x 8 floats = (4096 + 2048) * 4 = 24576 bytes,
  // plus outputs 64 x 9 floats = 2304 bytes.
  CHECK(spattn::textbook_workspace_bytes(64, 64, 8, 1) == 24576);
  opt.max_bytes = 24576 + 2304 - 1;
  CHECK_THROWS_AS(spattn::textbook_attention(q.view(), q.view(), q.view(), layout, opt),
                  spattn::BudgetError);
  opt.max_bytes = 24576 + 2304;
  CHECK_NOTHROW(spattn::textbook_attention(q.view(), q.view(), q.view(), layout, opt));
}

TEST_CASE("reference: compare_to_reference measures what it states", "[reference]") {
  // Head (0, 0) holds ref values up to 2; an error of 1e-3 on one element gives a normwise
  // relative error of 1e-3 / 2 = 5e-4.
  ReferenceResult ref;
  ref.shape = {1, 2, 2, 1};
  ref.o = {2.0, -1.0, 0.0, 0.0};
  ref.lse = {0.5, 3.0, -kInf, -kInf};
  Tensor o(1, 2, 2, 1), lse(1, 2, 2, 1);
  o.values = {2.0f, -1.001f, 0.0f, 0.0f};
  lse.values = {0.5f, 3.0f, -std::numeric_limits<float>::infinity(),
                -std::numeric_limits<float>::infinity()};
  auto e = spattn::compare_to_reference(o.view(), lse.view(), ref);
  CHECK(e.max_abs == Approx(1e-3).epsilon(1e-4));
  CHECK(e.max_rel == Approx(5e-4).epsilon(1e-4));
  CHECK(e.lse_max == 0.0);
  CHECK(e.finite);
  // A finite LSE where the reference has -inf (a masked row) is an infinite error.
  lse.values[3] = 0.0f;
  e = spattn::compare_to_reference(o.view(), lse.view(), ref);
  CHECK(e.lse_max == kInf);
  // An all-zero reference head compares at an absolute scale: 1e-20 away is 1e10 relative.
  lse.values[3] = -std::numeric_limits<float>::infinity();
  o.values[2] = 1e-20f;
  e = spattn::compare_to_reference(o.view(), lse.view(), ref);
  CHECK(e.max_rel > 1e9);
  o.values[2] = std::numeric_limits<float>::quiet_NaN();
  e = spattn::compare_to_reference(o.view(), lse.view(), ref);
  CHECK_FALSE(e.finite);
  CHECK(e.max_rel == kInf);
}
