// Layouts against an independent brute-force oracle.
//
// The oracle below restates every rule (docs/DESIGN.md §3.1-3.2, README pattern catalogue)
// directly from its formula (p = i + nk - nq, floor division, ...) without calling the
// library's allows(), except for random(), whose draw we do not reimplement: for random we
// compare with Pattern::allows and check the draw's properties (exactly min(r, K) distinct
// whole key blocks per query block, per head, per seed, independent of thread count, roughly
// uniform). Every layout is checked pair by pair, tile by tile and count by count, for every
// head, at every combination of the four block sizes.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "spattn/patterns/combinators.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;
using spattn::BlockLayout;
using spattn::BuildOptions;
using spattn::Geometry;
using spattn::Layout;
using spattn::PatternPtr;

constexpr int kBlockSizes[] = {16, 32, 64, 128};

// ------------------------------------------------------------------------------------------
// The oracle: rules written from the formulas, independent of the library.
// ------------------------------------------------------------------------------------------

// Floor division / modulo for b > 0, written differently from the library's helpers.
i64 fdiv(i64 a, i64 b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
i64 fmodp(i64 a, i64 b) {
  return a - fdiv(a, b) * b;
}
i64 pos(const Geometry& g, i64 i) {
  return i + g.nk - g.nq;
}

using Rule = std::function<bool(const Geometry&, int, i64, i64)>;

Rule o_dense() {
  return [](const Geometry&, int, i64, i64) { return true; };
}
Rule o_causal() {
  return [](const Geometry& g, int, i64 i, i64 j) { return j <= pos(g, i); };
}
Rule o_window(i64 left, i64 right) {
  return [=](const Geometry& g, int, i64 i, i64 j) {
    const i64 p = pos(g, i);
    return p - left <= j && j <= p + right;
  };
}
Rule o_sliding(i64 w) {
  return [=](const Geometry& g, int, i64 i, i64 j) {
    const i64 p = pos(g, i);
    return p - w < j && j <= p;
  };
}
Rule o_dilated(i64 w, i64 d) {
  return [=](const Geometry& g, int, i64 i, i64 j) {
    const i64 diff = pos(g, i) - j;
    return std::llabs(diff) <= w * d && fmodp(diff, d) == 0;
  };
}
Rule o_global(std::vector<i64> tokens) {
  std::set<i64> G(tokens.begin(), tokens.end());
  return [G](const Geometry& g, int, i64 i, i64 j) { return G.count(pos(g, i)) || G.count(j); };
}
Rule o_global_n(i64 n) {
  std::vector<i64> t;
  for (i64 k = 0; k < n; ++k) t.push_back(k);
  return o_global(t);
}
Rule o_sink(i64 s) {
  return [=](const Geometry&, int, i64, i64 j) { return j < s; };
}
Rule o_prefix(i64 n) {
  return o_sink(n);
}
Rule o_chunked(i64 c) {
  return [=](const Geometry& g, int, i64 i, i64 j) { return fdiv(j, c) == fdiv(pos(g, i), c); };
}
Rule o_documents(std::vector<i64> lengths) {
  // doc_of[x] for every position covered by a document.
  std::vector<i64> doc_of;
  for (std::size_t d = 0; d < lengths.size(); ++d)
    for (i64 k = 0; k < lengths[d]; ++k) doc_of.push_back(static_cast<i64>(d));
  return [doc_of](const Geometry& g, int, i64 i, i64 j) {
    const i64 p = pos(g, i);
    if (p < 0 || p >= static_cast<i64>(doc_of.size())) return false;
    if (j < 0 || j >= static_cast<i64>(doc_of.size())) return false;
    return doc_of[p] == doc_of[j];
  };
}
Rule o_strided(i64 l) {
  return [=](const Geometry& g, int, i64 i, i64 j) { return fmodp(pos(g, i) - j, l) == 0; };
}
Rule o_columns(std::vector<i64> keys) {
  std::set<i64> K(keys.begin(), keys.end());
  return [K](const Geometry&, int, i64, i64 j) { return K.count(j) > 0; };
}
Rule o_diagonals(std::vector<i64> offsets) {
  std::set<i64> D(offsets.begin(), offsets.end());
  return [D](const Geometry& g, int, i64 i, i64 j) { return D.count(pos(g, i) - j) > 0; };
}
// Cells [H, QB, KB] (H == 1: shared by all heads), block b, rows indexed by the query index.
Rule o_blocks(std::vector<std::uint8_t> cells, i64 H, i64 QB, i64 KB, i64 b) {
  return [=](const Geometry&, int h, i64 i, i64 j) {
    const i64 hh = H == 1 ? 0 : h;
    return cells[static_cast<std::size_t>((hh * QB + i / b) * KB + j / b)] != 0;
  };
}
// The library's own allows(): used only for random, whose draw we do not reimplement.
Rule o_library(PatternPtr p) {
  return [p](const Geometry& g, int h, i64 i, i64 j) { return p->allows(g, h, i, j); };
}
Rule o_any(std::vector<Rule> rs) {
  return [rs](const Geometry& g, int h, i64 i, i64 j) {
    for (const Rule& r : rs)
      if (r(g, h, i, j)) return true;
    return false;
  };
}
Rule o_all(std::vector<Rule> rs) {
  return [rs](const Geometry& g, int h, i64 i, i64 j) {
    for (const Rule& r : rs)
      if (!r(g, h, i, j)) return false;
    return true;
  };
}
Rule o_minus(Rule a, Rule b) {
  return [a, b](const Geometry& g, int h, i64 i, i64 j) { return a(g, h, i, j) && !b(g, h, i, j); };
}
Rule o_heads(std::vector<std::pair<std::vector<int>, Rule>> groups) {
  return [groups](const Geometry& g, int h, i64 i, i64 j) {
    for (const auto& [hs, r] : groups)
      if (std::find(hs.begin(), hs.end(), h) != hs.end()) return r(g, h, i, j);
    throw std::logic_error("oracle: head without a group");
  };
}

// ------------------------------------------------------------------------------------------
// Test instances: a spec, a head count and the oracle, possibly depending on (nq, nk).
// ------------------------------------------------------------------------------------------

struct Instance {
  std::string spec;
  int heads = 1;
  Rule rule;
};
using Factory = std::function<std::optional<Instance>(i64 nq, i64 nk)>;

Factory fixed(std::string spec, Rule rule, int heads = 1) {
  return [=](i64, i64) { return std::optional<Instance>(Instance{spec, heads, rule}); };
}
// random is checked against Pattern::allows of the same leaf, parsed on its own.
Rule lib(const std::string& leaf_spec) {
  return o_library(spattn::parse_spec(leaf_spec));
}

// Document lengths cycling through `pattern`, the last one cut so that they sum to nk.
std::vector<i64> doc_lengths(i64 nk, const std::vector<i64>& pattern) {
  std::vector<i64> out;
  i64 total = 0;
  for (std::size_t k = 0; total < nk; ++k) {
    const i64 len = std::min(pattern[k % pattern.size()], nk - total);
    out.push_back(len);
    total += len;
  }
  return out;
}
std::string list_text(const std::vector<i64>& v) {
  return fmt::format("[{}]", fmt::join(v, ", "));
}

// A temporary directory removed at exit.
const std::filesystem::path& temp_dir() {
  static const spattn::test::TempDir d("spattn_bruteforce");
  return d.path();
}

// Writes a random 0/1 block layout of shape [H, ceil(nq/b), ceil(nk/b)] as int64 and returns the
// instance `blocks(file=..., block=b)` combined by `wrap` ("{}" for the bare leaf).
// With two_d, the file is [QB, KB] (one layout for every head; file_heads must be 1).
Factory blocks_case(i64 b, int file_heads, int heads, std::string wrap,
                    std::function<Rule(Rule)> rule_wrap, std::uint64_t seed, bool two_d = false) {
  return [=](i64 nq, i64 nk) -> std::optional<Instance> {
    const i64 QB = (nq + b - 1) / b, KB = (nk + b - 1) / b;
    std::mt19937_64 rng(seed ^ static_cast<std::uint64_t>(nq * 1000003 + nk));
    std::vector<std::uint8_t> cells(static_cast<std::size_t>(file_heads * QB * KB));
    std::vector<std::int64_t> values(cells.size());
    for (std::size_t k = 0; k < cells.size(); ++k) {
      cells[k] = (rng() % 100) < 35;
      values[k] = cells[k] ? static_cast<std::int64_t>(rng() % 5 + 1) : 0;
    }
    const auto path = temp_dir() / fmt::format("blocks_{}_{}_{}_{}_{}_{}.npy", nq, nk, b,
                                               file_heads, seed, two_d ? 2 : 3);
    const std::vector<std::int64_t> shape =
        two_d ? std::vector<std::int64_t>{QB, KB} : std::vector<std::int64_t>{file_heads, QB, KB};
    spattn::write_npy(path.string(), "<i8", shape, values.data(),
                      values.size() * sizeof(std::int64_t));
    const std::string leaf = fmt::format("blocks(file=\"{}\", block={})", path.string(), b);
    return Instance{fmt::format(fmt::runtime(wrap), leaf), heads,
                    rule_wrap(o_blocks(cells, file_heads, QB, KB, b))};
  };
}

std::vector<Factory> builtin_cases() {
  std::vector<Factory> v;
  v.push_back(fixed("dense", o_dense()));
  v.push_back(fixed("causal", o_causal()));
  v.push_back(fixed("window(5)", o_window(5, 5)));
  v.push_back(fixed("window(0)", o_window(0, 0)));
  v.push_back(fixed("window(0, 3)", o_window(0, 3)));
  v.push_back(fixed("window(17, 0)", o_window(17, 0)));
  v.push_back(fixed("window(40, 70)", o_window(40, 70)));
  v.push_back(fixed("window(200, 1)", o_window(200, 1)));
  v.push_back(fixed("sliding(1)", o_sliding(1)));
  v.push_back(fixed("sliding(3)", o_sliding(3)));
  v.push_back(fixed("sliding(64)", o_sliding(64)));
  v.push_back(fixed("sliding(100)", o_sliding(100)));
  v.push_back(fixed("dilated(3, 2)", o_dilated(3, 2)));
  v.push_back(fixed("dilated(2, 5)", o_dilated(2, 5)));
  v.push_back(fixed("dilated(4, 1)", o_dilated(4, 1)));
  v.push_back(fixed("dilated(0, 3)", o_dilated(0, 3)));
  v.push_back(fixed("dilated(7, 16)", o_dilated(7, 16)));
  v.push_back(fixed("dilated(40, 33)", o_dilated(40, 33)));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 3) return std::nullopt;
    return Instance{"global(3)", 1, o_global_n(3)};
  });
  v.push_back(fixed("global(1)", o_global_n(1)));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 34) return std::nullopt;
    return Instance{"global(tokens=[0, 5, 33])", 1, o_global({0, 5, 33})};
  });
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 130) return std::nullopt;
    const std::vector<i64> t = {2, 3, 4, 70, 71, 128, nk - 1};
    return Instance{fmt::format("global(tokens={})", list_text(t)), 1, o_global(t)};
  });
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    return Instance{fmt::format("global(tokens=[{}])", nk - 1), 1, o_global({nk - 1})};
  });
  v.push_back(fixed("sink(1)", o_sink(1)));
  v.push_back(fixed("sink(4)", o_sink(4)));
  v.push_back(fixed("sink(100)", o_sink(100)));
  v.push_back(fixed("sink(500)", o_sink(500)));
  v.push_back(fixed("prefix(17)", o_prefix(17)));
  v.push_back(fixed("chunked(1)", o_chunked(1)));
  v.push_back(fixed("chunked(7)", o_chunked(7)));
  v.push_back(fixed("chunked(64)", o_chunked(64)));
  v.push_back(fixed("chunked(100)", o_chunked(100)));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    const auto l = doc_lengths(nk, {1, 13, 40, 7, 90});
    return Instance{fmt::format("documents(lengths={})", list_text(l)), 1, o_documents(l)};
  });
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    return Instance{fmt::format("documents(lengths=[{}])", nk), 1, o_documents({nk})};
  });
  v.push_back(fixed("strided(1)", o_strided(1)));
  v.push_back(fixed("strided(3)", o_strided(3)));
  v.push_back(fixed("strided(40)", o_strided(40)));
  v.push_back(fixed("strided(64)", o_strided(64)));
  v.push_back(fixed("strided(100)", o_strided(100)));
  v.push_back(fixed("strided(257)", o_strided(257)));
  v.push_back(fixed("columns([])", o_columns({})));
  v.push_back(fixed("columns([0])", o_columns({0})));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 130) return std::nullopt;
    const std::vector<i64> k = {127, 3, 15, 16, 17, 64, 65, 66, 67, 128, nk - 1};
    return Instance{fmt::format("columns({})", list_text(k)), 1, o_columns(k)};
  });
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    std::vector<i64> k;  // every key but one: whole tiles Full
    for (i64 j = 0; j < nk; ++j)
      if (j != nk / 2) k.push_back(j);
    return Instance{fmt::format("columns(keys={})", list_text(k)), 1, o_columns(k)};
  });
  v.push_back(fixed("diagonals([])", o_diagonals({})));
  v.push_back(fixed("diagonals([0])", o_diagonals({0})));
  v.push_back(fixed("diagonals([5, -3, 0, 1, 2, 64, 127, 128, 300])",
                    o_diagonals({5, -3, 0, 1, 2, 64, 127, 128, 300})));
  v.push_back(fixed("diagonals(offsets=[-200, -16, -15, 1000000])",
                    o_diagonals({-200, -16, -15, 1000000})));
  v.push_back([](i64 nq, i64 nk) -> std::optional<Instance> {
    std::vector<i64> d;  // every offset of the geometry but two: Full tiles and holes
    for (i64 o = -(nk - 1) + (nk - nq); o <= nk - 1; ++o)
      if (o != 7 && o != -40) d.push_back(o);
    return Instance{fmt::format("diagonals({})", list_text(d)), 1, o_diagonals(d)};
  });
  v.push_back(fixed("random(2)", lib("random(2)")));
  v.push_back(fixed("random(3, block=16, seed=7)", lib("random(3, block=16, seed=7)"), 2));
  v.push_back(fixed("random(1, block=50, seed=3)", lib("random(1, block=50, seed=3)"), 3));
  v.push_back(fixed("random(100, block=32)", lib("random(100, block=32)")));
  v.push_back(fixed("random(2, block=1, seed=11)", lib("random(2, block=1, seed=11)"), 2));
  // Parameters one off a tile edge (tiles are 16, 32, 64 or 128 keys wide).
  v.push_back(fixed("sink(15)", o_sink(15)));
  v.push_back(fixed("sink(16)", o_sink(16)));
  v.push_back(fixed("prefix(63)", o_prefix(63)));
  v.push_back(fixed("prefix(127)", o_prefix(127)));
  v.push_back(fixed("sliding(16)", o_sliding(16)));
  v.push_back(fixed("sliding(65)", o_sliding(65)));
  v.push_back(fixed("window(31, 32)", o_window(31, 32)));
  v.push_back(fixed("chunked(32)", o_chunked(32)));
  v.push_back(fixed("chunked(128)", o_chunked(128)));
  v.push_back(fixed("strided(16)", o_strided(16)));
  v.push_back(fixed("strided(128)", o_strided(128)));
  v.push_back(fixed("dilated(8, 16)", o_dilated(8, 16)));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 17) return std::nullopt;
    return Instance{"global(17)", 1, o_global_n(17)};
  });
  v.push_back(blocks_case(
      16, 1, 1, "{}", [](Rule r) { return r; }, 1));
  v.push_back(blocks_case(
      50, 1, 2, "{}", [](Rule r) { return r; }, 2));
  v.push_back(blocks_case(
      24, 3, 3, "{}", [](Rule r) { return r; }, 3));
  v.push_back(blocks_case(
      128, 1, 1, "{}", [](Rule r) { return r; }, 4));
  return v;
}

