// diagonals(offsets=[...]): p(i) - j in D, the same offsets for every query.
#include <algorithm>

#include "leaf.hpp"

namespace spattn::builtin {
namespace {

// Offsets may be any value within +-2^40; an offset no pair of the geometry has keeps nothing.
constexpr std::int64_t kMaxOffset = std::int64_t{1} << 40;

class Diagonals final : public Leaf {
 public:
  // `offsets` sorted and duplicate-free, possibly empty (no pair).
  explicit Diagonals(std::vector<std::int64_t> offsets) : offsets_(std::move(offsets)) {}
  bool allows(const Geometry& g, int, std::int64_t i, std::int64_t j) const override {
    return std::binary_search(offsets_.begin(), offsets_.end(), g.position(i) - j);
  }
  std::string spec() const override {
    return fmt::format("diagonals([{}])", fmt::join(offsets_, ", "));
  }
  // Queries at positions [P0, P1] meet offset o at keys [P0 - o, P1 - o]: one range per offset.
  bool key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.clear();
    // Offsets decrease from the back: key ranges in increasing order.
    for (auto it = offsets_.rbegin(); it != offsets_.rend(); ++it) {
      const std::int64_t begin = std::max<std::int64_t>(s.first - *it, 0);
      const std::int64_t end = std::min<std::int64_t>(s.last - *it + 1, g.nk);
      if (begin >= end) continue;
      if (!out.empty() && out.back().end >= begin)
        out.back().end = std::max(out.back().end, end);
      else
        out.push_back({begin, end});
    }
    return true;
  }
  // The offsets of a tile's pairs are exactly [dmin, dmax]: Full iff all are listed.
  TileClass classify(const Geometry& g, int, const Tile& t) const override {
    const std::int64_t dmin = g.position(t.q_begin) - (t.k_end - 1);
    const std::int64_t dmax = g.position(t.q_end - 1) - t.k_begin;
    const std::int64_t n = below(dmax + 1) - below(dmin);
    if (n == dmax - dmin + 1) return TileClass::Full;
    return n == 0 ? TileClass::Empty : TileClass::Partial;
  }
  void fill_tile(const Geometry& g, int, const Tile& t, TileMask& m) const override {
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const std::int64_t p = g.position(t.q_begin + r);
      // Offsets p - j for j in [k_begin, k_end): (p - k_end, p - k_begin].
      auto it = std::upper_bound(offsets_.begin(), offsets_.end(), p - t.k_end);
      for (; it != offsets_.end() && *it <= p - t.k_begin; ++it) m.set(r, p - *it - t.k_begin);
    }
  }
  // Each maximal run of consecutive offsets is one step-1 run.
  void diagonal_cover(const Geometry& g, int, DiagonalCover& out) const override {
    out.clear();
    for (std::size_t k = 0; k < offsets_.size();) {
      std::size_t e = k + 1;
      while (e < offsets_.size() && offsets_[e] == offsets_[e - 1] + 1) ++e;
      const DiagonalRun run = make_run(g, offsets_[k], offsets_[e - 1], 1);
      if (!run.empty()) out.push_back(run);
      k = e;
    }
  }

 private:
  // Number of listed offsets < x.
  std::int64_t below(std::int64_t x) const {
    return std::lower_bound(offsets_.begin(), offsets_.end(), x) - offsets_.begin();
  }
  std::vector<std::int64_t> offsets_;
};

}  // namespace

void register_diagonals(Registry& r) {
  r.add({"diagonals",
         {list_param("offsets", -kMaxOffset, kMaxOffset,
                     "offsets p(i) - j kept for every query (distinct; negative: keys after the "
                     "query; [] for none)",
                     true)},
         "fixed diagonals: every query sees the keys at the listed distances",
         "p(i) - j in D (D = the offsets list)",
         "slash lines at fixed distances (the diagonal part of vertical-slash patterns, "
         "dilated and multi-scale local attention); diagonals([0, 1, 2]) = sliding(3)",
         "diagonals([0, 1, 64, 4096]) & causal",
         [](const Args& a) {
           std::vector<std::int64_t> sorted = a.get_list("offsets");
           std::sort(sorted.begin(), sorted.end());
           for (std::size_t k = 1; k < sorted.size(); ++k)
             if (sorted[k] == sorted[k - 1])
               throw UsageError(fmt::format("diagonals: offset {} is listed twice", sorted[k]));
           return std::make_shared<Diagonals>(std::move(sorted));
         }});
}

}  // namespace spattn::builtin
