// random(r, block=b, seed=s): per query block of b positions, r key blocks of b keys drawn
// uniformly without replacement. The draw for (head, query block) is a pure function of
// (seed, head, block): a counter-based hash (splitmix64), so layouts build in parallel and are
// identical on every run and thread count.
#include <algorithm>

#include "counter_hash.hpp"
#include "leaf.hpp"

namespace spattn::builtin {
namespace {

class Random final : public Leaf {
 public:
  Random(std::int64_t r, std::int64_t b, std::int64_t seed) : r_(r), b_(b), seed_(seed) {}

  // Sorted key blocks chosen for query block qb on head h; empty for qb < 0.
  void chosen(const Geometry& g, int h, std::int64_t qb, std::vector<std::int64_t>& out) const {
    out.clear();
    if (qb < 0) return;
    const std::int64_t kb = (g.nk + b_ - 1) / b_;
    const std::int64_t r = std::min(r_, kb);
    sample_distinct(hash_key({static_cast<std::uint64_t>(seed_), static_cast<std::uint64_t>(h),
                              static_cast<std::uint64_t>(qb)}),
                    kb, r, out);
  }

  // chosen() through a small per-thread cache: the builder asks for the same few query blocks
  // for every tile of a row. Keyed by everything the draw depends on, not by `this`: a pattern
  // destroyed and another created at its address must not see its draws.
  const std::vector<std::int64_t>& chosen_cached(const Geometry& g, int h, std::int64_t qb) const {
    struct Entry {
      std::int64_t r = -1, b = -1, seed = -1;
      std::int64_t nk = -1, qb = 0;
      int h = -1;
      std::vector<std::int64_t> blocks;
    };
    thread_local Entry cache[4];
    thread_local unsigned next = 0;
    for (Entry& e : cache)
      if (e.r == r_ && e.b == b_ && e.seed == seed_ && e.nk == g.nk && e.h == h && e.qb == qb)
        return e.blocks;
    Entry& e = cache[next++ % 4];
    chosen(g, h, qb, e.blocks);
    e.r = r_;
    e.b = b_;
    e.seed = seed_;
    e.nk = g.nk;
    e.h = h;
    e.qb = qb;
    return e.blocks;
  }

  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override {
    std::vector<std::int64_t> c;
    chosen(g, h, floor_div(g.position(i), b_), c);
    return std::binary_search(c.begin(), c.end(), j / b_);
  }
  std::string spec() const override {
    std::string s = fmt::format("random({}", r_);
    if (b_ != kDefaultBlock) s += fmt::format(", block={}", b_);
    if (seed_ != 0) s += fmt::format(", seed={}", seed_);
    return s + ")";
  }
  bool depends_on_head() const override { return true; }
  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.clear();
    std::vector<std::int64_t> c;
    for (std::int64_t qb = floor_div(s.first, b_); qb <= floor_div(s.last, b_); ++qb) {
      chosen(g, h, qb, c);
      for (std::int64_t kb : c) out.push_back({kb * b_, kb * b_ + b_});
    }
    return true;
  }
  TileClass classify(const Geometry& g, int h, const Tile& t) const override {
    const std::int64_t p0 = g.position(t.q_begin), p1 = g.position(t.q_end - 1);
    const std::int64_t kb0 = t.k_begin / b_, kb1 = (t.k_end - 1) / b_;
    bool any = false, all = p0 >= 0;
    for (std::int64_t qb = floor_div(p0, b_); qb <= floor_div(p1, b_); ++qb) {
      const std::vector<std::int64_t>& c = chosen_cached(g, h, qb);
      const auto lo = std::lower_bound(c.begin(), c.end(), kb0);
      const auto hi = std::upper_bound(c.begin(), c.end(), kb1);
      if (hi > lo) any = true;
      if (hi - lo != kb1 - kb0 + 1) all = false;
    }
    if (!any) return TileClass::Empty;
    return all ? TileClass::Full : TileClass::Partial;
  }
  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& m) const override {
    const std::int64_t kb0 = t.k_begin / b_, kb1 = (t.k_end - 1) / b_;
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const std::vector<std::int64_t>& c =
          chosen_cached(g, h, floor_div(g.position(t.q_begin + r), b_));
      for (auto it = std::lower_bound(c.begin(), c.end(), kb0); it != c.end() && *it <= kb1; ++it)
        m.set_range(r, *it * b_ - t.k_begin, *it * b_ + b_ - t.k_begin);
    }
  }

  static constexpr std::int64_t kDefaultBlock = 64;

 private:
  std::int64_t r_, b_, seed_;
};

}  // namespace

void register_random(Registry& r) {
  r.add({"random",
         {int_param("r", 1, "key blocks per query block (capped at the number of key blocks)",
                    std::nullopt, true, 1 << 20),
          int_param("block", 1, "block size b in tokens (semantic, independent of the tiling)",
                    Random::kDefaultBlock, false, 1 << 20),
          int_param("seed", 0, "seed of the counter-based draw", 0, false,
                    std::numeric_limits<std::int64_t>::max())},
         "random key blocks per query block, drawn per head from a seed",
         "floor(j/b) in R(seed, head, floor(p(i)/b)), |R| = min(r, ceil(nk/b)), drawn uniformly "
         "without replacement",
         "BigBird's random attention component (Zaheer et al. 2020), without its exclusions "
         "(see bigbird for the full ITC rules)",
         "random(3, block=64, seed=7)",
         [](const Args& a) {
           return std::make_shared<Random>(a.get_int("r"), a.get_int("block"), a.get_int("seed"));
         }});
}

}  // namespace spattn::builtin
