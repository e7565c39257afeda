#pragma once
// Band patterns: each query at position p may attend to one interval of keys [lo(p), hi(p)]
// (inclusive; empty when lo > hi), with lo and hi non-decreasing in p. causal, window, sliding,
// chunked and documents are bands; they share key_ranges/classify/fill_tile from here.
#include "spattn/patterns/leaf.hpp"

namespace spattn {

class Band : public Leaf {
 public:
  virtual std::int64_t lo(std::int64_t p) const = 0;
  virtual std::int64_t hi(std::int64_t p) const = 0;

  bool allows(const Geometry& g, int, std::int64_t i, std::int64_t j) const override {
    const std::int64_t p = g.position(i);
    return lo(p) <= j && j <= hi(p);
  }
  bool key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.assign(1, KeyRange{lo(s.first), hi(s.last) + 1});
    return true;
  }
  // Keys every query of the range sees: [lo(last), hi(first)].
  void full_key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.clear();
    if (lo(s.last) <= hi(s.first)) out.push_back({lo(s.last), hi(s.first) + 1});
  }
  TileClass classify(const Geometry& g, int, const Tile& t) const override {
    return detail::classify_monotone_band(
        g, t, [this](std::int64_t p) { return lo(p); }, [this](std::int64_t p) { return hi(p); });
  }
  void fill_tile(const Geometry& g, int, const Tile& t, TileMask& m) const override {
    detail::fill_monotone_band(
        g, t, m, [this](std::int64_t p) { return lo(p); },
        [this](std::int64_t p) { return hi(p); });
  }
};

// Bounds used for "unbounded" sides; far outside any valid key index, with room to add to.
inline constexpr std::int64_t kFarLeft = -(std::int64_t{1} << 60);
inline constexpr std::int64_t kFarRight = std::int64_t{1} << 60;

}  // namespace spattn
