// Lengths longer than the sequence: every family at lengths up to 2^40 over long sequences
// (analytic, never scanned, counts equal to the hand-computed rule), DeepSpeed and BigBird block
// counts beyond the blocks there are, 2-D blocks files and their shape errors, and the default
// experiment (experiments/scaling.toml) running every pattern from its first N.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace {

using i64 = std::int64_t;
using Catch::Matchers::Contains;
using spattn::Geometry;

constexpr i64 kHuge = i64{1} << 40;

// Allowed pairs of an n x n (nq = nk) causal mask, and of a mask causal at the level of
// b-token blocks (query block r sees key blocks 0..r, n a multiple of b).
i64 causal_pairs(i64 n) {
  return n * (n + 1) / 2;
}
i64 block_causal_pairs(i64 n, i64 b) {
  const i64 nb = n / b;
  return b * b * nb * (nb + 1) / 2;
}
// Pairs with |p - j| <= reach and (p - j) mod d == 0, p and j in 0..n-1.
i64 dilated_pairs(i64 n, i64 reach, i64 d) {
  i64 total = n;  // p == j
  for (i64 diff = d; diff < n && diff <= reach; diff += d) total += 2 * (n - diff);
  return total;
}

// The repository root: the nearest directory above the test binary or the working directory
// that holds experiments/scaling.toml.
std::filesystem::path repo_root() {
  std::vector<std::filesystem::path> starts = {std::filesystem::current_path()};
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) starts.push_back(exe.parent_path());
  for (std::filesystem::path dir : starts)
    for (; !dir.empty(); dir = dir.parent_path()) {
      if (std::filesystem::is_regular_file(dir / "experiments" / "scaling.toml")) return dir;
      if (dir == dir.parent_path()) break;
    }
  return {};
}

}  // namespace

TEST_CASE("lengths up to 2^40 build analytically over long sequences and follow their rules",
          "[lengths]") {
  // nq = nk = 2^16 on 128 x 128 tiles: a scan would be 2^32 pairs; the fast paths keep the
  // build proportional to the kept tiles. Each count is the rule's, computed by hand.
  const i64 n = i64{1} << 16;
  const i64 all = n * n, causal = causal_pairs(n);
  struct Case {
    std::string spec;
    i64 allowed;
  };
  const std::string H = std::to_string(kHuge);
  const std::vector<Case> cases = {
      {"sliding(" + H + ")", causal},
      {"window(" + H + ")", all},
      {"window(" + H + ", 0)", causal},
      {"window(0, " + H + ")", causal},
      {"chunked(" + H + ")", all},
      {"chunked(" + H + ") & causal", causal},
      {"strided(" + H + ")", n},
      {"strided(" + H + ") & causal | sink(3)", n + 3 * n - 3},
      {"dilated(2147483648, 512)", dilated_pairs(n, kHuge, 512)},
      {"dilated(2147483648, 1)", all},
      {"sink(" + H + ")", all},
      {"prefix(" + H + ") | causal", all},
      {"st_strided(" + H + ")", causal},
      {"st_fixed(" + H + ", " + H + ")", causal},
      {"st_fixed(" + H + ", 5)", causal},
      {"streaming(sink=" + H + ", recent=1)", causal},
      {"streaming(sink=0, recent=" + H + ")", causal},
      {"mistral_swa(" + H + ")", causal},
      {"llama4_chunked(" + H + ")", causal},
      {"longformer(" + H + ")", all},
      {"longformer(" + H + ", global=[])", all},
      {"longformer_dilated(2147483648, d=512, autoregressive=true)",
       (dilated_pairs(n, kHuge, 512) + n) / 2},
      {"phi3_blocksparse(1048576, 1048576, block_size=1048576)", causal},
      {"phi3_blocksparse(1048576, 3, block_size=16, homo_head=true)", causal},
      {"random(1048576, block=1048576, seed=2)", all},
      {"random(1048576, block=64)", all},
      {"bigbird(block=1048576)", all},
      {"bigbird(block=16, window=1048575, global=1048576, random=65536)", all},
      {"ds_local(block=16, num_sliding_window_blocks=" + H + ")", block_causal_pairs(n, 16)},
      {"ds_local(block=16, num_sliding_window_blocks=" + H + ", attention=\"bidirectional\")", all},
      {"ds_bslongformer(block=16, num_sliding_window_blocks=" + H + ")", all},
      {"ds_bigbird(block=16, num_random_blocks=1048576, num_sliding_window_blocks=" + H +
           ", num_global_blocks=" + H + ")",
       all},
      {"ds_bigbird(block=16, num_random_blocks=1048576, num_sliding_window_blocks=1, "
       "num_global_blocks=0, attention=\"unidirectional\")",
       block_causal_pairs(n, 16)},
      {"ds_variable(block=16, num_random_blocks=1048576)", all},
      {"ds_fixed(block=16, num_local_blocks=" + H + ", num_global_blocks=" + H + ")", all},
      // Offsets beyond the sequence keep nothing; offset o holds n - |o| pairs. Three pairs are
      // in both parts of the union (key 65535 from positions 65532..65534).
      {"diagonals([-" + H + ", 0, 1, 65535, 65536, " + H + "])", n + (n - 1) + 1},
      {"diagonals([-3, -2, -1]) | columns([0, 65535])", (3 * n - 6) + 2 * n - 3},
  };
  for (const Case& c : cases) {
    INFO(c.spec);
    const spattn::PatternPtr p = spattn::parse_spec(c.spec);
    CHECK(spattn::parse_spec(p->spec())->spec() == p->spec());
    const spattn::Layout L = spattn::build_layout(*p, Geometry{n, n, 1, 128, 128});
    CHECK_FALSE(L.scanned);
    CHECK(L.counts().allowed_pairs == c.allowed);
  }
  // One query at the end of 2^22 keys sees every key through a window of 2^40.
  const i64 nk = i64{1} << 22;
  for (const std::string& spec :
       {"sliding(" + H + ")", "mistral_swa(" + H + ")", "llama4_chunked(" + H + ")",
        "streaming(sink=0, recent=" + H + ")"}) {
    INFO(spec);
    const spattn::Layout L =
        spattn::build_layout(*spattn::parse_spec(spec), Geometry{1, nk, 2, 16, 128});
    CHECK_FALSE(L.scanned);
    CHECK(L.counts().allowed_pairs == 2 * nk);
  }
}