std::vector<Factory> composition_cases() {
  std::vector<Factory> v;
  v.push_back(fixed("sliding(8) | sink(4)", o_any({o_sliding(8), o_sink(4)})));
  v.push_back(fixed("sliding(40) | sink(1)", o_any({o_sliding(40), o_sink(1)})));
  v.push_back(fixed("chunked(16) & causal", o_all({o_chunked(16), o_causal()})));
  v.push_back(fixed("chunked(50) & causal", o_all({o_chunked(50), o_causal()})));
  v.push_back(fixed("prefix(20) | causal", o_any({o_prefix(20), o_causal()})));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 34) return std::nullopt;
    return Instance{"window(8) | global(tokens=[0, 5, 33])", 1,
                    o_any({o_window(8, 8), o_global({0, 5, 33})})};
  });
  v.push_back(fixed("dense - sliding(3)", o_minus(o_dense(), o_sliding(3))));
  v.push_back(fixed("causal - sliding(5)", o_minus(o_causal(), o_sliding(5))));
  v.push_back(fixed("causal & strided(7)", o_all({o_causal(), o_strided(7)})));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 34) return std::nullopt;
    return Instance{
        "diagonals([0, 1, 2, 9, -4]) & causal | columns([0, 33])", 1,
        o_any({o_all({o_diagonals({0, 1, 2, 9, -4}), o_causal()}), o_columns({0, 33})})};
  });
  v.push_back(fixed("strided(70) & causal", o_all({o_strided(70), o_causal()})));
  // Precedence: '-' binds tightest, then '&', then '|'.
  v.push_back(fixed("sliding(10) | strided(16) & causal",
                    o_any({o_sliding(10), o_all({o_strided(16), o_causal()})})));
  v.push_back(fixed("(sliding(10) | strided(16)) & causal",
                    o_all({o_any({o_sliding(10), o_strided(16)}), o_causal()})));
  v.push_back(fixed("dilated(4, 3) | sink(2) - window(1)",
                    o_any({o_dilated(4, 3), o_minus(o_sink(2), o_window(1, 1))})));
  v.push_back(fixed("window(20) - dilated(10, 2) & causal",
                    o_all({o_minus(o_window(20, 20), o_dilated(10, 2)), o_causal()})));
  v.push_back(fixed("causal - (sink(3) | sliding(4))",
                    o_minus(o_causal(), o_any({o_sink(3), o_sliding(4)}))));
  v.push_back(
      fixed("dense - causal - sink(2)", o_minus(o_minus(o_dense(), o_causal()), o_sink(2))));
  v.push_back(
      fixed("dense - (causal - sink(2))", o_minus(o_dense(), o_minus(o_causal(), o_sink(2)))));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    if (nk < 2) return std::nullopt;  // global(2) needs two keys
    return Instance{
        "global(2) & window(3, 9) | chunked(30) - strided(4)", 1,
        o_any({o_all({o_global_n(2), o_window(3, 9)}), o_minus(o_chunked(30), o_strided(4))})};
  });
  v.push_back(fixed("(causal | global(1)) & (window(30) | sink(5)) - strided(9)",
                    o_all({o_any({o_causal(), o_global_n(1)}),
                           o_minus(o_any({o_window(30, 30), o_sink(5)}), o_strided(9))})));
  v.push_back(fixed("((sliding(4) | sink(2)) & causal) - (strided(5) - sink(1))",
                    o_minus(o_all({o_any({o_sliding(4), o_sink(2)}), o_causal()}),
                            o_minus(o_strided(5), o_sink(1)))));
  v.push_back(fixed("prefix(7) | causal & window(12, 0)",
                    o_any({o_prefix(7), o_all({o_causal(), o_window(12, 0)})})));
  v.push_back(fixed("chunked(33) - chunked(11) | dilated(2, 40)",
                    o_any({o_minus(o_chunked(33), o_chunked(11)), o_dilated(2, 40)})));
  v.push_back(fixed("strided(5) & strided(3) & window(60)",
                    o_all({o_strided(5), o_strided(3), o_window(60, 60)})));
  v.push_back(fixed("dense - dense | sink(3)", o_any({o_minus(o_dense(), o_dense()), o_sink(3)})));
  v.push_back(fixed("sliding(3) | sink(31)", o_any({o_sliding(3), o_sink(31)})));
  v.push_back(fixed("sink(127) - causal", o_minus(o_sink(127), o_causal())));
  v.push_back(fixed("window(15, 0) & prefix(64)", o_all({o_window(15, 0), o_prefix(64)})));
  v.push_back([](i64, i64 nk) -> std::optional<Instance> {
    const auto l = doc_lengths(nk, {31, 5, 64, 2});
    return Instance{fmt::format("documents(lengths={}) & causal | sink(2)", list_text(l)), 1,
                    o_any({o_all({o_documents(l), o_causal()}), o_sink(2)})};
  });
  // Random inside compositions and per-head patterns (2-4 heads).
  v.push_back(fixed("random(2, block=16) | sliding(16)",
                    o_any({lib("random(2, block=16)"), o_sliding(16)}), 2));
  v.push_back(fixed("random(3, block=32, seed=5) & causal",
                    o_all({lib("random(3, block=32, seed=5)"), o_causal()}), 3));
  v.push_back(fixed("causal - random(1, block=20, seed=9)",
                    o_minus(o_causal(), lib("random(1, block=20, seed=9)")), 2));
  v.push_back(fixed("heads(0..1: sliding(4) | sink(1); 2..3: causal)",
                    o_heads({{{0, 1}, o_any({o_sliding(4), o_sink(1)})}, {{2, 3}, o_causal()}}),
                    4));
  v.push_back(fixed("heads(0: random(2, block=16); 1..2: window(3); 3: dense - causal)",
                    o_heads({{{0}, lib("random(2, block=16)")},
                             {{1, 2}, o_window(3, 3)},
                             {{3}, o_minus(o_dense(), o_causal())}}),
                    4));
  v.push_back(fixed("heads(0, 2: chunked(10) & causal; 1: global(1))",
                    o_heads({{{0, 2}, o_all({o_chunked(10), o_causal()})}, {{1}, o_global_n(1)}}),
                    3));
  v.push_back(fixed("heads(0: causal; 1: dense) | sink(2)",
                    o_any({o_heads({{{0}, o_causal()}, {{1}, o_dense()}}), o_sink(2)}), 2));
  v.push_back(fixed("heads(0..1: causal; 2..3: causal)", o_causal(), 4));
  v.push_back(fixed("heads(0: causal; 1: sliding(2)) & heads(0: sink(3); 1: sliding(5))",
                    o_all({o_heads({{{0}, o_causal()}, {{1}, o_sliding(2)}}),
                           o_heads({{{0}, o_sink(3)}, {{1}, o_sliding(5)}})}),
                    2));
  // Two heads whose patterns print alike once the per-head wrapper is dropped:
  // head 0 is (dense - causal) - sink(1), head 1 is dense - (causal - sink(1)).
  v.push_back(fixed("heads(0: dense - causal; 1: dense) - heads(0: sink(1); 1: causal - sink(1))",
                    o_heads({{{0}, o_minus(o_minus(o_dense(), o_causal()), o_sink(1))},
                             {{1}, o_minus(o_dense(), o_minus(o_causal(), o_sink(1)))}}),
                    2));
  v.push_back(fixed("heads(0: sliding(3) | causal; 1: sliding(3)) & window(2)",
                    o_heads({{{0}, o_all({o_any({o_sliding(3), o_causal()}), o_window(2, 2)})},
                             {{1}, o_all({o_sliding(3), o_window(2, 2)})}}),
                    2));
  v.push_back(
      fixed("heads(0..2: random(1, block=16, seed=4)) | heads(0: sink(2); 1..2: dense - causal)",
            o_any({lib("random(1, block=16, seed=4)"),
                   o_heads({{{0}, o_sink(2)}, {{1, 2}, o_minus(o_dense(), o_causal())}})}),
            3));
  // Explicit block layouts inside compositions, shared and per head.
  v.push_back(blocks_case(
      16, 1, 1, "{} | causal",
      [](Rule r) {
        return o_any({r, o_causal()});
      },
      5));
  v.push_back(blocks_case(
      40, 1, 1, "{} - sliding(2)", [](Rule r) { return o_minus(r, o_sliding(2)); }, 6));
  v.push_back(blocks_case(
      32, 2, 2, "heads(0: {}; 1: causal) & sliding(50)",
      [](Rule r) {
        return o_all({o_heads({{{0}, r}, {{1}, o_causal()}}), o_sliding(50)});
      },
      7));
  return v;
}

