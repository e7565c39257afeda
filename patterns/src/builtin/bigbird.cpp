// bigbird(block=64, window=3, global=2, random=3, seed=0, plan="hf"): BigBird's ITC block-sparse
// layout as Hugging Face transformers builds it (BigBirdBlockSparseAttention), which follows
// google-research/bigbird.
//
// Blocks are over token positions: query block Q = floor(p(i)/b), key block K = floor(j/b),
// nb = ceil(nk/b) blocks (a ragged last block is what HF's _pad_to_block_size gives: the padded
// keys are masked, the padded queries dropped). Sequences of nk <= P*b tokens, P = g + w + 2r
// blocks, are dense: HF's BigBirdModel switches to original_full there. Otherwise:
//   - global rows and columns: the first ceil(g/2) and the last floor(g/2) blocks (g = 2: the
//     first and the last block, HF's q[0]/q[-1] rows and its k[0]/k[-1] keys in every row);
//   - the band: |Q - K| <= (w - 1)/2 (w = 3: HF's sliding keys, which for rows 1 and nb-2 are
//     blocks 0..2 and nb-3..nb-1);
//   - random: each non-global row draws min(r, C) key blocks uniformly without replacement from
//     C candidates, the blocks of [0, E) that are not global (relative to E: the first ceil(g/2)
//     and the last floor(g/2) of [0, E)), not in the row's band, and, for row 1, not E-2, for
//     row E-2, not 1 (HF's _get_single_block_row_attention). E is the end of the range HF draws
//     from: plan="hf" uses HF's _get_rand_attn_plan, which for every sparse length draws from the
//     first P = g + w + 2r blocks only; plan="full" draws from all nb blocks (a single-part plan).
// The draw is a counter-based hash of (seed, head, Q), so it does not depend on the thread count,
// and with plan="hf" not on the sequence length either.
//
// plan="legacy" is the generator HF switches to for sequences padded to exactly 1024, 3072 or
// 4096 tokens (_bigbird_block_rand_mask(max_len, max_len, b, b, r, last_idx=1024), "old plans
// used in paper"): the draw is made for a max_len-token sequence, candidates run up to block
// 1024/b - 1 with their own per-row slices, and at 1024 tokens they include the last (global)
// block, which HF then attends twice (the pair set is the same; its softmax weight is not).
// Not reproduced: HF's eval mode, which points every random slot at block 0: the pairs of
// random=0, but HF's softmax then counts block 0's keys r+1 times, which no mask expresses.
#include <array>

#include "counter_hash.hpp"
#include "leaf.hpp"

namespace spattn::builtin {
namespace {

// Distinguishes bigbird's draws from random()'s for the same seed.
constexpr std::uint64_t kSalt = 0xb16b12d5eed00001ull;

class BigBird final : public Leaf {
 public:
  enum class Plan { Hf, Full, Legacy };

  BigBird(std::int64_t b, std::int64_t w, std::int64_t g, std::int64_t r, std::int64_t seed,
          Plan plan, std::int64_t max_len)
      : b_(b), w_(w), g_(g), r_(r), seed_(seed), plan_(plan), max_len_(max_len) {}

  static const char* plan_name(Plan p) {
    return p == Plan::Hf ? "hf" : p == Plan::Full ? "full" : "legacy";
  }

  static constexpr std::int64_t kDefaultBlock = 64, kDefaultWindow = 3, kDefaultGlobal = 2,
                                kDefaultRandom = 3, kDefaultMaxLen = 4096;

  // Blocks of the random plan's range and of the dense threshold (HF: 5 + 2r).
  std::int64_t plan_blocks() const { return g_ + w_ + 2 * r_; }
  bool dense(const Geometry& g) const { return g.nk <= plan_blocks() * b_; }
  std::int64_t nblocks(const Geometry& g) const { return (g.nk + b_ - 1) / b_; }
  std::int64_t global_left() const { return (g_ + 1) / 2; }
  std::int64_t global_right() const { return g_ / 2; }
  std::int64_t half() const { return (w_ - 1) / 2; }
  bool global_row(std::int64_t qb, std::int64_t nb) const {
    return qb < global_left() || qb >= nb - global_right();
  }