TEST_CASE("DeepSpeed and BigBird block counts beyond the blocks follow the clipped rule",
          "[lengths][deepspeed][bigbird]") {
  // Pair by pair against the rule restated here: at nb blocks, a window, global or random count
  // of at least nb covers every block it may (uni: every block at or below the query's).
  for (const i64 nb : {1, 2, 3, 7}) {
    const i64 n = nb * 16;
    struct Case {
      std::string spec;
      std::function<bool(i64 rb, i64 kb)> cell;
    };
    auto any = [](i64, i64) { return true; };
    auto lower = [](i64 rb, i64 kb) { return kb <= rb; };
    const std::vector<Case> cases = {
        {fmt::format("ds_local(block=16, num_sliding_window_blocks={})", 2 * nb + 1), lower},
        {fmt::format("ds_local(block=16, num_sliding_window_blocks={}, "
                     "attention=\"bidirectional\")",
                     2 * nb - 1),
         any},
        {fmt::format("ds_bslongformer(block=16, num_sliding_window_blocks={}, "
                     "global_block_indices=[])",
                     2 * nb + 1),
         any},
        {fmt::format("ds_bigbird(block=16, num_random_blocks=0, num_sliding_window_blocks=1, "
                     "num_global_blocks={})",
                     nb + 1),
         any},
        {fmt::format("ds_bigbird(block=16, num_random_blocks={}, num_sliding_window_blocks=0, "
                     "num_global_blocks=0)",
                     nb),
         any},
        {fmt::format("ds_bigbird(block=16, num_random_blocks={}, num_sliding_window_blocks=0, "
                     "num_global_blocks=0, attention=\"unidirectional\")",
                     nb + 5),
         lower},
        {fmt::format("ds_variable(block=16, num_random_blocks={}, global_block_indices=[])",
                     nb + 1),
         any},
        // Fewer blocks than num_global_blocks: the last group is every block.
        {fmt::format("ds_fixed(block=16, num_local_blocks={0}, num_global_blocks={0})", nb + 1),
         any},
        {fmt::format("ds_fixed(block=16, num_local_blocks={0}, num_global_blocks={0}, "
                     "attention=\"unidirectional\")",
                     nb + 1),
         any},
        {fmt::format("bigbird(block=16, window={}, global=0, random=0)", 2 * nb + 1), any},
        {"bigbird(block=" + std::to_string(n + 1) + ")", any},
    };
    for (const Case& c : cases) {
      for (const int tile : {16, 32, 64}) {
        INFO(c.spec << " at nb = " << nb << ", tiles " << tile);
        const spattn::PatternPtr p = spattn::parse_spec(c.spec);
        const Geometry g{n, n, 2, tile, tile};
        const spattn::Layout L = spattn::build_layout(*p, g);
        i64 mismatches = 0, want = 0;
        for (int h = 0; h < 2; ++h)
          for (i64 i = 0; i < n; ++i)
            for (i64 j = 0; j < n; ++j) {
              const bool w = c.cell(i / 16, j / 16);
              want += w;
              mismatches += (L.head(h).allows(i, j) != w) + (p->allows(g, h, i, j) != w);
            }
        CHECK(mismatches == 0);
        CHECK(L.counts().allowed_pairs == want);
      }
    }
  }
}

