// Published pattern families (Sparse Transformer, Longformer, StreamingLLM, model presets)
// against rules restated here from their written formulas, never by calling the pattern.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using i64 = std::int64_t;
using spattn::Geometry;

// Floor division and non-negative modulo for b > 0, written independently of the library.
i64 fdiv(i64 a, i64 b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
i64 fmodp(i64 a, i64 b) {
  return a - fdiv(a, b) * b;
}
i64 iabs(i64 a) {
  return a < 0 ? -a : a;
}

// rule(head, p, j): the family's written rule at query position p and key j.
using Rule = std::function<bool(int head, i64 p, i64 j)>;

struct Size {
  i64 nq, nk;
};
// Ragged lengths, nq < nk (queries at the end) and nq == nk.
const std::vector<Size> kSizes = {{1, 1},     {7, 7},   {100, 100}, {257, 257},
                                  {300, 300}, {1, 300}, {7, 100},   {100, 257}};
const std::vector<std::pair<int, int>> kTilings = {{16, 16}, {32, 64}, {64, 32}, {64, 64}};

// Builds `spec` at every size (of `sizes`) and tiling and compares the layout and
// Pattern::allows with the rule pair for pair, and the allowed-pair count with the rule's count.
void check_family(const std::string& spec, const Rule& rule, int heads = 1, i64 min_nk = 1,
                  const std::vector<Size>& sizes = kSizes) {
  INFO(spec);
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  CHECK(spattn::parse_spec(p->spec())->spec() == p->spec());
  for (const Size& s : sizes) {
    if (s.nk < min_nk) continue;
    for (auto [bq, bk] : kTilings) {
      const Geometry g{s.nq, s.nk, heads, bq, bk};
      INFO(g.describe());
      const spattn::Layout L = spattn::build_layout(*p, g);
      REQUIRE_FALSE(L.scanned);
      for (int h = 0; h < heads; ++h) {
        INFO("head " << h);
        const spattn::BlockLayout& B = L.head(h);
        i64 expected = 0, layout_mismatch = 0, allows_mismatch = 0;
        for (i64 i = 0; i < g.nq; ++i) {
          const i64 pos = i + g.nk - g.nq;
          for (i64 j = 0; j < g.nk; ++j) {
            const bool want = rule(h, pos, j);
            expected += want;
            layout_mismatch += B.allows(i, j) != want;
            allows_mismatch += p->allows(g, h, i, j) != want;
          }
        }
        CHECK(layout_mismatch == 0);
        CHECK(allows_mismatch == 0);
        CHECK(B.counts().allowed_pairs == expected);
      }
    }
  }
}

// Element mask of `spec` at n = nq = nk (one row string per query, '1' = allowed).
std::vector<std::string> mask_rows(const std::string& spec, i64 n, int heads = 1, int head = 0) {
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  const spattn::Layout L = spattn::build_layout(*p, Geometry{n, n, heads, 16, 16});
  std::vector<std::string> rows;
  for (i64 i = 0; i < n; ++i) {
    std::string row;
    for (i64 j = 0; j < n; ++j) row += L.head(head).allows(i, j) ? '1' : '0';
    rows.push_back(row);
  }
  return rows;
}

i64 allowed_pairs(const std::string& spec, i64 n) {
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  return spattn::build_layout(*p, Geometry{n, n, 1, 64, 64}).counts().allowed_pairs;
}

}  // namespace

TEST_CASE("st_strided and st_fixed match their written rules", "[families]") {
  for (i64 l : {1, 3, 16, 50, 128}) {
    check_family(fmt::format("st_strided({})", l),
                 [l](int, i64 p, i64 j) { return j <= p && (p - j < l || fmodp(p - j, l) == 0); });
  }
  for (auto [l, c] :
       std::vector<std::pair<i64, i64>>{{1, 1}, {8, 8}, {16, 4}, {50, 7}, {128, 32}}) {
    check_family(fmt::format("st_fixed({}, {})", l, c), [l = l, c = c](int, i64 p, i64 j) {
      return j <= p && (fdiv(j, l) == fdiv(p, l) || fmodp(j, l) >= l - c);
    });
  }
  // Per-head summary groups: head h uses [l - (v+1)c, l - vc) with v = h mod num_verts.
  for (auto [l, c, nv, heads] :
       std::vector<std::tuple<i64, i64, i64, int>>{{64, 16, 4, 4}, {30, 5, 3, 6}}) {
    check_family(
        fmt::format("st_fixed({}, {}, num_verts={})", l, c, nv),
        [l = l, c = c, nv = nv](int h, i64 p, i64 j) {
          const i64 v = h % nv, r = fmodp(j, l);
          return j <= p && (fdiv(j, l) == fdiv(p, l) || (l - (v + 1) * c <= r && r < l - v * c));
        },
        heads);
  }
}