  // Sorted random key blocks of non-global row qb in the sparse regime.
  void random_blocks(const Geometry& g, int h, std::int64_t qb,
                     std::vector<std::int64_t>& out) const {
    out.clear();
    if (r_ == 0) return;
    const std::int64_t nb = nblocks(g);
    // Candidates: the blocks of [0, e) outside the excluded intervals `ex`.
    std::int64_t e = nb;
    std::array<KeyRange, 5> ex;
    int n = 0;
    auto add = [&](std::int64_t a, std::int64_t c) {
      a = std::max<std::int64_t>(a, 0);
      c = std::min(c, e);
      if (a < c) ex[n++] = {a, c};
    };
    if (plan_ == Plan::Legacy) {
      // _bigbird_block_rand_mask(max_len, max_len, b, b, r, last_idx=1024): rows are numbered in
      // a max_len/b-block sequence; candidates are the slices of middle_seq = blocks 1..M-2 it
      // takes per row, cut at block `last`.
      const std::int64_t rows = max_len_ / b_;
      const std::int64_t last = 1024 > 2 * b_ ? 1024 / b_ - 1 : rows - 1;
      // (blocks past the sequence do not exist)
      e = std::max<std::int64_t>(std::min({last, rows - 2, nb - 1}) + 1, 0);
      add(0, 1);
      if (qb == 1) {
        add(1, 3);
      } else if (qb == 2) {
        add(1, 4);
      } else if (qb == rows - 3 || qb == rows - 2 || qb - 2 > last) {
        // blocks 1..last
      } else if (qb + 1 == last) {
        add(qb - 1, e);
      } else {
        add(qb - 1, qb + 2);
      }
    } else {
      if (plan_ == Plan::Hf) e = std::min(plan_blocks(), nb);
      add(0, global_left());
      add(e - global_right(), e);
      add(qb - half(), qb + half() + 1);
      if (qb == 1) add(e - 2, e - 1);
      if (qb == e - 2) add(1, 2);
    }
    // Insertion sort of at most 5 intervals (std::sort trips gcc 12's -Warray-bounds here).
    for (int k = 1; k < n; ++k)
      for (int j = k; j > 0 && ex[j].begin < ex[j - 1].begin; --j) std::swap(ex[j], ex[j - 1]);
    int m = 0;
    for (int k = 0; k < n; ++k) {
      if (m > 0 && ex[k].begin <= ex[m - 1].end)
        ex[m - 1].end = std::max(ex[m - 1].end, ex[k].end);
      else
        ex[m++] = ex[k];
    }
    std::int64_t candidates = e;
    for (int k = 0; k < m; ++k) candidates -= ex[k].end - ex[k].begin;
    const std::int64_t take = std::min(r_, candidates);
    sample_distinct(hash_key({kSalt, static_cast<std::uint64_t>(seed_),
                              static_cast<std::uint64_t>(h), static_cast<std::uint64_t>(qb)}),
                    candidates, take, out);
    // The t-th candidate: skip the excluded intervals at or below it (monotone, so out stays
    // sorted).
    for (std::int64_t& t : out)
      for (int k = 0; k < m && t >= ex[k].begin; ++k) t += ex[k].end - ex[k].begin;
  }

  // Allowed key blocks of query block qb (0 <= qb < nb), as sorted, disjoint, non-touching block
  // intervals.
  void row_blocks(const Geometry& g, int h, std::int64_t qb, std::vector<KeyRange>& out) const {
    out.clear();
    const std::int64_t nb = nblocks(g);
    if (dense(g) || global_row(qb, nb)) {
      out.push_back({0, nb});
      return;
    }
    thread_local std::vector<std::int64_t> rnd;
    thread_local std::vector<KeyRange> parts;
    random_blocks(g, h, qb, rnd);
    parts.clear();
    if (global_left() > 0) parts.push_back({0, global_left()});
    if (global_right() > 0) parts.push_back({nb - global_right(), nb});
    parts.push_back({std::max<std::int64_t>(qb - half(), 0), std::min(qb + half() + 1, nb)});
    for (std::int64_t k : rnd) parts.push_back({k, k + 1});
    std::sort(parts.begin(), parts.end(),
              [](const KeyRange& x, const KeyRange& y) { return x.begin < y.begin; });
    for (const KeyRange& p : parts) {
      if (!out.empty() && p.begin <= out.back().end)
        out.back().end = std::max(out.back().end, p.end);
      else
        out.push_back(p);
    }
  }

