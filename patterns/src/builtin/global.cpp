// global(n) / global(tokens=[...]): p(i) in G or j in G.
#include <algorithm>

#include "leaf.hpp"

namespace spattn::builtin {
namespace {

class Global final : public Leaf {
 public:
  // The first n positions.
  explicit Global(std::int64_t n) : n_(n), listed_(false) {
    runs_.push_back({0, n_});
    prefix_ = {0, n_};
  }
  // An explicit sorted, duplicate-free list, possibly empty (no global token).
  explicit Global(std::vector<std::int64_t> tokens) : n_(0), tokens_(std::move(tokens)) {
    for (std::int64_t t : tokens_) {
      if (!runs_.empty() && runs_.back().end == t)
        ++runs_.back().end;
      else
        runs_.push_back({t, t + 1});
    }
    prefix_.push_back(0);
    for (const KeyRange& r : runs_) prefix_.push_back(prefix_.back() + (r.end - r.begin));
  }
  // Number of global positions in [a, b] (inclusive).
  std::int64_t count(std::int64_t a, std::int64_t b) const { return below(b + 1) - below(a); }
  bool allows(const Geometry& g, int, std::int64_t i, std::int64_t j) const override {
    return count(g.position(i), g.position(i)) > 0 || count(j, j) > 0;
  }
  std::string spec() const override {
    if (!listed_) return fmt::format("global({})", n_);
    return fmt::format("global(tokens=[{}])", fmt::join(tokens_, ", "));
  }
  // Every global token must be a key position (none listed: nothing to check).
  void check(const Geometry& g) const override {
    if (runs_.empty() || runs_.back().end <= g.nk) return;
    throw UsageError(
        fmt::format("{}: global position {} is out of range: positions run 0..{} (nk = {})",
                    spec().substr(0, 60), runs_.back().end - 1, g.nk - 1, g.nk));
  }
  bool key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    if (count(s.first, s.last) > 0)
      out.assign(1, KeyRange{0, g.nk});
    else
      out = runs_;
    return true;
  }
  // Global key columns are seen by every query; a range of only global queries sees everything.
  void full_key_ranges(const Geometry& g, int, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    if (count(s.first, s.last) == s.last - s.first + 1)
      out.assign(1, KeyRange{0, g.nk});
    else
      out = runs_;
  }
  TileClass classify(const Geometry& g, int, const Tile& t) const override {
    const std::int64_t gq = count(g.position(t.q_begin), g.position(t.q_end - 1));
    const std::int64_t gk = count(t.k_begin, t.k_end - 1);
    if (gq == t.rows() || gk == t.cols()) return TileClass::Full;
    if (gq == 0 && gk == 0) return TileClass::Empty;
    return TileClass::Partial;
  }
  void fill_tile(const Geometry& g, int, const Tile& t, TileMask& m) const override {
    // Global key columns, then global query rows.
    auto it = std::upper_bound(runs_.begin(), runs_.end(), t.k_begin,
                               [](std::int64_t k, const KeyRange& r) { return k < r.end; });
    for (; it != runs_.end() && it->begin < t.k_end; ++it)
      for (std::int64_t r = 0; r < t.rows(); ++r)
        m.set_range(r, it->begin - t.k_begin, it->end - t.k_begin);
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const std::int64_t p = g.position(t.q_begin + r);
      if (count(p, p) > 0) m.set_range(r, 0, t.cols());
    }
  }

 private:
  // Number of global positions < x.
  std::int64_t below(std::int64_t x) const {
    auto it = std::upper_bound(runs_.begin(), runs_.end(), x,
                               [](std::int64_t v, const KeyRange& r) { return v < r.end; });
    const std::size_t k = static_cast<std::size_t>(it - runs_.begin());
    std::int64_t c = prefix_[k];
    if (it != runs_.end() && it->begin < x) c += x - it->begin;
    return c;
  }
  std::int64_t n_;
  bool listed_ = true;  // tokens=[...] rather than n
  std::vector<std::int64_t> tokens_;
  std::vector<KeyRange> runs_;        // maximal runs of consecutive global positions
  std::vector<std::int64_t> prefix_;  // prefix_[k]: global positions in runs_[0..k)
};

}  // namespace

void register_global(Registry& r) {
  r.add({"global",
         {int_param("n", 1, "number of global tokens: positions 0..n-1", std::nullopt, false),
          list_param("tokens", 0, kMaxTokens - 1,
                     "explicit global positions (distinct, each < nk; [] for none), instead of n",
                     false)},
         "global tokens attend to everything and are attended by everything",
         "p(i) in G or j in G (G = {0..n-1}, or the tokens list, possibly empty)",
         "Longformer/BigBird/ETC global attention (symmetric: global rows and columns)",
         "window(256) | global(tokens=[0, 17, 512])",
         [](const Args& a) {
           if (a.has("n") == a.has("tokens"))
             throw UsageError(
                 "global: give exactly one of n (the first n positions) or tokens=[...]");
           if (a.has("n")) return std::make_shared<Global>(a.get_int("n"));
           std::vector<std::int64_t> sorted = a.get_list("tokens");
           std::sort(sorted.begin(), sorted.end());
           for (std::size_t k = 1; k < sorted.size(); ++k)
             if (sorted[k] == sorted[k - 1])
               throw UsageError(fmt::format("global: token {} is listed twice", sorted[k]));
           return std::make_shared<Global>(std::move(sorted));
         }});
}

}  // namespace spattn::builtin