TEST_CASE("longformer and longformer_dilated match their written rules", "[families]") {
  for (i64 w : {2, 10, 64, 512}) {
    check_family(fmt::format("longformer({})", w),
                 [w](int, i64 p, i64 j) { return iabs(p - j) <= w / 2; });
  }
  // Globals: rows and columns of every listed position (positions < 100 fit every size kept).
  const std::vector<i64> G = {0, 5, 99};
  auto is_global = [G](i64 x) { return std::find(G.begin(), G.end(), x) != G.end(); };
  check_family(
      "longformer(64, global=[99, 0, 5])",
      [&](int, i64 p, i64 j) { return iabs(p - j) <= 32 || is_global(p) || is_global(j); }, 1, 100);
  check_family(
      "longformer(2, global=[5])",
      [](int, i64 p, i64 j) { return iabs(p - j) <= 1 || p == 5 || j == 5; }, 1, 7);

  auto dilated = [](i64 w, i64 d, bool ar) {
    return [=](i64 p, i64 j) {
      return iabs(p - j) <= w * d && fmodp(p - j, d) == 0 && (!ar || j <= p);
    };
  };
  for (auto [w, d, ar] :
       std::vector<std::tuple<i64, i64, bool>>{{3, 1, false}, {4, 3, false}, {6, 2, true}}) {
    const std::string spec =
        fmt::format("longformer_dilated({}, d={}, autoregressive={})", w, d, ar ? 1 : 0);
    check_family(spec, [f = dilated(w, d, ar)](int, i64 p, i64 j) { return f(p, j); });
  }
  const std::vector<i64> per_head = {1, 2, 2, 3};
  check_family(
      "longformer_dilated(5, dilation=[1, 2, 2, 3])",
      [&](int h, i64 p, i64 j) { return dilated(5, per_head[h], false)(p, j); }, 4);
  check_family(
      "longformer_dilated(2, dilation=[3, 1], autoregressive=1)",
      [&](int h, i64 p, i64 j) { return dilated(2, h == 0 ? 3 : 1, true)(p, j); }, 2);
}

TEST_CASE("streaming, mistral_swa and llama4_chunked match their written rules", "[families]") {
  for (auto [sink, recent] :
       std::vector<std::pair<i64, i64>>{{4, 512}, {0, 16}, {7, 33}, {100, 1}, {1, 300}}) {
    check_family(fmt::format("streaming(sink={}, recent={})", sink, recent),
                 [sink = sink, recent = recent](int, i64 p, i64 j) {
                   return j <= p && (j < sink || p - j < recent);
                 });
  }
  for (i64 w : {1, 17, 64, 4096}) {
    check_family(fmt::format("mistral_swa({})", w),
                 [w](int, i64 p, i64 j) { return p - w < j && j <= p; });
  }
  for (i64 c : {1, 16, 50, 8192}) {
    check_family(fmt::format("llama4_chunked({})", c),
                 [c](int, i64 p, i64 j) { return fdiv(j, c) == fdiv(p, c) && j <= p; });
  }
}

TEST_CASE("phi3_blocksparse matches vLLM's block rule times the causal mask", "[families]") {
  // qb = floor(p / B), kb = floor(j / B): j <= p and (qb - kb < L or (kb + h*step + 1) mod vs
  // == 0), step = 0 (homo_head), the given head_sliding_step, or max(1, vs / heads).
  auto rule = [](i64 L, i64 vs, i64 B, i64 step) {
    return [=](int h, i64 p, i64 j) {
      const i64 qb = p / B, kb = j / B;
      return j <= p && (qb - kb < L || (kb + h * step + 1) % vs == 0);
    };
  };
  check_family("phi3_blocksparse(2, 3, block_size=16)", rule(2, 3, 16, 1), 4);  // 3/4 -> 1
  check_family("phi3_blocksparse(2, 8, block_size=16)", rule(2, 8, 16, 2), 3);  // 8/3 -> 2
  check_family("phi3_blocksparse(1, 1, block_size=8)", rule(1, 1, 8, 1), 2);
  check_family("phi3_blocksparse(4, 4, block_size=32, homo_head=1)", rule(4, 4, 32, 0), 2);
  check_family("phi3_blocksparse(3, 8, block_size=16, head_sliding_step=3)", rule(3, 8, 16, 3), 5);
  check_family("phi3_blocksparse(16, 8)", rule(16, 8, 64, 1), 8);
}

