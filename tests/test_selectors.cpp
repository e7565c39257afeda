// Selectors (content-based sparsity): parsing and composition, the error without inputs, every
// selector's layout against its brute-force rule (reference_selection) on planted inputs with
// GQA, nq < nk, batch > 1 and sizes that are not multiples of the blocks, and the executor on
// the selected layouts against the dense reference.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "spattn/attention/per_batch.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/select/planted.hpp"
#include "spattn/attention/select/reference.hpp"
#include "spattn/attention/select/select.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/selector.hpp"
#include "spattn/patterns/spec.hpp"

using namespace spattn;
using Catch::Matchers::Contains;

namespace {

struct Case {
  AttentionShape s;
  Geometry g;
  PlantedInputs in;
};

Case make_case(std::int64_t batch, int hq, int hkv, std::int64_t nq, std::int64_t nk,
               std::uint64_t seed, std::vector<std::int64_t> offsets = {0, 7, 160, 170}) {
  Case c;
  c.s = AttentionShape{batch, hq, hkv, nq, nk, 16};
  c.g.nq = nq;
  c.g.nk = nk;
  c.g.heads = hq;
  c.g.block_q = 32;
  c.g.block_k = 16;
  PlantedSpec ps;
  ps.columns = {3, 41, nk / 2};
  ps.offsets = std::move(offsets);
  ps.needles = spread_needles(c.s, 4);
  ps.topic = 50;
  ps.beta = 3;
  c.in = planted_inputs(c.s, ps, seed);
  return c;
}

const Selector& selector_of(const PatternPtr& p) {
  const auto* s = dynamic_cast<const Selector*>(p.get());
  REQUIRE(s != nullptr);
  return *s;
}

// Every pair of every (batch, head): the selected layout equals `rule`'s mask.
template <class Rule>
void check_layouts(const Case& c, const PatternPtr& p, Rule rule) {
  const SelectedLayouts sel = select_layouts(p, c.in.q.view(), c.in.k.view(), c.g);
  REQUIRE(static_cast<std::int64_t>(sel.layouts.size()) == c.s.batch);
  for (std::int64_t b = 0; b < c.s.batch; ++b)
    for (int h = 0; h < c.g.heads; ++h) {
      const std::vector<std::uint8_t> want = rule(b, h);
      std::int64_t bad = 0, kept = 0;
      for (std::int64_t i = 0; i < c.g.nq; ++i)
        for (std::int64_t j = 0; j < c.g.nk; ++j) {
          const bool got = sel.layouts[b].head(h).allows(i, j);
          bad += got != (want[i * c.g.nk + j] != 0);
          kept += got;
        }
      INFO(p->spec() << " batch " << b << " head " << h);
      CHECK(bad == 0);
      CHECK(kept > 0);
    }
}

const std::vector<std::string> kSelectorSpecs = {
    "oracle_topk(20)",
    "oracle_topk(3, block=16)",
    "oracle_topk(25, causal=0)",
    "oracle_topp(0.8)",
    "oracle_topp(0.7, block=16)",
    "vertical_slash(40, 60)",
    "vertical_slash(40, 60, last_q=20, mode=pit64)",
    "vertical_slash(30, 120, mode=pit64)",
    "vertical_slash(30, 102, mode=pit64)",
    "block_topk(16, 3)",
    "block_topk(block=24, k=2)",
    "moba(24, 3)",
    "moba(50, 1)",
    "quest(48)",
    "quest(40, page=8)",
    "xattention(0.8, stride=4, block=16)",
    "nsa_select(l=8, stride=4, block=16, n=3, window=20)",
    "nsa_select(l=16, stride=8, block=16, n=2, window=1)",
    "flexprefill(block=16, min_budget=16)",
    "flexprefill(0.7, 0.9, block=16, min_budget=32)",
    "flexprefill(0.95, 0.001, block=32, min_budget=16)",
    "xattention(0.95, stride=8, block=32)",
    "xattention(0.5, stride=2, block=16)",
};

}  // namespace

TEST_CASE("selectors parse, print canonically and compose", "[selectors]") {
  for (const char* spec :
       {"vertical_slash(1000, 6096) | sink(4)", "moba(512, 4) & sliding(8192)", "oracle_topp(0.9)",
        "oracle_topk(64, causal=0)", "vertical_slash(100, 200, mode=pit64)", "quest(1024)",
        "quest(1024, page=32)", "block_topk", "block_topk(k=8)",
        "heads(0..1: vertical_slash(30, 50); 2..3: causal)"}) {
    const PatternPtr p = parse_spec(spec);
    CHECK(p->spec() == spec);
    CHECK(parse_spec(p->spec())->spec() == p->spec());
    CHECK(p->needs_inputs());
  }
  CHECK(parse_spec("vertical_slash(100, 200, mode=\"exact\")")->spec() ==
        "vertical_slash(100, 200)");
  CHECK(parse_spec("oracle_topp(p=1)")->spec() == "oracle_topp(1.0)");
  CHECK_FALSE(parse_spec("sliding(8) | sink(4)")->needs_inputs());
  CHECK_THROWS_WITH(parse_spec("oracle_topp(0)"), Contains("out of range"));
  CHECK_THROWS_WITH(parse_spec("oracle_topp(1.5)"), Contains("out of range"));
  CHECK_THROWS_WITH(parse_spec("oracle_topk(0)"), Contains("out of range"));
  CHECK_THROWS_WITH(parse_spec("vertical_slash(1, 2, mode=fast)"), Contains("exact, pit64"));
  CHECK_THROWS_WITH(parse_spec("quest(8)"), Contains("budget 8 is smaller than page 16"));
  CHECK_THROWS_AS(parse_spec("oracle_topp(0.9.1)"), SpecError);
  // Head ranges still lex as before.
  CHECK(parse_spec("heads(0..3: causal)")->spec() == "heads(0..3: causal)");
}

