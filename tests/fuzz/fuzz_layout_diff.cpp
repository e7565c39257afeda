// fuzz_layout_diff: differential test of the layout builder against Pattern::allows.
//
// Input: 4 header bytes, then a pattern.
//   byte 0: nq = 1 + b % 200          byte 1: nk = 1 + b % 200
//   byte 2: heads = 1 + b % 3, block_q = {16, 32, 64, 128}[(b / 3) % 4],
//           block_k = {16, 32, 64, 128}[(b / 12) % 4]
//   byte 3: odd: the rest of the input is a spec string (parsed as is);
//           even: the rest drives a generator that writes a small spec from the built-ins
//           (every one except blocks(file=...) and deepspeed(file=...)) with small parameters
//           (sometimes huge ones) and
//           the combinators |, &, -, heads(...).
// Missing bytes read as 0. The layout built with build_layout (one thread) must allow exactly
// the pairs Pattern::allows allows, on every head; its counts must match a brute-force count, and
// its tiles must be consistent (sorted columns, Full tiles all allowed, Partial tiles mixed).
// spattn::Error (bad parameters, pattern/geometry mismatch) is fine; anything else is a bug.
// FUZZ_VERBOSE=1 in the environment prints what each input means.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "fuzz_registry.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using i64 = std::int64_t;

constexpr int kBlockSizes[] = {16, 32, 64, 128};

// Reads bytes from the front; 0 once exhausted (so generation always terminates).
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  unsigned next() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::string rest() {
    std::string s(reinterpret_cast<const char*>(data_) + pos_, size_ - pos_);
    pos_ = size_;
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_, pos_ = 0;
};

// Writes a random spec of bounded depth from the input bytes.
class Generator {
 public:
  Generator(Bytes& in, const spattn::Geometry& g) : in_(in), g_(g) {}

  std::string expr(int depth) {
    constexpr unsigned kLeaves = 28, kCombinators = 4;
    const unsigned c = in_.next() % (depth >= 4 ? kLeaves : kLeaves + kCombinators);
    switch (c) {
      case 0:
        return "dense";
      case 1:
        return "causal";
      case 2:
        return "window(" + num(0, kTok) + ")";
      case 3:
        return "window(" + num(0, kTok) + ", " + num(0, kTok) + ")";
      case 4:
        return "sliding(" + num(1, kTok) + ")";
      case 5:
        return "dilated(" + num(0, i64{1} << 31) + ", " + num(1, i64{1} << 31) + ")";
      case 6:
        return "global(" + num(1, kTok) + ")";
      case 7:
        return "global(tokens=" + tokens() + ")";
      case 8:
        return "sink(" + num(1, kTok) + ")";
      case 9:
        return "prefix(" + num(1, kTok) + ")";
      case 10:
        return "chunked(" + num(1, kTok) + ")";
      case 11:
        return "documents(lengths=" + lengths() + ")";
      case 12:
        return "strided(" + num(1, kTok) + ")";
      case 13:
        return "random(" + std::to_string(1 + in_.next() % 8) + ", block=" + num(1, i64{1} << 20) +
               ", seed=" + std::to_string(in_.next()) + ")";
      // The published families (small parameters; the ds_* ones need nq = nk, a multiple of
      // their block, so small blocks make valid geometries common).
      case 14:
        return "st_strided(" + num(1, kTok) + ")";
      case 15:
        return "st_fixed(" + num(1, 64) + ", " + num(1, 64) +
               ", num_verts=" + std::to_string(1 + in_.next() % 3) + ")";
      case 16:
        return "longformer(" + std::to_string(2 * (1 + in_.next() % 64)) + ", global=" + tokens() +
               ")";
      case 17:
        return "longformer_dilated(" + num(1, i64{1} << 31) + ", d=" + num(1, 64) +
               ", autoregressive=" + flag() + ")";
      case 18:
        return "streaming(sink=" + num(0, kTok) + ", recent=" + num(1, kTok) + ")";
      case 19:
        return "phi3_blocksparse(" + num(1, 16) + ", " + num(1, 16) + ", block_size=" + num(1, 64) +
               ", homo_head=" + flag() + ")";
      case 20:
        return "bigbird(block=" + num(1, 64) +
               ", window=" + std::to_string(1 + 2 * (in_.next() % 3)) +
               ", global=" + std::to_string(in_.next() % 4) +
               ", random=" + std::to_string(in_.next() % 4) +
               ", seed=" + std::to_string(in_.next()) +
               ", plan=" + (in_.next() % 2 ? "\"full\"" : "\"hf\"") + ")";
      case 21:
        return "ds_fixed(block=" + ds_block() +
               ", different_layout_per_head=" + (in_.next() % 2 ? "true" : "1") +
               ", num_local_blocks=" + std::to_string(2 * (1 + in_.next() % 3)) +
               ", num_global_blocks=" + std::to_string(1 + in_.next() % 2) +
               ", num_different_global_patterns=" + std::to_string(1 + in_.next() % 2) +
               ", attention=" + direction() + ")";
      case 22:
        return "ds_variable(block=" + ds_block() + ", num_random_blocks=" + num(0, i64{1} << 20) +
               ", local_window_blocks=[" + std::to_string(1 + in_.next() % 3) + ", " +
               std::to_string(1 + in_.next() % 3) + "], global_block_indices=[0, " +
               std::to_string(2 + in_.next() % 8) + "], attention=" + direction() + ")";
      case 23:
        return "ds_bigbird(block=" + ds_block() + ", num_random_blocks=" + num(0, i64{1} << 20) +
               ", num_sliding_window_blocks=" + num(0, kTok) +
               ", num_global_blocks=" + num(0, kTok) + ", attention=" + direction() + ")";
      case 24:
        return "ds_bslongformer(block=" + ds_block() +
               ", num_sliding_window_blocks=" + num(0, kTok) + ", global_block_indices=[" +
               std::to_string(in_.next() % 6) + "], attention=" + direction() + ")";
      case 25:
        return "ds_local(block=" + ds_block() + ", num_sliding_window_blocks=" + num(0, kTok) +
               ", attention=" + direction() + ")";
      case 26:
        return "columns(" + tokens() + ")";
      case 27:
        return "diagonals(" + offsets() + ")";
      case 28:
        return "(" + expr(depth + 1) + " | " + expr(depth + 1) + ")";
      case 29:
        return "(" + expr(depth + 1) + " & " + expr(depth + 1) + ")";
      case 30:
        return "(" + expr(depth + 1) + " - " + expr(depth + 1) + ")";
      default:
        return heads(depth);
    }
  }