// The k-th of the lengths nk - 1, nk, nk + 1, 2 nk and 2^40 (k = 0..4), capped at `cap` (the
// parameter's largest value); nullopt below `min` or when the cap repeats a smaller k.
std::optional<i64> length_near(i64 nk, int k, i64 min = 1, i64 cap = i64{1} << 40) {
  const i64 all[] = {nk - 1, nk, nk + 1, 2 * nk, i64{1} << 40};
  const i64 L = std::min(all[k], cap);
  if (L < min || (k > 0 && std::min(all[k - 1], cap) == L)) return std::nullopt;
  return L;
}

// For each of the five lengths near nk, an instance made from it.
void add_near_nk(std::vector<Factory>& v, i64 min, i64 cap, std::function<Instance(i64 L)> make) {
  for (int k = 0; k < 5; ++k)
    v.push_back([=](i64, i64 nk) -> std::optional<Instance> {
      const std::optional<i64> L = length_near(nk, k, min, cap);
      if (!L) return std::nullopt;
      return make(*L);
    });
}

// Every length parameter at nk - 1, nk, nk + 1, 2 nk and 2^40 (or the parameter's maximum):
// longer than the sequence is valid and follows the rule.
std::vector<Factory> length_cases() {
  std::vector<Factory> v;
  const i64 k31 = i64{1} << 31, k20 = i64{1} << 20;
  add_near_nk(v, 0, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("window({})", L), 1, o_window(L, L)};
  });
  add_near_nk(v, 0, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("window({}, 1)", L), 1, o_window(L, 1)};
  });
  add_near_nk(v, 0, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("window(0, {})", L), 1, o_window(0, L)};
  });
  add_near_nk(v, 1, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("sliding({})", L), 1, o_sliding(L)};
  });
  add_near_nk(v, 0, k31, [](i64 L) {
    return Instance{fmt::format("dilated({}, 1)", L), 1, o_dilated(L, 1)};
  });
  add_near_nk(v, 1, k31, [](i64 L) {
    return Instance{fmt::format("dilated(2, {})", L), 1, o_dilated(2, L)};
  });
  add_near_nk(v, 0, k31, [](i64 L) {
    return Instance{fmt::format("dilated({}, 3)", L), 1, o_dilated(L, 3)};
  });
  add_near_nk(v, 1, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("sink({})", L), 1, o_sink(L)};
  });
  add_near_nk(v, 1, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("prefix({}) | causal", L), 1, o_any({o_prefix(L), o_causal()})};
  });
  add_near_nk(v, 1, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("chunked({})", L), 1, o_chunked(L)};
  });
  add_near_nk(v, 1, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("chunked({}) & causal", L), 1, o_all({o_chunked(L), o_causal()})};
  });
  add_near_nk(v, 1, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("strided({})", L), 1, o_strided(L)};
  });
  add_near_nk(v, 1, i64{1} << 40, [](i64 L) {
    return Instance{fmt::format("sliding({0}) | sink({0}) - strided({0})", L), 1,
                    o_any({o_sliding(L), o_minus(o_sink(L), o_strided(L))})};
  });
  // random: the block and the count (the draw is the library's; its properties are checked in
  // the random test cases below).
  add_near_nk(v, 1, k20, [](i64 L) {
    const std::string leaf = fmt::format("random(2, block={}, seed=3)", L);
    return Instance{leaf, 2, lib(leaf)};
  });
  add_near_nk(v, 1, k20, [](i64 L) {
    const std::string leaf = fmt::format("random({}, block=16)", L);
    return Instance{leaf, 1, lib(leaf)};
  });
  // An empty global list: no global token.
  v.push_back(fixed("global(tokens=[])", o_global({})));
  v.push_back(fixed("sliding(3) | global(tokens=[])", o_sliding(3)));
  // Explicit block layouts with a block longer than the sequence (a 1 x 1 file), 2-D and 3-D.
  for (int k = 0; k < 5; ++k)
    for (const bool two_d : {false, true})
      v.push_back([=](i64 nq, i64 nk) -> std::optional<Instance> {
        const std::optional<i64> L = length_near(std::max(nq, nk), k, 1, k20);
        if (!L) return std::nullopt;
        return blocks_case(
            *L, 1, 2, "{}", [](Rule r) { return r; }, 20 + k, two_d)(nq, nk);
      });
  return v;
}

