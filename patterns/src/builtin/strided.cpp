// strided(l): (p(i) - j) mod l == 0.
#include "leaf.hpp"

namespace spattn::builtin {
namespace {

class Strided final : public Leaf {
 public:
  explicit Strided(std::int64_t l) : l_(l) {}
  bool allows(const Geometry& g, int, std::int64_t i, std::int64_t j) const override {
    return floor_mod(g.position(i) - j, l_) == 0;
  }
  std::string spec() const override { return fmt::format("strided({})", l_); }
  bool key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    const std::int64_t span = s.last - s.first + 1;  // residues covered, consecutive
    // With a short stride nearly every key block holds a candidate: one range is cheaper.
    if (span >= l_ || l_ < 2 * g.block_k) {
      out.assign(1, KeyRange{0, g.nk});
      return true;
    }
    // Keys j = s.first + m*l + o for o in [0, span): one run of `span` keys per period.
    out.clear();
    for (std::int64_t start = floor_mod(s.first, l_) - l_; start < g.nk; start += l_)
      out.push_back({start, start + span});
    return true;
  }
  // Every l-th diagonal, both directions.
  void diagonal_cover(const Geometry& g, int, DiagonalCover& out) const override {
    out.assign(1, make_run(g, min_offset(g), max_offset(g), l_));
  }
  TileClass classify(const Geometry& g, int, const Tile& t) const override {
    if (l_ == 1) return TileClass::Full;
    const std::int64_t dmin = g.position(t.q_begin) - (t.k_end - 1);
    const std::int64_t dmax = g.position(t.q_end - 1) - t.k_begin;
    if (floor_div(dmax, l_) * l_ < dmin) return TileClass::Empty;
    return TileClass::Partial;
  }
  void fill_tile(const Geometry& g, int, const Tile& t, TileMask& m) const override {
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const std::int64_t p = g.position(t.q_begin + r);
      for (std::int64_t j = t.k_begin + floor_mod(p - t.k_begin, l_); j < t.k_end; j += l_)
        m.set(r, j - t.k_begin);
    }
  }

 private:
  std::int64_t l_;
};

}  // namespace

void register_strided(Registry& r) {
  r.add({"strided",
         {int_param("l", 1, "stride in tokens")},
         "every l-th position, in both directions (compose with causal)",
         "(p(i) - j) mod l == 0",
         "the strided component of the Sparse Transformer (Child et al. 2019); "
         "strided(l) & causal is its 'column' head",
         "strided(128) & causal",
         [](const Args& a) { return std::make_shared<Strided>(a.get_int("l")); }});
}

}  // namespace spattn::builtin