 private:
  static constexpr i64 kTok = i64{1} << 40;  // kMaxTokens, the bound of most parameters

  // A parameter in [lo, hi]: mostly lo + byte (the geometry is at most 200), sometimes a special
  // value (the top of the range, around 2^31 and 2^32, around the geometry's limits), to exercise
  // overflow handling in the fast paths.
  std::string num(i64 lo, i64 hi) {
    const unsigned b = in_.next();
    if (b < 240) return std::to_string(std::min(lo + b, hi));
    const i64 big[] = {hi,           hi - 1,  hi / 2, i64{1} << 31, (i64{1} << 31) - 1,
                       i64{1} << 32, 1000003, 65536,  4096,         255,
                       256,          257,     512,    199,          200,
                       201};
    return std::to_string(std::max(lo, std::min(hi, big[b - 240])));
  }
  // A DeepSpeed block size: one that divides nk when one of 1..8 does, else 1..8.
  std::string ds_block() {
    const i64 b = 1 + in_.next() % 8;
    return std::to_string(g_.nk % b == 0 ? b : 1);
  }
  std::string direction() { return in_.next() % 2 ? "\"unidirectional\"" : "\"bidirectional\""; }
  // A boolean in either spelling.
  std::string flag() {
    static const char* const kWords[] = {"0", "1", "false", "true"};
    return kWords[in_.next() % 4];
  }
  // Up to 4 distinct global positions (none at times), mostly inside [0, nk).
  std::string tokens() {
    std::set<i64> t;
    const unsigned n = in_.next() % 5;
    for (unsigned k = 0; k < n; ++k) t.insert(in_.next());
    std::string s = "[";
    for (i64 v : t) s += (s.size() > 1 ? ", " : "") + std::to_string(v);
    return s + "]";
  }
  // Up to 6 distinct offsets p - j, either sign, mostly within the geometry's, some beyond.
  std::string offsets() {
    std::set<i64> t;
    const unsigned n = in_.next() % 7;
    for (unsigned k = 0; k < n; ++k) {
      const unsigned b = in_.next();
      t.insert(b >= 250 ? (b % 2 ? kTok : -kTok) : static_cast<i64>(b) - 125);
    }
    std::string s = "[";
    for (i64 v : t) s += (s.size() > 1 ? ", " : "") + std::to_string(v);
    return s + "]";
  }
  // 1..4 document lengths adding up to nk (the last one takes the rest), or, when the first
  // byte says so, whatever the bytes give (usually a mismatch, which check() must refuse).
  std::string lengths() {
    const unsigned mode = in_.next();
    const unsigned n = 1 + mode % 4;
    std::vector<i64> len;
    i64 left = g_.nk;
    for (unsigned k = 0; k + 1 < n && left > 1; ++k) {
      const i64 l = 1 + static_cast<i64>(in_.next()) % (left - 1);
      len.push_back(l);
      left -= l;
    }
    len.push_back(left);
    if (mode >= 248) len.back() += 1 + mode % 3;  // deliberately wrong sum
    std::string s = "[";
    for (i64 v : len) s += (s.size() > 1 ? ", " : "") + std::to_string(v);
    return s + "]";
  }
  // heads(...) over exactly the geometry's heads: each head joins one of up to `heads` groups.
  std::string heads(int depth) {
    std::vector<std::vector<int>> groups(g_.heads);
    for (int h = 0; h < g_.heads; ++h) groups[in_.next() % g_.heads].push_back(h);
    std::string s = "heads(";
    bool first = true;
    for (const auto& grp : groups) {
      if (grp.empty()) continue;
      if (!first) s += "; ";
      first = false;
      for (std::size_t k = 0; k < grp.size(); ++k) s += (k ? "," : "") + std::to_string(grp[k]);
      s += ": " + expr(depth + 1);
    }
    return s + ")";
  }