// (nq, nk): ragged, nq < nk, nq > nk, nq = 1, block multiples. nk - nq = 129 puts query rows one
// position past a tile edge, where off-by-one range arithmetic shows.
const std::vector<std::pair<i64, i64>> kSizes = {{1, 1},     {1, 300},   {300, 1},   {16, 16},
                                                 {37, 300},  {300, 37},  {128, 128}, {129, 257},
                                                 {257, 129}, {300, 300}, {100, 229}, {200, 64}};

// ------------------------------------------------------------------------------------------
// Verification of one BlockLayout against the truth matrix (nq x nk, row-major).
// Returns "" when everything holds, else a description of the first problem found.
// ------------------------------------------------------------------------------------------

std::string verify(const BlockLayout& B, const Geometry& g,
                   const std::vector<std::uint8_t>& truth) {
  const i64 nq = g.nq, nk = g.nk, bq = g.block_q, bk = g.block_k;
  const i64 QB = (nq + bq - 1) / bq, KB = (nk + bk - 1) / bk;
  if (B.nq() != nq || B.nk() != nk || B.block_q() != bq || B.block_k() != bk)
    return "sizes of the layout differ from the geometry";
  if (B.q_blocks() != QB || B.k_blocks() != KB) return "q_blocks/k_blocks wrong";
  const auto row_ptr = B.row_ptr();
  const auto cols = B.col_index();
  const auto masks = B.mask_index();
  if (static_cast<i64>(row_ptr.size()) != QB + 1) return "row_ptr has the wrong length";
  if (row_ptr[0] != 0) return "row_ptr[0] != 0";
  if (row_ptr[QB] != static_cast<i64>(cols.size()) || cols.size() != masks.size())
    return "row_ptr end / col_index / mask_index sizes disagree";
  if (B.mask_row_words() != (bk + 63) / 64) return "mask_row_words wrong";

  // Allowed pairs per tile, from the truth.
  std::vector<i64> tile_count(static_cast<std::size_t>(QB * KB), 0);
  i64 allowed = 0;
  for (i64 i = 0; i < nq; ++i)
    for (i64 j = 0; j < nk; ++j)
      if (truth[i * nk + j]) {
        ++tile_count[(i / bq) * KB + j / bk];
        ++allowed;
      }
  auto area = [&](i64 r, i64 c) {
    return (std::min(nq, (r + 1) * bq) - r * bq) * (std::min(nk, (c + 1) * bk) - c * bk);
  };

  std::vector<std::uint8_t> kept(static_cast<std::size_t>(QB * KB), 0);
  i64 partial = 0, full = 0, computed = 0;
  std::set<std::int32_t> mask_ids;
  for (i64 r = 0; r < QB; ++r) {
    if (row_ptr[r + 1] < row_ptr[r]) return fmt::format("row_ptr decreases at row {}", r);
    for (i64 t = row_ptr[r]; t < row_ptr[r + 1]; ++t) {
      const i64 c = cols[t];
      if (c < 0 || c >= KB) return fmt::format("row {}: column {} out of range", r, c);
      if (t > row_ptr[r] && cols[t - 1] >= c)
        return fmt::format("row {}: columns not strictly increasing ({} then {})", r, cols[t - 1],
                           c);
      kept[r * KB + c] = 1;
      const spattn::Tile tile = B.tile(r, c);
      if (tile.q_begin != r * bq || tile.q_end != std::min(nq, (r + 1) * bq) ||
          tile.k_begin != c * bk || tile.k_end != std::min(nk, (c + 1) * bk))
        return fmt::format("tile({}, {}) has the wrong rectangle", r, c);
      const i64 a = area(r, c), n = tile_count[r * KB + c];
      computed += a;
      if (n == 0) return fmt::format("kept tile ({}, {}) holds no allowed pair", r, c);
      if (masks[t] < 0) {
        if (B.tile_class(t) != spattn::TileClass::Full)
          return "tile_class disagrees with mask_index";
        if (n != a)
          return fmt::format("tile ({}, {}) is Full but only {} of {} pairs are allowed", r, c, n,
                             a);
        ++full;
      } else {
        if (B.tile_class(t) != spattn::TileClass::Partial)
          return "tile_class disagrees with mask_index";
        if (n == a) return fmt::format("tile ({}, {}) is Partial but entirely allowed", r, c);
        if (masks[t] >= B.distinct_masks())
          return fmt::format("mask index {} >= distinct_masks() = {}", masks[t],
                             B.distinct_masks());
        mask_ids.insert(masks[t]);  // equal masks may be shared between tiles
        ++partial;
        // Every bit of the stored mask: allowed pairs set, everything else (denied pairs and the
        // padding beyond a ragged tile) clear.
        const std::uint64_t* m = B.mask(masks[t]);
        for (i64 row = 0; row < bq; ++row)
          for (i64 col = 0; col < 64 * B.mask_row_words(); ++col) {
            const bool bit = (m[row * B.mask_row_words() + col / 64] >> (col % 64)) & 1u;
            const i64 i = r * bq + row, j = c * bk + col;
            const bool want = row < tile.rows() && col < tile.cols() && truth[i * nk + j];
            if (bit != want)
              return fmt::format("tile ({}, {}) mask bit ({}, {}) is {}, expected {}", r, c, row,
                                 col, bit, want);
          }
      }
    }
  }
  for (i64 k = 0; k < QB * KB; ++k)
    if (!kept[k] && tile_count[k] > 0)
      return fmt::format("tile ({}, {}) is not kept but holds {} allowed pairs", k / KB, k % KB,
                         tile_count[k]);
  // Every stored mask is used by some tile, and there are no more masks than partial tiles.
  if (static_cast<i64>(mask_ids.size()) != B.distinct_masks())
    return fmt::format("{} masks stored, {} used", B.distinct_masks(), mask_ids.size());

  i64 want_kept = 0, want_full = 0, want_partial = 0;
  for (i64 k = 0; k < QB * KB; ++k) {
    if (tile_count[k] == 0) continue;
    ++want_kept;
    (tile_count[k] == area(k / KB, k % KB) ? want_full : want_partial)++;
  }
  const spattn::LayoutCounts& cnt = B.counts();
  if (cnt.allowed_pairs != allowed)
    return fmt::format("allowed_pairs {} != brute force {}", cnt.allowed_pairs, allowed);
  if (cnt.computed_pairs != computed)
    return fmt::format("computed_pairs {} != kept tile area {}", cnt.computed_pairs, computed);
  if (cnt.kept_tiles != want_kept || static_cast<i64>(cols.size()) != want_kept)
    return fmt::format("kept_tiles {} (col_index {}) != brute force {}", cnt.kept_tiles,
                       cols.size(), want_kept);
  if (cnt.full_tiles != want_full || full != want_full)
    return fmt::format("full_tiles {} != brute force {}", cnt.full_tiles, want_full);
  if (cnt.partial_tiles != want_partial || partial != want_partial)
    return fmt::format("partial_tiles {} != brute force {}", cnt.partial_tiles, want_partial);

  // BlockLayout::allows for every pair, and outside the matrix.
  for (i64 i = 0; i < nq; ++i)
    for (i64 j = 0; j < nk; ++j)
      if (B.allows(i, j) != static_cast<bool>(truth[i * nk + j]))
        return fmt::format("allows({}, {}) = {}, oracle says {}", i, j, B.allows(i, j),
                           static_cast<bool>(truth[i * nk + j]));
  if (B.allows(-1, 0) || B.allows(0, -1) || B.allows(nq, 0) || B.allows(0, nk))
    return "allows() is true outside the matrix";
  return "";
}

