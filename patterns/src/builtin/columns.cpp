// columns(keys=[...]): j in K, the same key positions for every query.
#include <algorithm>

#include "leaf.hpp"

namespace spattn::builtin {
namespace {

class Columns final : public Leaf {
 public:
  // `keys` sorted and duplicate-free, possibly empty (no key).
  explicit Columns(std::vector<std::int64_t> keys) : keys_(std::move(keys)) {
    for (std::int64_t k : keys_) {
      if (!runs_.empty() && runs_.back().end == k)
        ++runs_.back().end;
      else
        runs_.push_back({k, k + 1});
    }
  }
  bool allows(const Geometry&, int, std::int64_t, std::int64_t j) const override {
    return std::binary_search(keys_.begin(), keys_.end(), j);
  }
  std::string spec() const override { return fmt::format("columns([{}])", fmt::join(keys_, ", ")); }
  // Every key must exist.
  void check(const Geometry& g) const override {
    if (keys_.empty() || keys_.back() < g.nk) return;
    throw UsageError(fmt::format("{}: key {} is out of range: keys run 0..{} (nk = {})",
                                 spec().substr(0, 60), keys_.back(), g.nk - 1, g.nk));
  }
  bool key_ranges(const Geometry&, int, std::int64_t, std::int64_t,
                  std::vector<KeyRange>& out) const override {
    out = runs_;
    return true;
  }
  void full_key_ranges(const Geometry&, int, std::int64_t, std::int64_t,
                       std::vector<KeyRange>& out) const override {
    out = runs_;
  }
  TileClass classify(const Geometry&, int, const Tile& t) const override {
    const std::int64_t n = below(t.k_end) - below(t.k_begin);
    if (n == t.cols()) return TileClass::Full;
    return n == 0 ? TileClass::Empty : TileClass::Partial;
  }
  void fill_tile(const Geometry&, int, const Tile& t, TileMask& m) const override {
    auto it = std::upper_bound(runs_.begin(), runs_.end(), t.k_begin,
                               [](std::int64_t k, const KeyRange& r) { return k < r.end; });
    for (; it != runs_.end() && it->begin < t.k_end; ++it)
      for (std::int64_t r = 0; r < t.rows(); ++r)
        m.set_range(r, it->begin - t.k_begin, it->end - t.k_begin);
  }

 private:
  // Number of listed keys < x.
  std::int64_t below(std::int64_t x) const {
    return std::lower_bound(keys_.begin(), keys_.end(), x) - keys_.begin();
  }
  std::vector<std::int64_t> keys_;
  std::vector<KeyRange> runs_;  // maximal runs of consecutive keys
};

}  // namespace

void register_columns(Registry& r) {
  r.add({"columns",
         {list_param("keys", 0, kMaxTokens - 1,
                     "key positions seen by every query (distinct, each < nk; [] for none)", true)},
         "fixed key columns: every query sees the listed keys",
         "j in K (K = the keys list)",
         "vertical lines of key positions (attention sinks at chosen positions, the column "
         "part of vertical-slash patterns); columns([0, 1, 2, 3]) = sink(4)",
         "sliding(256) | columns([0, 100, 200])",
         [](const Args& a) {
           std::vector<std::int64_t> sorted = a.get_list("keys");
           std::sort(sorted.begin(), sorted.end());
           for (std::size_t k = 1; k < sorted.size(); ++k)
             if (sorted[k] == sorted[k - 1])
               throw UsageError(fmt::format("columns: key {} is listed twice", sorted[k]));
           return std::make_shared<Columns>(std::move(sorted));
         }});
}

}  // namespace spattn::builtin