  Bytes& in_;
  const spattn::Geometry& g_;
};

[[noreturn]] void fail(const std::string& spec, const spattn::Geometry& g, const char* what,
                       const std::string& detail) {
  std::fprintf(stderr, "fuzz_layout_diff: %s\n  spec:     %s\n  geometry: %s\n  detail:   %s\n",
               what, spec.c_str(), g.describe().c_str(), detail.c_str());
  std::abort();
}

// FUZZ_VERBOSE=1 prints each input's geometry, spec and outcome (to see what a seed or a
// reproducer means).
bool verbose() {
  static const bool v = std::getenv("FUZZ_VERBOSE") != nullptr;
  return v;
}

std::string at(int h, i64 i, i64 j) {
  return "head " + std::to_string(h) + ", query " + std::to_string(i) + ", key " +
         std::to_string(j);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  spattn::Geometry g;
  g.nq = 1 + in.next() % 200;
  g.nk = 1 + in.next() % 200;
  const unsigned shape = in.next();
  g.heads = 1 + static_cast<int>(shape % 3);
  g.block_q = kBlockSizes[(shape / 3) % 4];
  g.block_k = kBlockSizes[(shape / 12) % 4];
  const bool text = in.next() % 2 == 1;
  const std::string spec = text ? in.rest() : Generator(in, g).expr(0);

  spattn::PatternPtr p;
  spattn::Layout layout;
  try {
    p = spattn::parse_spec(spec, spattn::fuzz::fuzz_registry());
    spattn::BuildOptions opt;
    opt.threads = 1;
    opt.max_layout_bytes = i64{1} << 28;
    layout = spattn::build_layout(*p, g, opt);
  } catch (const spattn::Error& e) {
    if (verbose())
      std::fprintf(stderr, "%s | %s: refused: %s\n", g.describe().c_str(), spec.c_str(), e.what());
    return 0;  // malformed spec, bad parameter or pattern/geometry mismatch: fine
  }
  if (verbose())
    std::fprintf(stderr, "%s | %s: %lld allowed pairs\n", g.describe().c_str(), spec.c_str(),
                 static_cast<long long>(layout.counts().allowed_pairs));
  if (layout.spec != p->spec())
    fail(spec, g, "Layout::spec is not the pattern's canonical spec", layout.spec);
  if (static_cast<int>(layout.head_to_distinct.size()) != g.heads)
    fail(spec, g, "head_to_distinct has the wrong size",
         std::to_string(layout.head_to_distinct.size()));

  i64 allowed_total = 0;
  std::vector<char> truth(static_cast<std::size_t>(g.nq * g.nk));
  for (int h = 0; h < g.heads; ++h) {
    const spattn::BlockLayout& bl = layout.head(h);
    if (bl.nq() != g.nq || bl.nk() != g.nk || bl.block_q() != g.block_q ||
        bl.block_k() != g.block_k || bl.q_blocks() != g.q_blocks())
      fail(spec, g, "BlockLayout has the wrong geometry", "head " + std::to_string(h));
    i64 allowed = 0;
    for (i64 i = 0; i < g.nq; ++i)
      for (i64 j = 0; j < g.nk; ++j) {
        const bool want = p->allows(g, h, i, j);
        truth[static_cast<std::size_t>(i * g.nk + j)] = want;
        allowed += want;
        if (bl.allows(i, j) != want)
          fail(spec, g, want ? "layout denies an allowed pair" : "layout allows a denied pair",
               at(h, i, j));
      }
    allowed_total += allowed;
    const spattn::LayoutCounts& c = bl.counts();
    if (c.allowed_pairs != allowed)
      fail(spec, g, "BlockLayout::counts().allowed_pairs differs from the brute-force count",
           "head " + std::to_string(h) + ": " + std::to_string(c.allowed_pairs) + " vs " +
               std::to_string(allowed));

    // Tile structure: sorted columns in range, Full tiles entirely allowed, Partial tiles mixed,
    // and no allowed pair outside the kept tiles (covered by the pair check above).
    const auto row_ptr = bl.row_ptr();
    const auto cols = bl.col_index();
    const auto masks = bl.mask_index();
    if (cols.size() != masks.size() || row_ptr.back() != static_cast<i64>(cols.size()))
      fail(spec, g, "CSR arrays disagree in length", "head " + std::to_string(h));
    i64 kept = 0, full = 0, partial = 0, computed = 0;
    for (i64 r = 0; r < bl.q_blocks(); ++r)
      for (i64 t = row_ptr[r]; t < row_ptr[r + 1]; ++t) {
        const i64 col = cols[t];
        if (col < 0 || col >= bl.k_blocks() || (t > row_ptr[r] && cols[t - 1] >= col))
          fail(spec, g, "col_index is not strictly increasing within [0, k_blocks)",
               "head " + std::to_string(h) + ", row " + std::to_string(r));
        if (masks[t] >= bl.distinct_masks())
          fail(spec, g, "mask_index out of range", "head " + std::to_string(h));
        const spattn::Tile tile = bl.tile(r, col);
        i64 n = 0;
        for (i64 i = tile.q_begin; i < tile.q_end; ++i)
          for (i64 j = tile.k_begin; j < tile.k_end; ++j)
            n += truth[static_cast<std::size_t>(i * g.nk + j)];
        ++kept;
        computed += tile.area();
        if (bl.tile_class(t) == spattn::TileClass::Full) {
          ++full;
          if (n != tile.area())
            fail(spec, g, "a Full tile holds denied pairs",
                 "head " + std::to_string(h) + ", tile " + std::to_string(r) + "," +
                     std::to_string(col));
        } else {
          ++partial;
          if (n == 0 || n == tile.area())
            fail(spec, g, "a Partial tile is all allowed or all denied",
                 "head " + std::to_string(h) + ", tile " + std::to_string(r) + "," +
                     std::to_string(col));
        }
      }
    if (c.kept_tiles != kept || c.full_tiles != full || c.partial_tiles != partial ||
        c.computed_pairs != computed)
      fail(spec, g, "tile counts differ from the tiles",
           "head " + std::to_string(h) + ": kept " + std::to_string(c.kept_tiles) + " vs " +
               std::to_string(kept) + ", full " + std::to_string(c.full_tiles) + " vs " +
               std::to_string(full) + ", partial " + std::to_string(c.partial_tiles) + " vs " +
               std::to_string(partial) + ", computed " + std::to_string(c.computed_pairs) + " vs " +
               std::to_string(computed));
  }
  if (layout.counts().allowed_pairs != allowed_total)
    fail(spec, g, "Layout::counts().allowed_pairs differs from the brute-force count",
         std::to_string(layout.counts().allowed_pairs) + " vs " + std::to_string(allowed_total));
  return 0;
}