std::vector<std::vector<std::uint8_t>> truth_of(const Rule& rule, const Geometry& g) {
  std::vector<std::vector<std::uint8_t>> t(static_cast<std::size_t>(g.heads));
  for (int h = 0; h < g.heads; ++h) {
    t[h].resize(static_cast<std::size_t>(g.nq * g.nk));
    for (i64 i = 0; i < g.nq; ++i)
      for (i64 j = 0; j < g.nk; ++j) t[h][i * g.nk + j] = rule(g, h, i, j) ? 1 : 0;
  }
  return t;
}

// Checks a whole Layout: every head against its truth, and the summed counts.
std::string verify_layout(const Layout& L, const Geometry& g,
                          const std::vector<std::vector<std::uint8_t>>& truth) {
  if (L.geometry.nq != g.nq || L.geometry.nk != g.nk || L.geometry.heads != g.heads)
    return "Layout::geometry differs";
  if (static_cast<int>(L.head_to_distinct.size()) != g.heads) return "head_to_distinct size";
  spattn::LayoutCounts sum;
  for (int h = 0; h < g.heads; ++h) {
    const int d = L.head_to_distinct[h];
    if (d < 0 || d >= static_cast<int>(L.distinct.size())) return "head_to_distinct out of range";
    const std::string e = verify(L.head(h), g, truth[h]);
    if (!e.empty()) return fmt::format("head {}: {}", h, e);
    sum += L.head(h).counts();
  }
  const spattn::LayoutCounts c = L.counts();
  if (c.allowed_pairs != sum.allowed_pairs || c.computed_pairs != sum.computed_pairs ||
      c.kept_tiles != sum.kept_tiles || c.full_tiles != sum.full_tiles ||
      c.partial_tiles != sum.partial_tiles)
    return "Layout::counts() is not the sum over heads";
  return "";
}