// Lengths around and far beyond the number of keys: nk - 1, nk, nk + 1, 2 nk and 2^40 (capped
// at `cap`, the parameter's largest value), each at or above `min`.
std::vector<i64> lengths_around(i64 nk, i64 min = 1, i64 cap = i64{1} << 40) {
  std::vector<i64> out;
  for (i64 L : {nk - 1, nk, nk + 1, 2 * nk, i64{1} << 40}) {
    L = std::min(L, cap);
    if (L >= min && std::find(out.begin(), out.end(), L) == out.end()) out.push_back(L);
  }
  return out;
}

TEST_CASE("published families: lengths at and beyond the sequence follow their rules",
          "[families][lengths]") {
  // Each family's length set to nk - 1 .. 2^40 at nq = nk and at a single query (bottom-right).
  for (const i64 nk : {1, 7, 100, 257}) {
    const std::vector<Size> sizes = {{nk, nk}, {1, nk}};
    for (const i64 L : lengths_around(nk)) {
      INFO("nk = " << nk << ", length " << L);
      check_family(
          fmt::format("st_strided({})", L),
          [L](int, i64 p, i64 j) { return j <= p && (p - j < L || fmodp(p - j, L) == 0); }, 1, 1,
          sizes);
      const i64 c = std::min<i64>(L, 3);
      check_family(
          fmt::format("st_fixed({}, {})", L, c),
          [L, c](int, i64 p, i64 j) {
            return j <= p && (fdiv(j, L) == fdiv(p, L) || fmodp(j, L) >= L - c);
          },
          1, 1, sizes);
      check_family(
          fmt::format("streaming(sink={}, recent=2)", L),
          [L](int, i64 p, i64 j) { return j <= p && (j < L || p - j < 2); }, 1, 1, sizes);
      check_family(
          fmt::format("streaming(sink=1, recent={})", L),
          [L](int, i64 p, i64 j) { return j <= p && (j < 1 || p - j < L); }, 1, 1, sizes);
      check_family(
          fmt::format("mistral_swa({})", L), [L](int, i64 p, i64 j) { return p - L < j && j <= p; },
          1, 1, sizes);
      check_family(
          fmt::format("llama4_chunked({})", L),
          [L](int, i64 p, i64 j) { return fdiv(j, L) == fdiv(p, L) && j <= p; }, 1, 1, sizes);
      // Hugging Face's attention_window w (at most 2^40): w/2 keys each side.
      const i64 h = std::min(L, i64{1} << 39);
      check_family(
          fmt::format("longformer({})", 2 * h), [h](int, i64 p, i64 j) { return iabs(p - j) <= h; },
          1, 1, sizes);
      check_family(
          fmt::format("longformer({}, global=[])", 2 * h),
          [h](int, i64 p, i64 j) { return iabs(p - j) <= h; }, 1, 1, sizes);
      check_family(
          fmt::format("longformer({}, global=[0])", 2 * h),
          [h](int, i64 p, i64 j) { return iabs(p - j) <= h || p == 0 || j == 0; }, 1, 1, sizes);
    }
    // longformer_dilated: the reach w * d (w and d at most 2^31 each).
    for (const i64 L : lengths_around(nk, 1, i64{1} << 31)) {
      INFO("nk = " << nk << ", length " << L);
      for (const auto& [w, d, ar] : std::vector<std::tuple<i64, i64, bool>>{
               {L, 1, false}, {1, L, true}, {L, 2, false}, {L, i64{1} << 31, true}}) {
        check_family(
            fmt::format("longformer_dilated({}, d={}, autoregressive={})", w, d, ar ? "true" : "0"),
            [w = w, d = d, ar = ar](int, i64 p, i64 j) {
              return iabs(p - j) <= w * d && fmodp(p - j, d) == 0 && (!ar || j <= p);
            },
            1, 1, sizes);
      }
      check_family(
          fmt::format("longformer_dilated({}, dilation=[1, {}])", L, L),
          [L](int h, i64 p, i64 j) {
            const i64 d = h == 0 ? 1 : L;
            return iabs(p - j) <= L * d && fmodp(p - j, d) == 0;
          },
          2, 1, sizes);
    }
    // phi3_blocksparse: the local span local_blocks * B and the vertical stride
    // vert_stride * B, each parameter at most 2^20.
    auto phi3 = [](i64 local, i64 vs, i64 B, i64 step) {
      return [=](int h, i64 p, i64 j) {
        const i64 qb = p / B, kb = j / B;
        return j <= p && (qb - kb < local || (kb + h * step + 1) % vs == 0);
      };
    };
    for (const i64 L : lengths_around(nk, 1, i64{1} << 20)) {
      INFO("nk = " << nk << ", length " << L);
      check_family(fmt::format("phi3_blocksparse({}, 3, block_size=1)", L), phi3(L, 3, 1, 1), 2, 1,
                   sizes);
      // The derived head_sliding_step: max(1, vert_stride / heads).
      check_family(fmt::format("phi3_blocksparse(1, {}, block_size=1)", L),
                   phi3(1, L, 1, std::max<i64>(1, L / 2)), 2, 1, sizes);
      check_family(fmt::format("phi3_blocksparse(2, 2, block_size={}, homo_head=true)", L),
                   phi3(2, 2, L, 0), 2, 1, sizes);
      check_family(fmt::format("phi3_blocksparse({0}, {0}, block_size={0})", L),
                   phi3(L, L, L, std::max<i64>(1, L / 3)), 3, 1, sizes);
    }
  }
}

