// AttentionOptions::mask_full_tiles: every kept Full tile runs through the masked kernel with an
// all-ones mask. Masking with all bits set selects every input unchanged, so the output must be
// bitwise the default mode's, for any layout and thread count; only the time may differ.
#include <catch2/catch.hpp>
#include <string>

#include "attention_testing.hpp"
#include "spattn/attention/attention.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

TEST_CASE("flash executor: mask_full_tiles gives bitwise the default output", "[flash]") {
  // Layouts with only Full tiles (dense), Full and Partial (causal, sliding | sink), uneven edge
  // tiles (nq, nk not multiples of the block), GQA groups, and a heavy row that is split
  // (global tokens: its row has every key tile).
  struct Case {
    std::string spec;
    std::int64_t nq, nk;
    int heads, kv_heads, block;
  };
  const Case cases[] = {{"dense", 200, 200, 2, 2, 64},
                        {"causal", 150, 170, 4, 2, 32},
                        {"sliding(40) | sink(3)", 300, 300, 4, 1, 16},
                        {"window(20, 5) | global(2)", 2100, 2100, 2, 2, 16}};
  for (const Case& c : cases) {
    const int d = c.spec == "dense" ? 64 : 24;
    const spattn::Layout layout = spattn::build_layout(
        *spattn::parse_spec(c.spec), spattn::Geometry{c.nq, c.nk, c.heads, c.block, c.block});
    const auto lc = layout.counts();
    REQUIRE(lc.full_tiles > 0);  // else the option would have nothing to change
    const spattn::Tensor q = spattn::test::random_tensor(2, c.heads, c.nq, d, 5, 0);
    const spattn::Tensor k = spattn::test::random_tensor(2, c.kv_heads, c.nk, d, 5, 1);
    const spattn::Tensor v = spattn::test::random_tensor(2, c.kv_heads, c.nk, d, 5, 2);
    const auto want = spattn::attention(q.view(), k.view(), v.view(), layout);
    for (int threads : {1, 2, 3}) {
      INFO(c.spec << ", threads " << threads);
      spattn::AttentionOptions opt;
      opt.threads = threads;
      opt.mask_full_tiles = true;
      const auto got = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
      CHECK(got.o.values == want.o.values);
      CHECK(got.lse.values == want.lse.values);
    }
  }
  SECTION("and both agree with the double reference") {
    const spattn::Layout layout =
        spattn::build_layout(*spattn::parse_spec("causal"), spattn::Geometry{130, 130, 2, 32, 32});
    const spattn::Tensor q = spattn::test::random_tensor(1, 2, 130, 16, 9, 0);
    const spattn::Tensor k = spattn::test::random_tensor(1, 2, 130, 16, 9, 1);
    const spattn::Tensor v = spattn::test::random_tensor(1, 2, 130, 16, 9, 2);
    spattn::AttentionOptions opt;
    opt.mask_full_tiles = true;
    const auto got = spattn::attention(q.view(), k.view(), v.view(), layout, opt);
    const auto ref = spattn::reference_attention(q.view(), k.view(), v.view(), layout);
    const auto err = spattn::compare_to_reference(got.o.view(), got.lse.view(), ref);
    CHECK(err.max_rel <= 1e-5);
    CHECK(err.lse_max <= 1e-5);
  }
}