void check_factories(const std::vector<Factory>& factories) {
  for (const Factory& f : factories) {
    for (const auto& [nq, nk] : kSizes) {
      const std::optional<Instance> inst = f(nq, nk);
      if (!inst) continue;
      const PatternPtr pattern = spattn::parse_spec(inst->spec);
      const Geometry base{nq, nk, inst->heads, 16, 16};
      const auto truth = truth_of(inst->rule, base);
      for (int bq : kBlockSizes)
        for (int bk : kBlockSizes) {
          Geometry g = base;
          g.block_q = bq;
          g.block_k = bk;
          const Layout L = spattn::build_layout(*pattern, g);
          const std::string err = verify_layout(L, g, truth);
          INFO("spec: " << inst->spec << "  nq=" << nq << " nk=" << nk << " heads=" << g.heads
                        << " block_q=" << bq << " block_k=" << bk);
          CHECK(err == "");
          CHECK(L.spec == pattern->spec());
          CHECK_FALSE(L.scanned);
          CHECK(L.scanned_part == "");
        }
    }
  }
}

}  // namespace

TEST_CASE("built-in patterns match the brute-force oracle at every tiling",
          "[layout][bruteforce]") {
  check_factories(builtin_cases());
}

TEST_CASE("lengths at and beyond the sequence match the brute-force oracle",
          "[layout][bruteforce][lengths]") {
  check_factories(length_cases());
}

TEST_CASE("a 2-D blocks file is one layout for every head", "[layout][bruteforce][blocks]") {
  for (const i64 b : {16, 24, 64})
    check_factories({blocks_case(
                         b, 1, 3, "{}", [](Rule r) { return r; }, 40, true),
                     blocks_case(
                         b, 1, 2, "{} | sliding(5)",
                         [](Rule r) {
                           return o_any({r, o_sliding(5)});
                         },
                         41, true)});
}

TEST_CASE("compositions match the brute-force oracle at every tiling", "[layout][bruteforce]") {
  check_factories(composition_cases());
}

TEST_CASE("the oracle itself agrees with hand-counted examples", "[layout][bruteforce]") {
  // Guards against an oracle that is wrong in the same way as the library.
  const Geometry g{4, 6, 1, 16, 16};  // p(i) = i + 2
  auto count = [&](const Rule& r) {
    i64 n = 0;
    for (i64 i = 0; i < g.nq; ++i)
      for (i64 j = 0; j < g.nk; ++j) n += r(g, 0, i, j);
    return n;
  };
  CHECK(count(o_causal()) == 3 + 4 + 5 + 6);
  CHECK(count(o_sliding(2)) == 8);
  CHECK(count(o_window(1, 1)) == 3 + 3 + 3 + 2);
  CHECK(count(o_chunked(4)) == 4 + 4 + 2 + 2);  // p = 2,3: keys 0..3; p = 4,5: keys 4,5
  CHECK(count(o_dilated(1, 2)) == 3 + 3 + 2 + 2);
  CHECK(count(o_strided(3)) == 4 * 2);
  CHECK(count(o_global({1})) == 4 + 0);  // p >= 2: only the global column
  CHECK(count(o_documents({2, 4})) == 4 * 4);
  // nq > nk: p(i) = i - 2 runs over -2..2.
  const Geometry g2{5, 3, 1, 16, 16};
  auto count2 = [&](const Rule& r) {
    i64 n = 0;
    for (i64 i = 0; i < g2.nq; ++i)
      for (i64 j = 0; j < g2.nk; ++j) n += r(g2, 0, i, j);
    return n;
  };
  CHECK(count2(o_causal()) == 0 + 0 + 1 + 2 + 3);
  CHECK(count2(o_chunked(2)) == 0 + 0 + 2 + 2 + 1);
  CHECK(count2(o_strided(2)) == 2 + 1 + 2 + 1 + 2);
  CHECK(count2(o_documents({3})) == 0 + 0 + 3 + 3 + 3);
  CHECK(count2(o_window(1, 1)) == 0 + 1 + 2 + 3 + 2);
  CHECK(count2(o_dilated(1, 3)) == 1 + 1 + 1 + 1 + 1);
}

// ------------------------------------------------------------------------------------------
// random: properties of the draw (the rule itself is checked against Pattern::allows above).
// ------------------------------------------------------------------------------------------

namespace {

// For every head and query, the set of key blocks floor(j / b) the layout allows.
// Also checks that each chosen key block is allowed in full (the rule is about whole blocks).
std::vector<std::vector<std::set<i64>>> random_sets(const Layout& L, i64 b, std::string& err) {
  const Geometry& g = L.geometry;
  std::vector<std::vector<std::set<i64>>> out(static_cast<std::size_t>(g.heads));
  for (int h = 0; h < g.heads; ++h) {
    out[h].resize(static_cast<std::size_t>(g.nq));
    for (i64 i = 0; i < g.nq; ++i) {
      i64 n = 0;
      for (i64 j = 0; j < g.nk; ++j)
        if (L.head(h).allows(i, j)) {
          out[h][i].insert(j / b);
          ++n;
        }
      i64 want = 0;
      for (i64 kb : out[h][i]) want += std::min(g.nk, (kb + 1) * b) - kb * b;
      if (n != want && err.empty())
        err = fmt::format("head {} query {}: allowed keys do not form whole key blocks", h, i);
    }
  }
  return out;
}

double log_choose(i64 n, i64 k) {
  return std::lgamma(static_cast<double>(n + 1)) - std::lgamma(static_cast<double>(k + 1)) -
         std::lgamma(static_cast<double>(n - k + 1));
}

}  // namespace

