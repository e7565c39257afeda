// Worked example from patterns/README.md: a new pattern, `kth(k)`, where every query sees the
// keys whose index is a multiple of k ("summary" columns), registered at run time and used from
// a spec string at once. Step 1 is the prototype (allows + spec only); step 2 adds the fast
// paths. The program checks both against a brute-force count and exits 1 on any mismatch.
#include <fmt/format.h>

#include <cstdio>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

// Step 1: the prototype. Correct at once; the builder scans every pair to build its layout.
class KthPrototype : public spattn::Pattern {
 public:
  explicit KthPrototype(std::int64_t k) : k_(k) {}
  bool allows(const spattn::Geometry&, int, std::int64_t, std::int64_t j) const override {
    return j % k_ == 0;
  }
  std::string spec() const override { return fmt::format("kth_proto({})", k_); }

 private:
  std::int64_t k_;
};

// Step 2: the same set with fast paths; the builder now touches only the kept tiles.
class Kth : public spattn::Pattern {
 public:
  explicit Kth(std::int64_t k) : k_(k) {}
  bool allows(const spattn::Geometry&, int, std::int64_t, std::int64_t j) const override {
    return j % k_ == 0;
  }
  std::string spec() const override { return fmt::format("kth({})", k_); }
  bool bounds_keys() const override { return true; }
  bool analytic_tiles() const override { return true; }
  // Every query has the same keys: one single-key range per multiple of k (the builder merges
  // them into key blocks; for k below the block size that is simply every block).
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
    const std::int64_t first = (t.k_begin + k_ - 1) / k_ * k_;  // first multiple of k in tile
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

spattn::ParamSpec k_param() {
  spattn::ParamSpec k;
  k.name = "k";
  k.required = true;
  k.min = 1;
  k.doc = "distance between summary keys";
  return k;
}

}  // namespace

int main() {
  auto& reg = spattn::Registry::global();
  reg.add({"kth_proto",
           {k_param()},
           "every k-th key (prototype)",
           "j mod k == 0",
           "example",
           "kth_proto(16)",
           [](const spattn::Args& a) { return std::make_shared<KthPrototype>(a.get_int("k")); }});
  reg.add({"kth",
           {k_param()},
           "every k-th key",
           "j mod k == 0",
           "example",
           "kth(16) & causal",
           [](const spattn::Args& a) { return std::make_shared<Kth>(a.get_int("k")); }});

  int failures = 0;
  for (const char* spec : {"kth_proto(100) | sliding(64)", "kth(100) | sliding(64)",
                           "kth(3) & causal", "heads(0: kth(200); 1: kth_proto(7) - causal)"}) {
    const spattn::Geometry g{1000, 1000, 2, 64, 32};
    const spattn::PatternPtr p = spattn::parse_spec(spec);
    const spattn::Layout layout = spattn::build_layout(*p, g);
    std::int64_t expected = 0;  // brute force over every pair
    for (int h = 0; h < g.heads; ++h)
      for (std::int64_t i = 0; i < g.nq; ++i)
        for (std::int64_t j = 0; j < g.nk; ++j) expected += p->allows(g, h, i, j);
    const std::int64_t got = layout.counts().allowed_pairs;
    fmt::print("{:<45} allowed={:<8} brute-force={:<8} build={}\n", spec, got, expected,
               layout.scanned ? "scanned (" + layout.scanned_part + ")" : std::string("analytic"));
    failures += got != expected;
  }
  return failures == 0 ? 0 : 1;
}
