// dense: every pair.
#include "leaf.hpp"

namespace spattn::builtin {
namespace {

class Dense final : public Leaf {
 public:
  bool allows(const Geometry&, int, std::int64_t, std::int64_t) const override { return true; }
  std::string spec() const override { return "dense"; }
  bool key_ranges(const Geometry& g, int, std::int64_t, std::int64_t,
                  std::vector<KeyRange>& out) const override {
    out.assign(1, KeyRange{0, g.nk});
    return true;
  }
  void full_key_ranges(const Geometry& g, int, std::int64_t, std::int64_t,
                       std::vector<KeyRange>& out) const override {
    out.assign(1, KeyRange{0, g.nk});
  }
  void diagonal_cover(const Geometry& g, int, DiagonalCover& out) const override {
    out.assign(1, make_run(g, min_offset(g), max_offset(g), 1));
  }
  TileClass classify(const Geometry&, int, const Tile&) const override { return TileClass::Full; }
  void fill_tile(const Geometry&, int, const Tile&, TileMask& m) const override { m.fill(); }
};

}  // namespace

void register_dense(Registry& r) {
  r.add({"dense",
         {},
         "every query attends to every key",
         "all (i, j)",
         "full attention",
         "dense",
         [](const Args&) { return std::make_shared<Dense>(); }});
}

}  // namespace spattn::builtin