TEST_CASE("random: min(r, K) distinct whole key blocks per query block, per head",
          "[layout][random]") {
  struct RC {
    i64 r, b, seed;
  };
  const RC cases[] = {{1, 16, 0},   {3, 16, 7}, {2, 50, 3}, {5, 32, 1},
                      {100, 32, 0}, {4, 1, 2},  {2, 64, 0}, {7, 10, 12345}};
  const std::pair<i64, i64> sizes[] = {{300, 300}, {257, 129}, {129, 257}, {1, 300}, {300, 37}};
  for (const RC& rc : cases)
    for (const auto& [nq, nk] : sizes)
      for (const auto& [bq, bk] : {std::pair{16, 128}, std::pair{64, 32}}) {
        const int heads = 3;
        const std::string spec = fmt::format("random({}, block={}, seed={})", rc.r, rc.b, rc.seed);
        INFO(spec << " nq=" << nq << " nk=" << nk << " block_q=" << bq << " block_k=" << bk);
        const Geometry g{nq, nk, heads, bq, bk};
        const Layout L = spattn::build_layout(*spattn::parse_spec(spec), g);
        std::string err;
        const auto sets = random_sets(L, rc.b, err);
        CHECK(err == "");
        const i64 K = (nk + rc.b - 1) / rc.b, want = std::min(rc.r, K);
        for (int h = 0; h < heads; ++h) {
          std::map<i64, std::set<i64>> by_block;  // floor(p / b) -> set
          for (i64 i = 0; i < nq; ++i) {
            const i64 p = pos(g, i);
            if (p < 0) {
              if (!sets[h][i].empty())
                err = fmt::format("head {} query {} (p < 0) sees keys", h, i);
              continue;
            }
            if (static_cast<i64>(sets[h][i].size()) != want)
              err = fmt::format("head {} query {}: {} key blocks, expected {}", h, i,
                                sets[h][i].size(), want);
            auto [it, fresh] = by_block.emplace(fdiv(p, rc.b), sets[h][i]);
            if (!fresh && it->second != sets[h][i])
              err = fmt::format("head {} query {}: differs from its query block", h, i);
          }
          CHECK(err == "");
        }
        // Different heads draw differently whenever a coincidence is astronomically unlikely.
        const i64 qblocks =
            fdiv(pos(g, nq - 1), rc.b) - std::max<i64>(0, fdiv(pos(g, 0), rc.b)) + 1;
        if (log_choose(K, want) * static_cast<double>(qblocks) > std::log(1e9)) {
          for (int h = 1; h < heads; ++h) CHECK(sets[h] != sets[0]);
          // And a different seed draws differently too.
          const std::string other =
              fmt::format("random({}, block={}, seed={})", rc.r, rc.b, rc.seed + 1);
          const Layout L2 = spattn::build_layout(*spattn::parse_spec(other), g);
          std::string err2;
          CHECK(random_sets(L2, rc.b, err2) != sets);
        }
      }
}

TEST_CASE("random: each pattern object gets its own draw, whatever was built before",
          "[layout][random]") {
  // Patterns with different parameters are created, built and destroyed in turn, so a new one
  // may live at the address of the previous one; its layout must still be its own.
  BuildOptions one_thread;
  one_thread.threads = 1;
  for (const Geometry& g : {Geometry{64, 64, 1, 16, 16}, Geometry{192, 192, 2, 32, 32}})
    for (int round = 0; round < 30; ++round)
      for (const char* form : {"random(2, block=16, seed={})", "random(5, block=16, seed={})",
                               "random(1, block=32, seed={})"}) {
        const std::string spec = fmt::format(fmt::runtime(form), round % 7);
        const PatternPtr p = spattn::parse_spec(spec);
        const Layout L = spattn::build_layout(*p, g, one_thread);
        INFO(spec << " round " << round << " nq=nk=" << g.nq);
        CHECK(verify_layout(L, g, truth_of(o_library(p), g)) == "");
      }
}

TEST_CASE("random: the draw is uniform over key blocks", "[layout][random]") {
  // 64 heads x 64 query blocks x r = 8 draws over K = 64 key blocks: 512 expected per block.
  const i64 b = 64, K = 64, r = 8;
  const int heads = 64;
  const Geometry g{K * b, K * b, heads, 64, 64};
  const Layout L = spattn::build_layout(*spattn::parse_spec("random(8, seed=99)"), g);
  REQUIRE(L.distinct.size() == static_cast<std::size_t>(heads));
  std::vector<double> hits(K, 0.0);
  for (int h = 0; h < heads; ++h) {
    const BlockLayout& B = L.head(h);
    for (i64 row = 0; row < B.q_blocks(); ++row) {
      REQUIRE(B.row_ptr()[row + 1] - B.row_ptr()[row] == r);  // tiles coincide with key blocks
      for (i64 t = B.row_ptr()[row]; t < B.row_ptr()[row + 1]; ++t) {
        CHECK(B.tile_class(t) == spattn::TileClass::Full);
        hits[B.col_index()[t]] += 1;
      }
    }
  }
  const double expected = static_cast<double>(heads * K * r) / K;
  double chi2 = 0;
  for (double o : hits) {
    CHECK(o > 0.7 * expected);
    CHECK(o < 1.3 * expected);
    chi2 += (o - expected) * (o - expected) / expected;
  }
  // 63 degrees of freedom: mean 63, sd ~11; 150 is far in the tail.
  CHECK(chi2 < 150);
}

// ------------------------------------------------------------------------------------------
// Sharing of layouts between heads.
// ------------------------------------------------------------------------------------------

TEST_CASE("heads with equal head patterns share one BlockLayout", "[layout][heads]") {
  struct D {
    std::string spec;
    int heads;
    std::vector<int> head_to_distinct;
  };
  const D cases[] = {
      {"causal", 4, {0, 0, 0, 0}},
      {"heads(0..1: causal; 2..3: causal)", 4, {0, 0, 0, 0}},
      {"random(2)", 3, {0, 1, 2}},
      {"heads(0: causal; 1: sliding(4); 2: causal)", 3, {0, 1, 0}},
      {"random(2) | causal", 2, {0, 1}},
      {"heads(0..1: random(2); 2..3: causal)", 4, {0, 1, 2, 2}},
      {"heads(0, 2: sink(1) | causal; 1, 3: sink(1) | causal)", 4, {0, 0, 0, 0}},
      {"heads(0: dense - causal; 1: dense) - heads(0: sink(1); 1: causal - sink(1))", 2, {0, 1}},
      {"heads(0: sliding(3) | causal; 1: sliding(3)) & window(2)", 2, {0, 1}},
  };
  for (const D& d : cases) {
    INFO(d.spec);
    const Geometry g{100, 100, d.heads, 32, 32};
    const Layout L = spattn::build_layout(*spattn::parse_spec(d.spec), g);
    CHECK(L.head_to_distinct == d.head_to_distinct);
    CHECK(L.distinct.size() ==
          static_cast<std::size_t>(
              *std::max_element(d.head_to_distinct.begin(), d.head_to_distinct.end()) + 1));
    // Shared layouts are one object, and bytes count each distinct layout once.
    i64 bytes = 0;
    for (const auto& p : L.distinct) bytes += p->counts().bytes;
    CHECK(L.counts().bytes == bytes);
  }
}

// ------------------------------------------------------------------------------------------
// User-defined patterns: only allows() and spec(); the builder scans.
// ------------------------------------------------------------------------------------------