  // row_blocks() through a small direct-mapped per-thread cache (slot qb mod 16): the builder
  // asks for the same few consecutive rows for every tile of a tile row. Keyed by everything the
  // result depends on, not by `this`: a pattern created at a destroyed one's address must not see
  // its rows.
  const std::vector<KeyRange>& row_cached(const Geometry& g, int h, std::int64_t qb) const {
    struct Entry {
      std::int64_t b = -1, w = -1, g = -1, r = -1, seed = -1, nk = -1, qb = -1;
      Plan plan = Plan::Hf;
      std::int64_t max_len = -1;
      int h = -1;
      std::vector<KeyRange> blocks;
    };
    thread_local Entry cache[16];
    Entry& e = cache[qb & 15];
    if (e.qb == qb && e.b == b_ && e.w == w_ && e.g == g_ && e.r == r_ && e.seed == seed_ &&
        e.plan == plan_ && e.max_len == max_len_ && e.nk == g.nk && e.h == h)
      return e.blocks;
    row_blocks(g, h, qb, e.blocks);
    e.b = b_;
    e.w = w_;
    e.g = g_;
    e.r = r_;
    e.seed = seed_;
    e.plan = plan_;
    e.max_len = max_len_;
    e.nk = g.nk;
    e.h = h;
    e.qb = qb;
    return e.blocks;
  }

  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override {
    const std::int64_t p = g.position(i);
    if (p < 0) return false;
    if (dense(g)) return true;
    const std::int64_t nb = nblocks(g), qb = p / b_, kb = j / b_;
    if (global_row(qb, nb) || global_row(kb, nb)) return true;
    if (qb - half() <= kb && kb <= qb + half()) return true;
    std::vector<std::int64_t> rnd;
    random_blocks(g, h, qb, rnd);
    return std::binary_search(rnd.begin(), rnd.end(), kb);
  }

  std::string spec() const override {
    std::vector<std::string> args;
    if (b_ != kDefaultBlock) args.push_back(fmt::format("block={}", b_));
    if (w_ != kDefaultWindow) args.push_back(fmt::format("window={}", w_));
    if (g_ != kDefaultGlobal) args.push_back(fmt::format("global={}", g_));
    if (r_ != kDefaultRandom) args.push_back(fmt::format("random={}", r_));
    if (seed_ != 0) args.push_back(fmt::format("seed={}", seed_));
    if (plan_ != Plan::Hf) args.push_back(fmt::format("plan=\"{}\"", plan_name(plan_)));
    if (max_len_ != kDefaultMaxLen) args.push_back(fmt::format("max_len={}", max_len_));
    if (args.empty()) return "bigbird";
    return fmt::format("bigbird({})", fmt::join(args, ", "));
  }
  bool depends_on_head() const override { return r_ > 0; }
  void check(const Geometry& g) const override {
    // HF generates the legacy draw for a max_len-token sequence and keeps its first rows.
    if (plan_ == Plan::Legacy && !dense(g) && nblocks(g) > max_len_ / b_)
      throw UsageError(fmt::format(
          "{}: nk = {} needs {} blocks of {}, more than max_len = {} holds ({} blocks): "
          "plan=\"legacy\" draws in a max_len-token sequence (HF: max_position_embeddings)",
          spec(), g.nk, nblocks(g), b_, max_len_, max_len_ / b_));
  }

  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.clear();
    if (s.last < 0) return true;
    const std::int64_t nb = nblocks(g);
    const std::int64_t qb0 = std::max<std::int64_t>(floor_div(s.first, b_), 0), qb1 = s.last / b_;
    if (dense(g) || qb0 < global_left() || qb1 >= nb - global_right()) {
      out.push_back({0, g.nk});
      return true;
    }
    auto push = [&](std::int64_t a, std::int64_t c) { out.push_back({a * b_, c * b_}); };
    if (global_left() > 0) push(0, global_left());
    if (global_right() > 0) push(nb - global_right(), nb);
    push(qb0 - half(), qb1 + half() + 1);
    std::vector<std::int64_t> rnd;
    for (std::int64_t qb = qb0; qb <= qb1; ++qb) {
      random_blocks(g, h, qb, rnd);
      for (std::int64_t k : rnd) push(k, k + 1);
    }
    return true;
  }

