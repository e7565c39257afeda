// Layout memory is O(kept tiles), not O(n^2): the 1M-token sliding(4096) | sink(4) layout.
//
// Every expected number here is derived by hand from the rule and the tiling (see comments), and
// the byte bound from the storage scheme documented in block_layout.hpp: per query-block row one
// int64 row pointer (plus one), per kept tile a 4-byte column index and a 4-byte mask index, and
// per stored partial mask block_q rows of mask_row_words() 64-bit words (equal masks may be shared,
// so at most one mask per partial tile).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using i64 = std::int64_t;

constexpr i64 kN = i64{1} << 20;  // tokens
constexpr i64 kW = 4096;          // sliding window
constexpr i64 kS = 4;             // sinks
constexpr i64 kB = 64;            // block size

// Allowed pairs of sliding(W) | sink(S) with nq = nk = N, in closed form. For query position p
// the window holds min(p + 1, W) keys. The sinks j < S are visible to every query (sink is not
// causal), so those outside the window [p - W + 1, p] add
//  - on the left, min(S, max(0, p - W + 1)) keys: 1, 2, 3 for p = W, W + 1, W + 2, then 4;
//  - on the right, max(0, S - 1 - p) keys: 3, 2, 1 for p = 0, 1, 2.
i64 closed_form_allowed() {
  static_assert(kS == 4);
  const i64 window = kW * (kW + 1) / 2 + (kN - kW) * kW;
  const i64 left = (1 + 2 + 3) + kS * (kN - (kW + 3));
  const i64 right = 3 + 2 + 1;
  return window + left + right;
}

// The same count, summed position by position (a check on the algebra above).
i64 summed_allowed() {
  i64 total = 0;
  for (i64 p = 0; p < kN; ++p) {
    total += std::min(p + 1, kW);
    for (i64 j = 0; j < kS; ++j) total += j < p - kW + 1 || j > p;
  }
  return total;
}

}  // namespace

TEST_CASE("the 1M-token sliding(4096) | sink(4) layout: exact counts and O(kept tiles) bytes",
          "[layout][memory]") {
  REQUIRE(closed_form_allowed() == summed_allowed());

  const spattn::Geometry g{kN, kN, 1, kB, kB};
  const spattn::Layout L = spattn::build_layout(*spattn::parse_spec("sliding(4096) | sink(4)"), g);
  REQUIRE(L.distinct.size() == 1);
  const spattn::BlockLayout& B = L.head(0);
  const spattn::LayoutCounts& c = B.counts();

  CHECK(c.allowed_pairs == closed_form_allowed());

  // Tiles by hand. Row r holds positions [64r, 64r + 63]; the window starts at p - 4095.
  //  - r < 64: every window starts at or before key 0: blocks 0..r-1 Full, the diagonal block r
  //    Partial (causal triangle): r + 1 tiles, 1 Partial.
  //  - r = 64: windows start at keys 1..64, so block 0 is Partial (the sinks fill key 0 on the
  //    first row, the last row sees only the 4 sinks there), blocks 1..63 Full, 64 Partial:
  //    65 tiles, 2 Partial.
  //  - r >= 65: block 0 holds only the sinks (Partial), block r - 64 the window's ragged left edge
  //    (Partial), blocks r - 63 .. r - 1 Full, the diagonal Partial: 66 tiles, 3 Partial.
  const i64 Q = kN / kB;
  const i64 kept = 64 * 65 / 2 + 65 + (Q - 65) * 66;
  const i64 partial = 64 + 2 + (Q - 65) * 3;
  CHECK(c.kept_tiles == kept);
  CHECK(c.partial_tiles == partial);
  CHECK(c.full_tiles == kept - partial);
  CHECK(c.computed_pairs == kept * kB * kB);
  CHECK(B.q_blocks() == Q);

  // Bytes: bounded by the storage scheme, i.e. linear in kept tiles, nowhere near N^2 bits.
  const i64 mask_row_words = (kB + 63) / 64;
  const i64 bound = kept * (4 + 4) + partial * kB * mask_row_words * 8 + (Q + 1) * 8;
  CHECK(c.bytes <= bound);
  CHECK(c.bytes >= kept * (4 + 4) + (Q + 1) * 8);  // the index arrays alone
  // The count agrees with the arrays the layout exposes.
  const i64 held =
      static_cast<i64>(B.row_ptr().size()) * 8 + static_cast<i64>(B.col_index().size()) * 4 +
      static_cast<i64>(B.mask_index().size()) * 4 + B.distinct_masks() * B.mask_words() * 8;
  CHECK(c.bytes == held);
  CHECK(B.distinct_masks() <= partial);
  CHECK(c.bytes < kN * kN / 8 / 1000);  // under a thousandth of a dense bitmask
  CHECK(L.counts().bytes == c.bytes);
}