TEST_CASE("a selector has no layout without inputs", "[selectors]") {
  Geometry g;
  g.nq = g.nk = 128;
  g.heads = 2;
  for (const char* spec : {"vertical_slash(30, 50)", "moba(16, 2) & sliding(64)",
                           "heads(0: causal; 1: quest(32))", "causal - oracle_topk(4)"}) {
    INFO(spec);
    CHECK_THROWS_WITH(build_layout(*parse_spec(spec), g), Contains("--inputs"));
  }
}

TEST_CASE("every selector equals its brute-force rule", "[selectors]") {
  // Square with GQA and batch 2; nq < nk (chunked prefill / decode-like); one query.
  std::vector<Case> cases;
  cases.push_back(make_case(2, 4, 2, 203, 203, 11));
  cases.push_back(make_case(1, 2, 1, 37, 301, 12));
  cases.push_back(make_case(1, 2, 2, 1, 150, 13));
  // Two close slashes far from the forced band (offsets 190 and 200, then 99..0): pit64 merges
  // the first two into one range grown by 64, then starts a new range (the kernel's walk).
  cases.push_back(make_case(1, 2, 1, 330, 330, 14, {190, 200}));
  for (const Case& c : cases)
    for (const std::string& spec : kSelectorSpecs) {
      const PatternPtr p = parse_spec(spec);
      const Selector& s = selector_of(p);
      check_layouts(c, p, [&](std::int64_t b, int h) {
        return reference_selection(s, c.in.q.view(), c.in.k.view(), b, h, c.g);
      });
    }
}

TEST_CASE("selectors compose with static patterns and per head", "[selectors]") {
  const Case c = make_case(2, 4, 2, 150, 181, 21);
  auto rule_of = [&](const std::string& spec) {
    return [&c, p = parse_spec(spec)](std::int64_t b, int h) {
      return reference_selection(selector_of(p), c.in.q.view(), c.in.k.view(), b, h, c.g);
    };
  };
  const auto vs = rule_of("vertical_slash(30, 50)");
  const auto moba = rule_of("moba(16, 2)");
  const PatternPtr sink = parse_spec("sink(4)"), sliding = parse_spec("sliding(40)");
  check_layouts(c, parse_spec("vertical_slash(30, 50) | sink(4)"), [&](std::int64_t b, int h) {
    auto m = vs(b, h);
    for (std::int64_t i = 0; i < c.g.nq; ++i)
      for (std::int64_t j = 0; j < c.g.nk; ++j) m[i * c.g.nk + j] |= sink->allows(c.g, h, i, j);
    return m;
  });
  check_layouts(c, parse_spec("moba(16, 2) & sliding(40)"), [&](std::int64_t b, int h) {
    auto m = moba(b, h);
    for (std::int64_t i = 0; i < c.g.nq; ++i)
      for (std::int64_t j = 0; j < c.g.nk; ++j)
        m[i * c.g.nk + j] &= sliding->allows(c.g, h, i, j) ? 1 : 0;
    return m;
  });
  check_layouts(c, parse_spec("heads(0, 3: moba(16, 2); 1..2: vertical_slash(30, 50))"),
                [&](std::int64_t b, int h) { return h == 0 || h == 3 ? moba(b, h) : vs(b, h); });
}