TEST_CASE("published families: hand-computed masks", "[families]") {
  // Window |i - j| <= 2, plus row 2 and column 2 (global token 2).
  CHECK(mask_rows("longformer(4, global=[2])", 8) == std::vector<std::string>{
                                                         "11100000",  // 0: j 0..2
                                                         "11110000",  // 1: j 0..3
                                                         "11111111",  // 2: global row
                                                         "01111100",  // 3: j 1..5
                                                         "00111110",  // 4: j 2..6
                                                         "00111111",  // 5: j 3..7 (+2)
                                                         "00101111",  // 6: j 4..7, 2
                                                         "00100111",  // 7: j 5..7, 2
                                                     });
  // Blocks of 4, summary column j = 3, 7 (j mod 4 == 3), causal.
  CHECK(mask_rows("st_fixed(4, 1)", 10) == std::vector<std::string>{
                                               "1000000000",
                                               "1100000000",
                                               "1110000000",
                                               "1111000000",
                                               "0001100000",  // 4: own block j=4, summary 3
                                               "0001110000",
                                               "0001111000",
                                               "0001111100",
                                               "0001000110",  // 8: j=8, summaries 3, 7
                                               "0001000111",
                                           });
  // Last 3 keys plus every third key back.
  CHECK(mask_rows("st_strided(3)", 10) == std::vector<std::string>{
                                              "1000000000", "1100000000", "1110000000",
                                              "1111000000",  // 3: j 1..3, and 0 (3 back)
                                              "0111100000",  // 4: j 2..4, and 1
                                              "0011110000",  // 5: j 3..5, and 2
                                              "1001111000",  // 6: j 4..6, and 3, 0
                                              "0100111100", "0010011110",
                                              "1001001111",  // 9: j 7..9, and 6, 3, 0
                                          });
  // Sinks j < 2, recent p - j < 3.
  CHECK(mask_rows("streaming(sink=2, recent=3)", 10) == std::vector<std::string>{
                                                            "1000000000",
                                                            "1100000000",
                                                            "1110000000",
                                                            "1111000000",
                                                            "1111100000",
                                                            "1101110000",  // 5: 0, 1 and 3..5
                                                            "1100111000",
                                                            "1100011100",
                                                            "1100001110",
                                                            "1100000111",
                                                        });
  // phi3_blocksparse(2, 3, block_size=2) at n = 12: 6 blocks of 2, block rows below; the token
  // mask is the block mask times j <= i. Heads 0..2 (step max(1, 3/3) = 1): vertical key blocks
  // kb with (kb + h + 1) mod 3 == 0: {2, 5}, {1, 4}, {0, 3}; homo_head uses head 0's.
  const std::vector<std::vector<std::string>> blocks = {
      {"100000", "110000", "011000", "001100", "001110", "001011"},
      {"100000", "110000", "011000", "011100", "010110", "010011"},
      {"100000", "110000", "111000", "101100", "100110", "100111"},
  };
  for (int h = 0; h < 3; ++h) {
    INFO("head " << h);
    std::vector<std::string> want;
    for (int i = 0; i < 12; ++i) {
      std::string row;
      for (int j = 0; j < 12; ++j) row += blocks[h][i / 2][j / 2] == '1' && j <= i ? '1' : '0';
      want.push_back(row);
    }
    CHECK(mask_rows("phi3_blocksparse(2, 3, block_size=2)", 12, 3, h) == want);
    if (h == 0)
      CHECK(mask_rows("phi3_blocksparse(2, 3, block_size=2, homo_head=1)", 12, 3, 2) == want);
  }
}