TEST_CASE("shared head layouts are stored once; a single decode query is exact",
          "[layout][memory]") {
  const auto p = spattn::parse_spec("sliding(4096) | sink(4)");
  // Eight heads with one pattern: one BlockLayout, counted once in bytes, eight times in pairs.
  const spattn::Geometry g8{kN / 4, kN / 4, 8, 128, 64};
  const spattn::Layout L = spattn::build_layout(*p, g8);
  REQUIRE(L.distinct.size() == 1);
  CHECK(L.counts().bytes == L.head(0).counts().bytes);
  CHECK(L.counts().allowed_pairs == 8 * L.head(0).counts().allowed_pairs);
  CHECK(L.counts().kept_tiles == 8 * L.head(0).counts().kept_tiles);

  // nq = 1 at nk = N: the query sits at p = N - 1 and sees its window of W keys plus the S sinks.
  const spattn::Geometry g1{1, kN, 1, 16, 128};
  const spattn::Layout D = spattn::build_layout(*p, g1);
  CHECK(D.counts().allowed_pairs == kW + kS);
  // Window [N - 4096, N - 1] covers 32 whole key blocks of 128, plus key block 0 for the sinks.
  CHECK(D.counts().kept_tiles == 32 + 1);
  CHECK(D.counts().partial_tiles == 1);
}

TEST_CASE("parse_byte_count: units are powers of 1024, bad text is one clear error", "[memory]") {
  using spattn::parse_byte_count;
  const std::int64_t max = std::int64_t{1} << 62;
  CHECK(parse_byte_count("1000000", "x", max) == 1000000);
  CHECK(parse_byte_count("512MiB", "x", max) == 512 * (std::int64_t{1} << 20));
  CHECK(parse_byte_count("2 gb", "x", max) == 2 * (std::int64_t{1} << 30));
  CHECK(parse_byte_count("1.5G", "x", max) == 3 * (std::int64_t{1} << 29));  // 1.5 * 2^30
  CHECK(parse_byte_count("1.5", "x", max) == 1);                             // rounded down
  CHECK(parse_byte_count(" 4 T ", "x", max) == 4 * (std::int64_t{1} << 40));
  const auto fails = [&](const char* text, const char* fragment, std::int64_t limit) {
    INFO(text);
    CHECK_THROWS_WITH(parse_byte_count(text, "--budget 'v'", limit),
                      Catch::StartsWith("--budget 'v' ") && Catch::Contains(fragment));
  };
  fails("lots", "does not start with a number", max);
  fails(".5G", "does not start with a number", max);
  fails("1e9", "has an unknown unit \"e9\"", max);
  fails("2 GigaBytes", "has an unknown unit \"gigabytes\"", max);
  fails("2G x", "has text after the unit", max);
  fails("0.5B", "is out of range: allowed 1 byte..", max);
  fails("2K", "is out of range: allowed 1 byte..1000 bytes", 1000);
  fails("9000000T", "is out of range", max);  // 9.9e18 > 2^62
  fails("9000000T", "is out of range",
        std::numeric_limits<std::int64_t>::max());  // beyond int64 whatever the max
}

TEST_CASE("layouts over the budget are refused before they take the memory", "[memory]") {
  // Each of these would need hundreds of GiB (or, for the per-row bookkeeping, more than the
  // budget before any tile is kept); the estimate must refuse them with BudgetError, not run out
  // of memory while estimating (std::bad_alloc) or build for hours.
  spattn::BuildOptions opt;
  opt.max_layout_bytes = i64{64} << 20;
  const i64 big = i64{1} << 40;
  struct Case {
    const char* spec;
    i64 nq, nk;
    const char* says;
  };
  const Case cases[] = {
      {"causal", big, big, "would take at least about"},    // 2^68 tiles; one sampled row is 2^34
      {"causal", big, 1, "for 17179869184 rows of tiles"},  // one tile per row, 2^34 rows
      {"sink(1)", big, 1, "for 17179869184 rows of tiles"},
      {"causal", 1, big, "exceeded the layout memory budget of 0.0625 GiB"},  // one huge row
      {"sliding(64)", i64{1} << 32, i64{1} << 32, "for 67108864 rows of tiles"},
  };
  for (const Case& c : cases) {
    INFO(c.spec << " nq=" << c.nq << " nk=" << c.nk);
    try {
      spattn::build_layout(*spattn::parse_spec(c.spec), spattn::Geometry{c.nq, c.nk, 1, 64, 64},
                           opt);
      FAIL("built a layout over the budget");
    } catch (const spattn::BudgetError& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK_THAT(msg, Catch::Matchers::Contains("layout memory budget"));
      CHECK_THAT(msg, Catch::Matchers::Contains(c.says));
    }
  }
  // Just under the budget still builds: 2^20 rows of one tile each need about 2^20 * 36 bytes.
  opt.max_layout_bytes = i64{128} << 20;
  const spattn::Layout L =
      spattn::build_layout(*spattn::parse_spec("sliding(1)"),
                           spattn::Geometry{i64{1} << 26, i64{1} << 26, 1, 64, 64}, opt);
  CHECK(L.counts().allowed_pairs == i64{1} << 26);
}