  // Keys every query of the range sees: the global columns, the band blocks common to all rows,
  // or everything for a range of global rows only (or in the dense regime).
  void full_key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.clear();
    if (s.first < 0) return;
    const std::int64_t nb = nblocks(g), qb0 = s.first / b_, qb1 = s.last / b_;
    if (dense(g) || qb1 < global_left() || qb0 >= nb - global_right()) {
      out.push_back({0, g.nk});
      return;
    }
    if (global_left() > 0) out.push_back({0, global_left() * b_});
    if (global_right() > 0) out.push_back({(nb - global_right()) * b_, g.nk});
    if (qb1 - half() <= qb0 + half()) out.push_back({(qb1 - half()) * b_, (qb0 + half() + 1) * b_});
  }

  TileClass classify(const Geometry& g, int h, const Tile& t) const override {
    const std::int64_t p0 = g.position(t.q_begin), p1 = g.position(t.q_end - 1);
    if (p1 < 0) return TileClass::Empty;
    if (dense(g)) return p0 >= 0 ? TileClass::Full : TileClass::Partial;
    const std::int64_t kb0 = t.k_begin / b_, kb1 = (t.k_end - 1) / b_;
    bool any = false, all = p0 >= 0;
    for (std::int64_t qb = std::max<std::int64_t>(floor_div(p0, b_), 0); qb <= p1 / b_; ++qb) {
      std::int64_t covered = 0;
      for (const KeyRange& iv : row_cached(g, h, qb))
        covered += std::max<std::int64_t>(0, std::min(iv.end, kb1 + 1) - std::max(iv.begin, kb0));
      if (covered > 0) any = true;
      if (covered < kb1 - kb0 + 1) all = false;
      if (any && !all) return TileClass::Partial;
    }
    if (!any) return TileClass::Empty;
    return all ? TileClass::Full : TileClass::Partial;
  }

  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& m) const override {
    const std::int64_t kb0 = t.k_begin / b_, kb1 = (t.k_end - 1) / b_;
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const std::int64_t p = g.position(t.q_begin + r);
      if (p < 0) continue;
      // Rows of one query block are alike, but their bits are ORed into a mask that may already
      // hold another pattern's (a union's other side), so each row is set, never copied from the
      // row above. row_cached() makes the repeated lookups cheap.
      for (const KeyRange& iv : row_cached(g, h, p / b_)) {
        if (iv.end <= kb0) continue;
        if (iv.begin > kb1) break;
        m.set_range(r, iv.begin * b_ - t.k_begin, iv.end * b_ - t.k_begin);
      }
    }
  }

 private:
  std::int64_t b_, w_, g_, r_, seed_;
  Plan plan_;
  std::int64_t max_len_;
};

}  // namespace

