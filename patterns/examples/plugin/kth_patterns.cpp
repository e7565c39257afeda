// Two patterns registered from a plugin, with the public authoring helpers:
//   kth(k)             j mod k == 0 (every query sees every k-th key); a Leaf with fast paths
//   growing_window(a)  p(i) - floor(p(i)/a) <= j <= p(i) (a causal window growing with the
//                      position); a Band: only lo(p) and hi(p)
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spattn/patterns/band.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/leaf.hpp"
#include "spattn/patterns/params.hpp"
#include "spattn/patterns/plugin.hpp"

namespace {

class Kth final : public spattn::Leaf {
 public:
  explicit Kth(std::int64_t k) : k_(k) {}
  bool allows(const spattn::Geometry&, int, std::int64_t, std::int64_t j) const override {
    return j % k_ == 0;
  }
  std::string spec() const override { return fmt::format("kth({})", k_); }
  // The same keys for every query: one single-key range per multiple of k (everything when k is
  // below the block size: every key block then holds one).
  bool key_ranges(const spattn::Geometry& g, int, std::int64_t, std::int64_t,
                  std::vector<spattn::KeyRange>& out) const override {
    out.clear();
    if (k_ < g.block_k) {
      out.push_back({0, g.nk});
      return true;
    }
    for (std::int64_t j = 0; j < g.nk; j += k_) out.push_back({j, j + 1});
    return true;
  }
  spattn::TileClass classify(const spattn::Geometry&, int, const spattn::Tile& t) const override {
    const std::int64_t first = (t.k_begin + k_ - 1) / k_ * k_;  // first multiple of k in the tile
    if (first >= t.k_end) return spattn::TileClass::Empty;
    return k_ == 1 ? spattn::TileClass::Full : spattn::TileClass::Partial;
  }
  void fill_tile(const spattn::Geometry&, int, const spattn::Tile& t,
                 spattn::TileMask& mask) const override {
    for (std::int64_t j = (t.k_begin + k_ - 1) / k_ * k_; j < t.k_end; j += k_)
      for (std::int64_t r = 0; r < t.rows(); ++r) mask.set(r, j - t.k_begin);
  }

 private:
  std::int64_t k_;
};

// lo(p) = p - floor(p/a) never decreases (it grows by 0 or 1 per position), as Band requires.
class GrowingWindow final : public spattn::Band {
 public:
  explicit GrowingWindow(std::int64_t a) : a_(a) {}
  std::int64_t lo(std::int64_t p) const override { return p - spattn::floor_div(p, a_); }
  std::int64_t hi(std::int64_t p) const override { return p; }
  std::string spec() const override { return fmt::format("growing_window({})", a_); }

 private:
  std::int64_t a_;
};

}  // namespace

SPATTN_PLUGIN(registry) {
  registry.add({"kth",
                {spattn::int_param("k", 1, "distance between the kept keys")},
                "every k-th key, for every query",
                "j mod k == 0",
                "summary keys at a fixed stride (patterns/README.md's worked example)",
                "kth(64) | sliding(256)",
                [](const spattn::Args& a) { return std::make_shared<Kth>(a.get_int("k")); }});
  registry.add(
      {"growing_window",
       {spattn::int_param("a", 1, "the window holds floor(p/a) + 1 keys")},
       "a causal window growing with the position",
       "p(i) - floor(p(i)/a) <= j <= p(i)",
       "example of a Band pattern (lo and hi only)",
       "growing_window(8)",
       [](const spattn::Args& a) { return std::make_shared<GrowingWindow>(a.get_int("a")); }});
}
