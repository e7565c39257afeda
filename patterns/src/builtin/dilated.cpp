// dilated(w, d): |p(i) - j| <= w*d and (p(i) - j) mod d == 0 (Longformer dilated window).
#include "leaf.hpp"

namespace spattn::builtin {
namespace {

class Dilated final : public Leaf {
 public:
  Dilated(std::int64_t w, std::int64_t d) : w_(w), d_(d), reach_(w * d) {}
  bool allows(const Geometry& g, int, std::int64_t i, std::int64_t j) const override {
    const std::int64_t diff = g.position(i) - j;
    return diff >= -reach_ && diff <= reach_ && floor_mod(diff, d_) == 0;
  }
  std::string spec() const override { return fmt::format("dilated({}, {})", w_, d_); }
  bool key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.assign(1, KeyRange{s.first - reach_, s.last + reach_ + 1});
    return true;
  }
  void diagonal_cover(const Geometry& g, int, DiagonalCover& out) const override {
    out.assign(1, make_run(g, -reach_, reach_, d_));
  }
  TileClass classify(const Geometry& g, int, const Tile& t) const override {
    const std::int64_t p0 = g.position(t.q_begin), p1 = g.position(t.q_end - 1);
    // Differences p - j over the tile span [p0 - (k_end-1), p1 - k_begin].
    const std::int64_t dmin = std::max(p0 - (t.k_end - 1), -reach_);
    const std::int64_t dmax = std::min(p1 - t.k_begin, reach_);
    if (dmin > dmax) return TileClass::Empty;
    // Some multiple of d in [dmin, dmax]?
    if (floor_div(dmax, d_) * d_ < dmin) return TileClass::Empty;
    if (d_ == 1 && p1 - t.k_begin <= reach_ && t.k_end - 1 - p0 <= reach_) return TileClass::Full;
    return TileClass::Partial;
  }
  void fill_tile(const Geometry& g, int, const Tile& t, TileMask& m) const override {
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const std::int64_t p = g.position(t.q_begin + r);
      const std::int64_t lo = std::max(t.k_begin, p - reach_);
      const std::int64_t hi = std::min(t.k_end - 1, p + reach_);
      if (lo > hi) continue;
      if (d_ == 1) {
        m.set_range(r, lo - t.k_begin, hi + 1 - t.k_begin);
        continue;
      }
      for (std::int64_t j = lo + floor_mod(p - lo, d_); j <= hi; j += d_) m.set(r, j - t.k_begin);
    }
  }

 private:
  std::int64_t w_, d_, reach_;
};

}  // namespace

void register_dilated(Registry& r) {
  r.add({"dilated",
         {int_param("w", 0, "keys on each side of the query (not counting gaps)", std::nullopt,
                    true, std::int64_t{1} << 31),
          int_param("d", 1, "dilation: distance between attended keys", std::nullopt, true,
                    std::int64_t{1} << 31)},
         "two-sided dilated window: w keys each side, every d-th position",
         "|p(i) - j| <= w*d and (p(i) - j) mod d == 0",
         "Longformer dilated sliding window (Beltagy et al. 2020, Sec. 3.1), two-sided; "
         "dilated(w, 1) is window(w, w)",
         "dilated(128, 2)",
         [](const Args& a) { return std::make_shared<Dilated>(a.get_int("w"), a.get_int("d")); }});
}

}  // namespace spattn::builtin