void register_bigbird(Registry& r) {
  ParamSpec plan;
  plan.name = "plan";
  plan.type = ParamType::String;
  plan.default_value = std::string("hf");
  plan.doc =
      "where random blocks come from: \"hf\" (HF/google _get_rand_attn_plan: the first "
      "global+window+2*random blocks), \"full\" (all blocks) or \"legacy\" (HF's "
      "_bigbird_block_rand_mask with last_idx=1024, which HF uses at padded lengths "
      "1024/3072/4096)";
  r.add(
      {"bigbird",
       {int_param("block", 1, "block size b in tokens (semantic, independent of the tiling)",
                  BigBird::kDefaultBlock, false, 1 << 20),
        int_param("window", 1, "band width in blocks, odd: blocks Q-(w-1)/2 .. Q+(w-1)/2",
                  BigBird::kDefaultWindow, false, 1 << 20),
        int_param("global", 0,
                  "global blocks (rows and columns): the first ceil(g/2) and the last floor(g/2)",
                  BigBird::kDefaultGlobal, false, 1 << 20),
        int_param("random", 0, "random key blocks per non-global query block",
                  BigBird::kDefaultRandom, false, 1 << 16),
        int_param("seed", 0, "seed of the counter-based draw (per head and query block)", 0, false,
                  std::numeric_limits<std::int64_t>::max()),
        plan,
        int_param("max_len", 1,
                  "plan \"legacy\" only: the length its draw is made for (HF: "
                  "max_position_embeddings)",
                  BigBird::kDefaultMaxLen, false, kMaxTokens)},
       "BigBird ITC: global first/last blocks, a sliding band of blocks and seeded random blocks",
       "nb = ceil(nk/b), Q = floor(p(i)/b), K = floor(j/b), P = g+w+2r. Every pair if nk <= P*b "
       "(HF falls back to full attention). Else: Q or K global (Q < ceil(g/2) or Q >= "
       "nb-floor(g/2), same for K), or |Q-K| <= (w-1)/2, or K in R(seed, head, Q): for "
       "non-global Q, min(r, C) blocks drawn uniformly without replacement from the C blocks of "
       "[0, E) outside [0, ceil(g/2)), [E-floor(g/2), E) and Q's band, also excluding E-2 when "
       "Q = 1 and 1 when Q = E-2; E = P (plan=\"hf\") or nb (plan=\"full\"). plan=\"legacy\" "
       "(w = 3, g = 2): with L = 1024/b - 1 (M - 1 if b >= 512) and M = max_len/b, candidates "
       "are blocks 1..min(L, M-2, nb-1) minus: 1..2 for Q = 1, 1..3 for Q = 2, nothing for "
       "Q = M-3, M-2 or Q-2 > L, Q-1.. for Q+1 = L, else Q-1..Q+1. A ragged last block is the "
       "last global block; p(i) < 0 attends nothing",
       "Hugging Face transformers BigBirdBlockSparseAttention (models/big_bird/"
       "modeling_big_bird.py: bigbird_block_sparse_attention's five row parts, "
       "_get_rand_attn_plan, _bigbird_block_rand_mask_with_head, _get_single_block_row_attention; "
       "BigBirdModel.forward's original_full fallback and _pad_to_block_size), identical to "
       "google-research/bigbird bigbird/core/attention.py; training-mode per-head draws. HF "
       "switches to _bigbird_block_rand_mask (plan=\"legacy\") at padded lengths "
       "1024/3072/4096; HF's eval mode points every random slot at block 0 (the pairs of "
       "random=0)",
       "bigbird(block=64, random=3, seed=1)",
       [](const Args& a) {
         const std::int64_t w = a.get_int("window");
         if (w % 2 == 0)
           throw UsageError(fmt::format(
               "bigbird: window = {} blocks must be odd (a band of (w-1)/2 blocks on each side "
               "of the query block; HF's ITC uses 3)",
               w));
         const std::string& p = a.get_string("plan");
         if (p != "hf" && p != "full" && p != "legacy")
           throw UsageError(fmt::format(
               "bigbird: plan = \"{}\" is not known: use \"hf\" (random blocks from the first "
               "global+window+2*random blocks, as Hugging Face), \"full\" (from all blocks) or "
               "\"legacy\" (HF's generator at 1024/3072/4096 tokens)",
               p));
         const BigBird::Plan plan = p == "hf"     ? BigBird::Plan::Hf
                                    : p == "full" ? BigBird::Plan::Full
                                                  : BigBird::Plan::Legacy;
         if (plan == BigBird::Plan::Legacy && (w != 3 || a.get_int("global") != 2))
           throw UsageError(fmt::format(
               "bigbird: plan=\"legacy\" is HF's ITC generator, defined for window = 3 and "
               "global = 2 only (got window = {}, global = {})",
               w, a.get_int("global")));
         if (plan != BigBird::Plan::Legacy && a.get_int("max_len") != BigBird::kDefaultMaxLen)
           throw UsageError(
               "bigbird: max_len applies to plan=\"legacy\" only (the length its draw is made "
               "for)");
         return std::make_shared<BigBird>(a.get_int("block"), w, a.get_int("global"),
                                          a.get_int("random"), a.get_int("seed"), plan,
                                          a.get_int("max_len"));
       }});
}

}  // namespace spattn::builtin
