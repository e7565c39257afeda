// A plugin for the plugin tests: kth_key(k) (j mod k == 0, with every fast path) and
// near_band(w) (p(i) - w <= j <= p(i), a Band), written only with the public headers.
#include <fmt/format.h>

#include <memory>

#include "spattn/patterns/band.hpp"
#include "spattn/patterns/leaf.hpp"
#include "spattn/patterns/params.hpp"
#include "spattn/patterns/plugin.hpp"

namespace {

class KthKey final : public spattn::Leaf {
 public:
  explicit KthKey(std::int64_t k) : k_(k) {}
  bool allows(const spattn::Geometry&, int, std::int64_t, std::int64_t j) const override {
    return j % k_ == 0;
  }
  std::string spec() const override { return fmt::format("kth_key({})", k_); }
  bool key_ranges(const spattn::Geometry& g, int, std::int64_t, std::int64_t,
                  std::vector<spattn::KeyRange>& out) const override {
    out.clear();
    for (std::int64_t j = 0; j < g.nk; j += k_) out.push_back({j, j + 1});
    return true;
  }
  spattn::TileClass classify(const spattn::Geometry&, int, const spattn::Tile& t) const override {
    if (k_ == 1) return spattn::TileClass::Full;
    const std::int64_t first = (t.k_begin + k_ - 1) / k_ * k_;
    return first < t.k_end ? spattn::TileClass::Partial : spattn::TileClass::Empty;
  }
  void fill_tile(const spattn::Geometry&, int, const spattn::Tile& t,
                 spattn::TileMask& m) const override {
    for (std::int64_t j = (t.k_begin + k_ - 1) / k_ * k_; j < t.k_end; j += k_)
      for (std::int64_t r = 0; r < t.rows(); ++r) m.set(r, j - t.k_begin);
  }

 private:
  std::int64_t k_;
};

class NearBand final : public spattn::Band {
 public:
  explicit NearBand(std::int64_t w) : w_(w) {}
  std::int64_t lo(std::int64_t p) const override { return p - w_; }
  std::int64_t hi(std::int64_t p) const override { return p; }
  std::string spec() const override { return fmt::format("near_band({})", w_); }

 private:
  std::int64_t w_;
};

}  // namespace

SPATTN_PLUGIN(registry) {
  registry.add({"kth_key",
                {spattn::int_param("k", 1, "distance between kept keys")},
                "every k-th key",
                "j mod k == 0",
                "test plugin",
                "kth_key(16)",
                [](const spattn::Args& a) { return std::make_shared<KthKey>(a.get_int("k")); }});
  registry.add({"near_band",
                {spattn::int_param("w", 0, "keys before the query")},
                "the query and the w keys before it",
                "p(i) - w <= j <= p(i)",
                "test plugin",
                "near_band(8)",
                [](const spattn::Args& a) { return std::make_shared<NearBand>(a.get_int("w")); }});
}