TEST_CASE("published families: exact pair counts of the published configs", "[families]") {
  // longformer(512): h = 256 keys each side. Row i holds min(i, h) + min(N-1-i, h) + 1 keys;
  // summed: N + 2 * (h(h-1)/2 + (N-h)h) = N(2h+1) - h(h+1) = 513 N - 65792.
  CHECK(allowed_pairs("longformer(512)", 1024) == 459520);   // 525312 - 65792
  CHECK(allowed_pairs("longformer(512)", 2048) == 984832);   // 1050624 - 65792
  CHECK(allowed_pairs("longformer(512)", 4096) == 2035456);  // 2101248 - 65792
  // st_fixed(128, 32), N = 128 B: each block's causal triangle holds 128*129/2 = 8256 pairs;
  // a query in block b also sees the 32 summary keys of each of the b earlier blocks:
  // 128 * 32 * (0 + 1 + ... + B-1) = 2048 B (B-1). Total 8256 B + 2048 B (B-1).
  CHECK(allowed_pairs("st_fixed(128, 32)", 1024) == 180736);   // B = 8: 66048 + 114688
  CHECK(allowed_pairs("st_fixed(128, 32)", 2048) == 623616);   // B = 16: 132096 + 491520
  CHECK(allowed_pairs("st_fixed(128, 32)", 4096) == 2295808);  // B = 32: 264192 + 2031616
}

TEST_CASE("published families: canonical specs", "[families]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"longformer(window=512)", "longformer(512)"},
      {"longformer(8, global=[9, 1])", "longformer(8, global=[1, 9])"},
      {"longformer(8, global=[])", "longformer(8)"},
      {"longformer_dilated(256, d=1)", "longformer_dilated(256)"},
      {"longformer_dilated(256, 2)", "longformer_dilated(256, d=2)"},
      {"longformer_dilated(w=4, dilation=[1, 2], autoregressive=0)",
       "longformer_dilated(4, dilation=[1, 2])"},
      {"streaming(sink=4, recent=512)", "streaming"},
      {"streaming(recent=1024, sink=0)", "streaming(sink=0, recent=1024)"},
      {"st_fixed(128, 32, num_verts=1)", "st_fixed(128, 32)"},
      {"phi3_blocksparse(16, 8, block_size=64, homo_head=0)", "phi3_blocksparse(16, 8)"},
      {"mistral_swa(sliding_window=4096)", "mistral_swa(4096)"},
      {"llama4_chunked(attention_chunk_size=8192)", "llama4_chunked(8192)"},
      {"st_strided(l=128) | sink(4)", "st_strided(128) | sink(4)"},
  };
  for (const auto& [in, canonical] : cases) {
    INFO(in);
    CHECK(spattn::parse_spec(in)->spec() == canonical);
    CHECK(spattn::parse_spec(canonical)->spec() == canonical);
  }
}