TEST_CASE("blocks(file=...) takes a 2-D [q_blocks, k_blocks] file and names other shapes",
          "[lengths][blocks][npy]") {
  const spattn::test::TempDir dir("spattn_lengths");
  auto write = [&](const std::string& name, const std::vector<std::int64_t>& shape) {
    i64 size = 1;
    for (const i64 s : shape) size *= s;
    std::vector<std::uint8_t> cells(static_cast<std::size_t>(size));
    for (std::size_t k = 0; k < cells.size(); ++k) cells[k] = (k * 5) % 3 == 0;
    const std::string path = dir.file(name);
    spattn::write_npy(path, "|u1", shape, cells.data(), cells.size());
    return std::make_pair(path, cells);
  };
  // [3, 4] cells of 16 tokens: nq in 33..48, nk in 49..64; every head uses the same cells.
  const auto [two, cells] = write("two.npy", {3, 4});
  const spattn::PatternPtr p =
      spattn::parse_spec(fmt::format("blocks(file=\"{}\", block=16)", two));
  CHECK_FALSE(p->depends_on_head());
  for (const auto& [nq, nk] : {std::pair<i64, i64>{48, 64}, {33, 50}}) {
    const Geometry g{nq, nk, 3, 16, 32};
    const spattn::Layout L = spattn::build_layout(*p, g);
    CHECK(L.distinct.size() == 1);
    i64 mismatches = 0;
    for (int h = 0; h < 3; ++h)
      for (i64 i = 0; i < nq; ++i)
        for (i64 j = 0; j < nk; ++j) {
          const bool want = cells[static_cast<std::size_t>(i / 16 * 4 + j / 16)] != 0;
          mismatches += (L.head(h).allows(i, j) != want) + (p->allows(g, h, i, j) != want);
        }
    CHECK(mismatches == 0);
  }
  // Wrong sizes name the file's shape and the two shapes the geometry needs.
  CHECK_THROWS_WITH(spattn::build_layout(*p, Geometry{64, 64, 2, 16, 16}),
                    Contains("has shape [3, 4], but nq = 64, nk = 64, heads = 2 with block = 16 "
                             "need [4, 4] or [1 or 2, 4, 4]"));
  // A block longer than the sequence: a [1, 1] file.
  const auto [one, one_cell] = write("one.npy", {1, 1});
  const spattn::PatternPtr big =
      spattn::parse_spec(fmt::format("blocks(file=\"{}\", block=4096)", one));
  CHECK(one_cell[0] == 1);
  CHECK(spattn::build_layout(*big, Geometry{100, 1000, 1, 64, 64}).counts().allowed_pairs ==
        100 * 1000);
  // Rank 1 and rank 4 are refused when the spec is parsed, naming the shape.
  const std::string r1 = write("r1.npy", {12}).first;
  CHECK_THROWS_WITH(spattn::parse_spec(fmt::format("blocks(file=\"{}\")", r1)),
                    Contains("has shape [12] (rank 1); expected [q_blocks, k_blocks]"));
  const std::string r4 = write("r4.npy", {1, 2, 3, 2}).first;
  CHECK_THROWS_WITH(spattn::parse_spec(fmt::format("blocks(file=\"{}\")", r4)),
                    Contains("has shape [1, 2, 3, 2] (rank 4)"));
  const std::string empty = dir.file("empty.npy");
  spattn::write_npy(empty, "|u1", {0, 4}, cells.data(), 0);
  CHECK_THROWS_WITH(spattn::parse_spec(fmt::format("blocks(file=\"{}\")", empty)),
                    Contains("empty dimension in shape [0, 4]"));
}

TEST_CASE("experiments/scaling.toml runs every pattern at every N from 1K", "[lengths][toml]") {
  const std::filesystem::path root = repo_root();
  INFO("looked for experiments/scaling.toml above " << std::filesystem::current_path());
  REQUIRE_FALSE(root.empty());
  const spattn::experiments::Experiment e =
      spattn::experiments::load_experiment(root / "experiments" / "scaling.toml");
  const std::vector<spattn::experiments::SweepPoint> points =
      spattn::experiments::expand_points(e, false);
  bool has_long_window = false;
  for (const spattn::experiments::PatternEntry& pattern : e.patterns) {
    INFO("pattern " << pattern.name);
    CHECK(pattern.min_n == 0);
    std::set<i64> ns;
    for (const auto& pt : points)
      if (pt.pattern.name == pattern.name) ns.insert(pt.n);
    for (const i64 n : e.axes.ints("seq_len")) {
      INFO("seq_len " << n);
      CHECK(ns.count(n) == (pattern.max_n == 0 || n <= pattern.max_n ? 1u : 0u));
    }
    CHECK(ns.count(1024) == 1);
    has_long_window = has_long_window || pattern.spec == "sliding(4096)";
  }
  // sliding(4096), longer than the first sizes, predicts (builds its layout) at 1K and 2K.
  REQUIRE(has_long_window);
  for (const auto& pt : points) {
    if (pt.pattern.spec != "sliding(4096)" || pt.n > 2048) continue;
    INFO("N = " << pt.n);
    const spattn::experiments::PreparedPoint prep = spattn::experiments::prepare_point(pt);
    // Causal below the window: every head and batch sees n(n + 1) / 2 pairs.
    CHECK(prep.figures.allowed_pairs == causal_pairs(pt.n) * pt.heads * pt.batch);
  }
}