TEST_CASE("the executor on selected layouts matches the reference", "[selectors]") {
  const Case c = make_case(2, 4, 2, 130, 170, 31);
  for (const char* spec : {"vertical_slash(30, 60, mode=pit64) | sink(4)", "moba(32, 2)",
                           "oracle_topk(12, block=16)", "quest(48, page=8)"}) {
    INFO(spec);
    const PatternPtr p = parse_spec(spec);
    const SelectedLayouts sel = select_layouts(p, c.in.q.view(), c.in.k.view(), c.g);
    Tensor o(c.s.batch, c.s.q_heads, c.s.nq, c.s.dim), lse(c.s.batch, c.s.q_heads, c.s.nq, 1);
    attention_per_batch(c.in.q.view(), c.in.k.view(), c.in.v.view(), sel.layouts, o.view(),
                        lse.view());
    for (std::int64_t b = 0; b < c.s.batch; ++b) {
      // The brute-force mask of the resolved pattern (its ground truth, not the layout).
      const PatternPtr& r = sel.patterns[b];
      const ReferenceResult ref = reference_attention(
          batch_slice(c.in.q.view(), b), batch_slice(c.in.k.view(), b),
          batch_slice(c.in.v.view(), b),
          [&](int h, std::int64_t i, std::int64_t j) { return r->allows(c.g, h, i, j); });
      const ReferenceError e =
          compare_to_reference(batch_slice(ConstTensorView(o.view()), b),
                               batch_slice(ConstTensorView(lse.view()), b), ref);
      CHECK(e.finite);
      CHECK(e.max_rel < 1e-4);
      CHECK(e.lse_max < 1e-4);
    }
    CHECK(sel.cost.flops > 0);
  }
}

TEST_CASE("selection refuses NaN and Inf and clips large budgets", "[selectors]") {
  Case c = make_case(1, 2, 1, 64, 64, 41);
  const PatternPtr p = parse_spec("oracle_topk(4)");
  c.in.k.values[5 * 16 + 3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(select_layouts(p, c.in.q.view(), c.in.k.view(), c.g), Contains("finite"));
  c.in.k.values[5 * 16 + 3] = 0;
  c.in.q.values[7] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_AS(select_layouts(p, c.in.q.view(), c.in.k.view(), c.g), UsageError);
  c.in.q.values[7] = 0;
  // k beyond the keys keeps every candidate: oracle_topk(10^6) is causal, causal=0 is dense.
  const SelectedLayouts all =
      select_layouts(parse_spec("oracle_topk(1000000)"), c.in.q.view(), c.in.k.view(), c.g);
  CHECK(all.layouts[0].counts().allowed_pairs == 2 * 64 * 65 / 2);
  const SelectedLayouts dense = select_layouts(parse_spec("oracle_topk(1000000, causal=0)"),
                                               c.in.q.view(), c.in.k.view(), c.g);
  CHECK(dense.layouts[0].counts().allowed_pairs == 2 * 64 * 64);
}

TEST_CASE("planted structure is found", "[selectors]") {
  // A vertical line and a slash planted strongly: vertical_slash keeps them for every query.
  AttentionShape s{1, 2, 2, 300, 300, 32};
  PlantedSpec ps;
  ps.columns = {150};
  ps.offsets = {200};
  ps.beta = 6;
  PlantedInputs in = planted_inputs(s, ps, 5);
  Geometry g;
  g.nq = g.nk = 300;
  g.heads = 2;
  const SelectedLayouts sel =
      select_layouts(parse_spec("vertical_slash(31, 101)"), in.q.view(), in.k.view(), g);
  for (int h = 0; h < 2; ++h) {
    for (std::int64_t i = 150; i < 300; ++i) CHECK(sel.layouts[0].head(h).allows(i, 150));
    for (std::int64_t i = 200; i < 300; ++i) CHECK(sel.layouts[0].head(h).allows(i, i - 200));
  }
}

TEST_CASE("selection reads strided views ([B, N, H, d] memory) as it reads dense ones",
          "[selectors]") {
  // The same Q and K stored token-major: rows of one head are h * d floats apart, so the
  // selectors copy them instead of reading in place; the layouts must be identical.
  const Case c = make_case(2, 4, 2, 70, 90, 43);
  auto token_major = [](const spattn::Tensor& t, std::vector<float>& buf) {
    const std::int64_t B = t.shape[0], H = t.shape[1], N = t.shape[2], d = t.shape[3];
    buf.resize(t.values.size());
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (std::int64_t n = 0; n < N; ++n)
          for (std::int64_t x = 0; x < d; ++x)
            buf[((b * N + n) * H + h) * d + x] = t.view().at(b, h, n, x);
    return spattn::view_bnhd(static_cast<const float*>(buf.data()), B, N, H, d);
  };
  std::vector<float> qb, kb;
  const auto qv = token_major(c.in.q, qb);
  const auto kv = token_major(c.in.k, kb);
  for (const char* spec : {"vertical_slash(30, 50)", "quest(32, page=8)", "moba(16, 2)",
                           "block_topk(16, 2)", "oracle_topk(9)"}) {
    CAPTURE(spec);
    const PatternPtr p = parse_spec(spec);
    const SelectedLayouts a = select_layouts(p, c.in.q.view(), c.in.k.view(), c.g);
    const SelectedLayouts b = select_layouts(p, qv, kv, c.g);
    for (std::size_t bi = 0; bi < a.layouts.size(); ++bi)
      for (int h = 0; h < c.g.heads; ++h)
        for (std::int64_t i = 0; i < c.g.nq; ++i)
          for (std::int64_t j = 0; j < c.g.nk; ++j)
            REQUIRE(a.layouts[bi].head(h).allows(i, j) == b.layouts[bi].head(h).allows(i, j));
  }
}