TEST_CASE("published families: bad parameters give clear errors", "[families]") {
  using Catch::Matchers::Contains;
  auto parse = [](const std::string& s) { return spattn::parse_spec(s); };
  CHECK_THROWS_WITH(parse("longformer(7)"), Contains("window = 7 must be even"));
  CHECK_THROWS_WITH(parse("longformer(0)"), Contains("window = 0 is out of range"));
  CHECK_THROWS_WITH(parse("longformer(4, global=[3, 1, 3])"), Contains("token 3 is listed twice"));
  CHECK_THROWS_WITH(parse("longformer(4, global=[-1])"), Contains("out of range"));
  CHECK_THROWS_WITH(parse("st_fixed(16, 32)"), Contains("c = 32 exceeds l = 16"));
  CHECK_THROWS_WITH(parse("st_fixed(16, 8, num_verts=3)"), Contains("num_verts * c"));
  CHECK_THROWS_WITH(parse("st_strided(0)"), Contains("l = 0 is out of range"));
  CHECK_THROWS_WITH(parse("longformer_dilated(4, d=2, dilation=[1, 2])"), Contains("not both"));
  CHECK_THROWS_WITH(parse("longformer_dilated(4, dilation=[])"), Contains("lists no heads"));
  CHECK_THROWS_WITH(parse("longformer_dilated(4, dilation=[1, 0])"), Contains("out of range"));
  CHECK_THROWS_WITH(parse("streaming(recent=0)"), Contains("recent = 0 is out of range"));
  CHECK_THROWS_WITH(parse("phi3_blocksparse(0, 4)"), Contains("local_blocks = 0 is out of range"));
  CHECK_THROWS_WITH(parse("phi3_blocksparse(2, 4, homo_head=2)"),
                    Contains("argument 'homo_head' expects a boolean (true, false, 1 or 0), found "
                             "number 2"));
  CHECK_THROWS_WITH(parse("phi3_blocksparse(2, 4, homo_head=1, head_sliding_step=1)"),
                    Contains("no effect with homo_head=1"));
  CHECK_THROWS_WITH(parse("mistral_swa(0)"), Contains("sliding_window = 0 is out of range"));
  CHECK_THROWS_WITH(parse("llama4_chunked(0)"),
                    Contains("attention_chunk_size = 0 is out of range"));

  // Checks against the geometry, at build time.
  auto build = [](const std::string& s, Geometry g) {
    return spattn::build_layout(*spattn::parse_spec(s), g);
  };
  CHECK_THROWS_WITH(build("longformer(4, global=[1, 10])", Geometry{8, 8, 1, 16, 16}),
                    Contains("global token 10 is out of range: tokens are positions 0..7"));
  CHECK_THROWS_WITH(build("longformer_dilated(4, dilation=[1, 2])", Geometry{8, 8, 3, 16, 16}),
                    Contains("dilation lists 2 values, one per head, but the geometry has 3"));
  CHECK_THROWS_WITH(build("st_fixed(16, 4, num_verts=4)", Geometry{8, 8, 6, 16, 16}),
                    Contains("6 heads, not a multiple of num_verts = 4"));
}

TEST_CASE("published families: heads with equal parameters share one layout", "[families]") {
  auto distinct = [](const std::string& s, int heads) {
    const Geometry g{200, 200, heads, 32, 32};
    return spattn::build_layout(*spattn::parse_spec(s), g).distinct.size();
  };
  CHECK(distinct("longformer_dilated(5, dilation=[1, 2, 2, 1])", 4) == 2);
  CHECK(distinct("longformer_dilated(5, d=2)", 4) == 1);
  CHECK(distinct("st_fixed(64, 16, num_verts=2)", 4) == 2);  // groups h mod 2
  CHECK(distinct("st_fixed(64, 16)", 4) == 1);
  // Offsets h * 2 mod 4 = 0, 2, 0, 2.
  CHECK(distinct("phi3_blocksparse(2, 4, block_size=16, head_sliding_step=2)", 4) == 2);
  CHECK(distinct("phi3_blocksparse(2, 4, block_size=16, homo_head=1)", 4) == 1);
  CHECK(distinct("phi3_blocksparse(2, 4, block_size=16)", 4) == 4);  // step max(1, 4/4) = 1
  CHECK(distinct("longformer(8, global=[3]) | streaming", 3) == 1);
}

TEST_CASE("published families: a long sequence builds from the fast paths", "[families]") {
  // streaming(sink=4, recent=4096) at N = 2^18: query p keeps min(p+1, 4096) recent keys plus
  // the sinks j < 4 not among them, min(4, max(0, p - 4095)). Sum of the first part:
  // 4096*4097/2 + (N - 4096) * 4096 = 8390656 + 1056964608 = 1065355264; of the second, over
  // p = 4096..N-1: 1 + 2 + 3 + 4 * (N - 4096 - 3) = 6 + 1032180 = 1032186.
  const i64 n = i64{1} << 18;
  const auto p = spattn::parse_spec("streaming(sink=4, recent=4096)");
  const spattn::Layout L = spattn::build_layout(*p, Geometry{n, n, 1, 64, 64});
  CHECK_FALSE(L.scanned);
  CHECK(L.counts().allowed_pairs == 1065355264 + 1032186);
  // Kept tiles stay O(n): at most ceil(4096/64) + 2 window tiles and one sink tile per row.
  CHECK(L.counts().kept_tiles <= (n / 64) * (4096 / 64 + 3));
}