namespace {

class ModFive final : public spattn::Pattern {
 public:
  bool allows(const Geometry&, int, i64 i, i64 j) const override { return (i + 2 * j) % 5 == 0; }
  std::string spec() const override { return "mod5"; }
};
Rule o_mod5() {
  return [](const Geometry&, int, i64 i, i64 j) { return (i + 2 * j) % 5 == 0; };
}

PatternPtr builtin(const std::string& s) {
  return spattn::parse_spec(s);
}

}  // namespace

TEST_CASE("a user-defined pattern (allows + spec only) builds by scanning", "[layout][user]") {
  const PatternPtr mod5 = std::make_shared<ModFive>();
  struct U {
    PatternPtr pattern;
    Rule rule;
    int heads;
  };
  const std::vector<U> cases = {
      {mod5, o_mod5(), 1},
      {spattn::make_union({mod5, builtin("causal")}), o_any({o_mod5(), o_causal()}), 1},
      {spattn::make_intersection({mod5, builtin("sliding(9)")}), o_all({o_mod5(), o_sliding(9)}),
       1},
      {spattn::make_difference(builtin("causal"), mod5), o_minus(o_causal(), o_mod5()), 1},
      {spattn::make_difference(mod5, builtin("sink(3)")), o_minus(o_mod5(), o_sink(3)), 1},
      {spattn::make_per_head({{{{0, 0}}, mod5}, {{{1, 1}}, builtin("causal")}}),
       o_heads({{{0}, o_mod5()}, {{1}, o_causal()}}), 2},
  };
  const std::pair<i64, i64> sizes[] = {{1, 1}, {37, 300}, {300, 37}, {129, 257}, {200, 200}};
  for (const U& u : cases)
    for (const auto& [nq, nk] : sizes)
      for (int bq : kBlockSizes)
        for (int bk : kBlockSizes) {
          const Geometry g{nq, nk, u.heads, bq, bk};
          INFO(u.pattern->spec() << " nq=" << nq << " nk=" << nk << " block_q=" << bq
                                 << " block_k=" << bk);
          const Layout L = spattn::build_layout(*u.pattern, g);
          CHECK(verify_layout(L, g, truth_of(u.rule, g)) == "");
          CHECK(L.scanned);
          CHECK(L.scanned_part == "mod5");
        }
}

TEST_CASE("a registered user pattern is usable from spec strings at once", "[layout][user]") {
  spattn::Registry reg;
  spattn::register_builtins(reg);
  spattn::PatternInfo info;
  info.name = "mod5";
  info.summary = "test pattern";
  info.make = [](const spattn::Args&) { return std::make_shared<ModFive>(); };
  reg.add(info);
  const PatternPtr p = spattn::parse_spec("mod5 | sink(2) - causal", reg);
  CHECK(p->spec() == "mod5 | sink(2) - causal");
  const Geometry g{150, 170, 1, 32, 16};
  const Layout L = spattn::build_layout(*p, g);
  CHECK(verify_layout(L, g, truth_of(o_any({o_mod5(), o_minus(o_sink(2), o_causal())}), g)) == "");
  CHECK(L.scanned);
  CHECK(L.scanned_part == "mod5");
}

TEST_CASE("the builder refuses a scan larger than max_scan_pairs", "[layout][user]") {
  const PatternPtr mod5 = std::make_shared<ModFive>();
  const Geometry g{100, 120, 1, 32, 32};
  BuildOptions opt;
  opt.max_scan_pairs = 100 * 120 - 1;
  CHECK_THROWS_AS(spattn::build_layout(*mod5, g, opt), spattn::BudgetError);
  CHECK_THROWS_WITH(spattn::build_layout(*mod5, g, opt), Catch::Contains("mod5"));
  CHECK_THROWS_AS(spattn::build_layout(*spattn::make_union({builtin("causal"), mod5}), g, opt),
                  spattn::BudgetError);
  CHECK_THROWS_AS(spattn::build_block_layout(*mod5, g, 0, opt), spattn::BudgetError);
  opt.max_scan_pairs = 100 * 120;
  CHECK_NOTHROW(spattn::build_layout(*mod5, g, opt));
  // Built-ins have fast paths and are never refused by the scan limit.
  opt.max_scan_pairs = 1;
  for (const char* s : {"dense", "sliding(4) | sink(1)", "random(2)", "strided(7) & causal",
                        "dense - causal", "global(2)"})
    CHECK_NOTHROW(spattn::build_layout(*builtin(s), g, opt));
}

// ------------------------------------------------------------------------------------------
// Determinism: the result does not depend on the thread count.
// ------------------------------------------------------------------------------------------

namespace {

std::string same_block_layout(const BlockLayout& a, const BlockLayout& b) {
  auto eq = [](auto x, auto y) { return std::equal(x.begin(), x.end(), y.begin(), y.end()); };
  if (!eq(a.row_ptr(), b.row_ptr())) return "row_ptr differs";
  if (!eq(a.col_index(), b.col_index())) return "col_index differs";
  if (!eq(a.mask_index(), b.mask_index())) return "mask_index differs";
  const auto& ca = a.counts();
  const auto& cb = b.counts();
  if (ca.allowed_pairs != cb.allowed_pairs || ca.computed_pairs != cb.computed_pairs ||
      ca.kept_tiles != cb.kept_tiles || ca.full_tiles != cb.full_tiles ||
      ca.partial_tiles != cb.partial_tiles || ca.bytes != cb.bytes)
    return "counts differ";
  if (a.distinct_masks() != b.distinct_masks()) return "distinct_masks differs";
  for (std::int32_t m = 0; m < a.distinct_masks(); ++m)
    if (!std::equal(a.mask(m), a.mask(m) + a.mask_words(), b.mask(m)))
      return fmt::format("mask {} differs", m);
  return "";
}

}  // namespace

TEST_CASE("build_layout gives identical arrays for 1, 2 and 4 threads", "[layout][determinism]") {
  const i64 n = 3000;
  const auto docs = doc_lengths(n, {700, 13, 1000, 1});
  struct P {
    PatternPtr pattern;
    int heads;
  };
  const std::vector<P> cases = {
      {builtin("sliding(100) | sink(4)"), 1},
      {builtin("random(3, block=16, seed=5)"), 2},
      {builtin("heads(0: dilated(5, 7) | global(3); 1: strided(33) & causal)"), 2},
      {builtin(fmt::format("documents(lengths={}) & causal - sliding(2)", list_text(docs))), 1},
      {std::make_shared<ModFive>(), 1},
  };
  for (const P& c : cases)
    for (const auto& [bq, bk] : {std::pair{16, 16}, std::pair{32, 128}}) {
      INFO(c.pattern->spec() << " block_q=" << bq << " block_k=" << bk);
      const Geometry g{n, n, c.heads, bq, bk};
      BuildOptions o1;
      o1.threads = 1;
      const Layout ref = spattn::build_layout(*c.pattern, g, o1);
      for (int threads : {2, 4, 0}) {
        BuildOptions o;
        o.threads = threads;
        const Layout L = spattn::build_layout(*c.pattern, g, o);
        INFO("threads=" << threads);
        REQUIRE(L.distinct.size() == ref.distinct.size());
        CHECK(L.head_to_distinct == ref.head_to_distinct);
        for (std::size_t d = 0; d < L.distinct.size(); ++d)
          CHECK(same_block_layout(*L.distinct[d], *ref.distinct[d]) == "");
      }
    }
}
