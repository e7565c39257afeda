#include "spattn/patterns/combinators.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

// Scratch tile masks for combinators, reused per thread (no allocation per tile once warm).
class ScratchMask {
 public:
  // An all-zero mask shaped like `like`.
  explicit ScratchMask(const TileMask& like) {
    if (pool().empty()) pool().emplace_back();
    mask_ = std::move(pool().back());
    pool().pop_back();
    mask_.reset_like(like);
  }
  ~ScratchMask() { pool().push_back(std::move(mask_)); }
  ScratchMask(const ScratchMask&) = delete;
  ScratchMask& operator=(const ScratchMask&) = delete;
  TileMask& get() { return mask_; }

 private:
  static std::vector<TileMask>& pool() {
    thread_local std::vector<TileMask> p;
    return p;
  }
  TileMask mask_;
};

// `text` (child's spec or head_spec), parenthesized when the child binds looser than its parent,
// or as tightly when it is the right operand of a left-associative operator.
std::string wrap(const Pattern& child, const std::string& text, int parent_precedence,
                 bool right_operand = false) {
  const bool need = child.precedence() < parent_precedence ||
                    (right_operand && child.precedence() == parent_precedence);
  return need ? fmt::format("({})", text) : text;
}

class NaryPattern : public Pattern {
 public:
  explicit NaryPattern(std::vector<PatternPtr> children) : children_(std::move(children)) {}
  void check(const Geometry& g) const override {
    for (const auto& c : children_) c->check(g);
  }
  bool analytic_tiles() const override {
    return std::all_of(children_.begin(), children_.end(),
                       [](const PatternPtr& c) { return c->analytic_tiles(); });
  }
  std::string scanned_part() const override {
    for (const auto& c : children_)
      if (auto s = c->scanned_part(); !s.empty()) return s;
    return bounds_keys() ? std::string() : spec();
  }
  bool depends_on_head() const override {
    return std::any_of(children_.begin(), children_.end(),
                       [](const PatternPtr& c) { return c->depends_on_head(); });
  }
  std::string spec() const override {
    return join([](const Pattern& c) { return c.spec(); });
  }
  std::string head_spec(int head) const override {
    return join([head](const Pattern& c) { return c.head_spec(head); });
  }
  const std::vector<PatternPtr>& children() const { return children_; }
  bool needs_inputs() const override {
    return std::any_of(children_.begin(), children_.end(),
                       [](const PatternPtr& c) { return c->needs_inputs(); });
  }

 protected:
  // The children resolved (resolve()); empty when none changed.
  std::vector<PatternPtr> resolved_children(const SelectorResolver& r,
                                            const std::vector<bool>& heads) const {
    std::vector<PatternPtr> out;
    bool changed = false;
    for (const auto& c : children_) {
      PatternPtr n = c->resolve(r, heads);
      changed = changed || n != nullptr;
      out.push_back(n ? n : c);
    }
    if (!changed) out.clear();
    return out;
  }
  virtual const char* op() const = 0;
  template <class F>
  std::string join(F f) const {
    std::string s;
    for (std::size_t k = 0; k < children_.size(); ++k) {
      if (k) s += op();
      const Pattern& c = *children_[k];
      s += wrap(c, f(c), precedence());
    }
    return s;
  }
  std::vector<PatternPtr> children_;
};

class UnionPattern final : public NaryPattern {
 public:
  using NaryPattern::NaryPattern;
  PatternPtr resolve(const SelectorResolver& r, const std::vector<bool>& heads) const override {
    auto c = resolved_children(r, heads);
    return c.empty() ? nullptr : make_union(std::move(c));
  }
  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override {
    for (const auto& c : children_)
      if (c->allows(g, h, i, j)) return true;
    return false;
  }
  bool bounds_keys() const override {
    return std::all_of(children_.begin(), children_.end(),
                       [](const PatternPtr& c) { return c->bounds_keys(); });
  }
  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    out.clear();
    std::vector<KeyRange> part;
    for (const auto& c : children_) {
      part.clear();
      if (!c->key_ranges(g, h, q0, q1, part)) return false;
      out.insert(out.end(), part.begin(), part.end());
    }
    normalize_ranges(out, g.nk);
    return true;
  }
  void full_key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    out.clear();
    std::vector<KeyRange> part;
    for (const auto& c : children_) {
      c->full_key_ranges(g, h, q0, q1, part);
      out.insert(out.end(), part.begin(), part.end());
    }
    normalize_ranges(out, g.nk);
  }
  TileClass classify(const Geometry& g, int h, const Tile& t) const override {
    TileClass result = TileClass::Empty;
    for (const auto& c : children_) {
      const TileClass k = c->classify(g, h, t);
      if (k == TileClass::Full) return TileClass::Full;
      if (k == TileClass::Partial) result = TileClass::Partial;
    }
    return result;
  }
  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& mask) const override {
    for (const auto& c : children_) {
      const TileClass k = c->classify(g, h, t);
      if (k == TileClass::Full) {
        mask.fill();
        return;
      }
      if (k == TileClass::Partial) c->fill_tile(g, h, t, mask);
    }
  }
  // A diagonal covered by any child is covered by the union.
  void diagonal_cover(const Geometry& g, int h, DiagonalCover& out) const override {
    out.clear();
    DiagonalCover part;
    for (const auto& c : children_) {
      c->diagonal_cover(g, h, part);
      out.insert(out.end(), part.begin(), part.end());
    }
  }
  int precedence() const override { return 1; }

 protected:
  const char* op() const override { return " | "; }
};

class IntersectionPattern final : public NaryPattern {
 public:
  using NaryPattern::NaryPattern;
  PatternPtr resolve(const SelectorResolver& r, const std::vector<bool>& heads) const override {
    auto c = resolved_children(r, heads);
    return c.empty() ? nullptr : make_intersection(std::move(c));
  }
  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override {
    for (const auto& c : children_)
      if (!c->allows(g, h, i, j)) return false;
    return true;
  }
  bool bounds_keys() const override {
    return std::any_of(children_.begin(), children_.end(),
                       [](const PatternPtr& c) { return c->bounds_keys(); });
  }
  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    bool have = false;
    std::vector<KeyRange> part, tmp;
    for (const auto& c : children_) {
      part.clear();
      if (!c->key_ranges(g, h, q0, q1, part)) continue;
      normalize_ranges(part, g.nk);
      if (!have) {
        out = part;
        have = true;
      } else {
        intersect_ranges(out, part, tmp);
        out.swap(tmp);
      }
    }
    return have;
  }
  void full_key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    std::vector<KeyRange> part, tmp;
    for (std::size_t k = 0; k < children_.size(); ++k) {
      children_[k]->full_key_ranges(g, h, q0, q1, k == 0 ? out : part);
      if (k == 0) {
        normalize_ranges(out, g.nk);
      } else {
        normalize_ranges(part, g.nk);
        intersect_ranges(out, part, tmp);
        out.swap(tmp);
      }
      if (out.empty()) return;
    }
  }
  TileClass classify(const Geometry& g, int h, const Tile& t) const override {
    TileClass result = TileClass::Full;
    for (const auto& c : children_) {
      const TileClass k = c->classify(g, h, t);
      if (k == TileClass::Empty) return TileClass::Empty;
      if (k == TileClass::Partial) result = TileClass::Partial;
    }
    return result;
  }
  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& mask) const override {
    ScratchMask acc(mask);
    acc.get().fill();
    for (const auto& c : children_) {
      const TileClass k = c->classify(g, h, t);
      if (k == TileClass::Empty) return;
      if (k == TileClass::Full) continue;
      ScratchMask part(mask);
      c->fill_tile(g, h, t, part.get());
      acc.get().and_with(part.get());
    }
    mask.or_with(acc.get());
  }
  // A diagonal is covered when every child covers it.
  void diagonal_cover(const Geometry& g, int h, DiagonalCover& out) const override {
    DiagonalCover part;
    for (std::size_t k = 0; k < children_.size(); ++k) {
      children_[k]->diagonal_cover(g, h, k == 0 ? out : part);
      if (k > 0) out = intersect(out, part);
      if (out.empty()) return;
    }
  }
  int precedence() const override { return 2; }

 protected:
  const char* op() const override { return " & "; }
};

class DifferencePattern final : public Pattern {
 public:
  DifferencePattern(PatternPtr a, PatternPtr b) : a_(std::move(a)), b_(std::move(b)) {}
  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override {
    return a_->allows(g, h, i, j) && !b_->allows(g, h, i, j);
  }
  std::string spec() const override {
    return fmt::format("{} - {}", wrap(*a_, a_->spec(), 3), wrap(*b_, b_->spec(), 3, true));
  }
  std::string head_spec(int h) const override {
    return fmt::format("{} - {}", wrap(*a_, a_->head_spec(h), 3),
                       wrap(*b_, b_->head_spec(h), 3, true));
  }
  void check(const Geometry& g) const override {
    a_->check(g);
    b_->check(g);
  }
  bool bounds_keys() const override { return a_->bounds_keys(); }
  bool analytic_tiles() const override { return a_->analytic_tiles() && b_->analytic_tiles(); }
  bool needs_inputs() const override { return a_->needs_inputs() || b_->needs_inputs(); }
  PatternPtr resolve(const SelectorResolver& r, const std::vector<bool>& heads) const override {
    PatternPtr a = a_->resolve(r, heads), b = b_->resolve(r, heads);
    if (!a && !b) return nullptr;
    return make_difference(a ? a : a_, b ? b : b_);
  }
  std::string scanned_part() const override {
    if (auto s = a_->scanned_part(); !s.empty()) return s;
    if (!b_->analytic_tiles()) return b_->spec();
    return {};
  }
  bool depends_on_head() const override { return a_->depends_on_head() || b_->depends_on_head(); }
  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    return a_->key_ranges(g, h, q0, q1, out);
  }
  // a's full ranges minus every key b might allow.
  void full_key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    std::vector<KeyRange> b_keys;
    if (!b_->key_ranges(g, h, q0, q1, b_keys)) {
      out.clear();
      return;
    }
    a_->full_key_ranges(g, h, q0, q1, out);
    normalize_ranges(out, g.nk);
    normalize_ranges(b_keys, g.nk);
    subtract_ranges(out, b_keys);
  }
  TileClass classify(const Geometry& g, int h, const Tile& t) const override {
    const TileClass ka = a_->classify(g, h, t);
    if (ka == TileClass::Empty) return TileClass::Empty;
    const TileClass kb = b_->classify(g, h, t);
    if (kb == TileClass::Full) return TileClass::Empty;
    if (ka == TileClass::Full && kb == TileClass::Empty) return TileClass::Full;
    return TileClass::Partial;
  }
  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& mask) const override {
    const TileClass ka = a_->classify(g, h, t);
    if (ka == TileClass::Empty) return;
    const TileClass kb = b_->classify(g, h, t);
    if (kb == TileClass::Full) return;
    ScratchMask acc(mask);
    if (ka == TileClass::Full)
      acc.get().fill();
    else
      a_->fill_tile(g, h, t, acc.get());
    if (kb == TileClass::Partial) {
      ScratchMask part(mask);
      b_->fill_tile(g, h, t, part.get());
      acc.get().and_not(part.get());
    }
    mask.or_with(acc.get());
  }
  int precedence() const override { return 3; }

 private:
  PatternPtr a_, b_;
};

class PerHeadPattern final : public Pattern {
 public:
  explicit PerHeadPattern(std::vector<HeadGroup> groups) : groups_(std::move(groups)) {
    // Canonical order: groups by first head, ranges sorted and merged.
    for (auto& grp : groups_) {
      std::sort(grp.ranges.begin(), grp.ranges.end());
      std::vector<std::pair<int, int>> merged;
      for (auto r : grp.ranges) {
        if (!merged.empty() && r.first <= merged.back().second + 1)
          merged.back().second = std::max(merged.back().second, r.second);
        else
          merged.push_back(r);
      }
      grp.ranges = std::move(merged);
    }
    std::sort(groups_.begin(), groups_.end(), [](const HeadGroup& a, const HeadGroup& b) {
      return a.ranges.front().first < b.ranges.front().first;
    });
    for (std::size_t g = 0; g < groups_.size(); ++g)
      for (auto [lo, hi] : groups_[g].ranges) {
        if (static_cast<std::size_t>(hi) >= owner_.size()) owner_.resize(hi + 1, -1);
        for (int h = lo; h <= hi; ++h) {
          if (owner_[h] >= 0)
            throw UsageError(fmt::format("heads(...): head {} is assigned twice", h));
          owner_[h] = static_cast<int>(g);
        }
      }
  }
  const Pattern& at(int h) const {
    if (h < 0 || h >= static_cast<int>(owner_.size()) || owner_[h] < 0)
      throw UsageError(fmt::format("heads(...): head {} has no pattern", h));
    return *groups_[owner_[h]].pattern;
  }
  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override {
    return at(h).allows(g, h, i, j);
  }
  std::string spec() const override {
    std::string s = "heads(";
    for (std::size_t k = 0; k < groups_.size(); ++k) {
      if (k) s += "; ";
      for (std::size_t r = 0; r < groups_[k].ranges.size(); ++r) {
        auto [lo, hi] = groups_[k].ranges[r];
        if (r) s += ", ";
        s += lo == hi ? fmt::format("{}", lo) : fmt::format("{}..{}", lo, hi);
      }
      s += fmt::format(": {}", groups_[k].pattern->spec());
    }
    s += ')';
    return s;
  }
  // Parenthesized because parents place parentheses by this node's precedence (an atom): else
  // (a - b) - c on one head and a - (b - c) on another would both read "a - b - c" and share a
  // layout.
  std::string head_spec(int h) const override { return fmt::format("({})", at(h).head_spec(h)); }
  bool depends_on_head() const override { return true; }
  bool needs_inputs() const override {
    return std::any_of(groups_.begin(), groups_.end(),
                       [](const HeadGroup& g) { return g.pattern->needs_inputs(); });
  }
  // Each group resolves its selectors on its own heads only.
  PatternPtr resolve(const SelectorResolver& r, const std::vector<bool>& heads) const override {
    std::vector<HeadGroup> out = groups_;
    bool changed = false;
    for (auto& grp : out) {
      std::vector<bool> mine(heads.size(), false);
      for (auto [lo, hi] : grp.ranges)
        for (int h = lo; h <= hi && h < static_cast<int>(heads.size()); ++h) mine[h] = heads[h];
      if (PatternPtr n = grp.pattern->resolve(r, mine)) {
        grp.pattern = std::move(n);
        changed = true;
      }
    }
    return changed ? std::make_shared<PerHeadPattern>(std::move(out)) : nullptr;
  }
  void check(const Geometry& g) const override {
    std::vector<int> missing;
    for (int h = 0; h < g.heads; ++h)
      if (h >= static_cast<int>(owner_.size()) || owner_[h] < 0) missing.push_back(h);
    if (!missing.empty())
      throw UsageError(fmt::format(
          "heads(...) assigns no pattern to head {} (the geometry has {} heads; every head "
          "0..{} needs exactly one group)",
          missing.front(), g.heads, g.heads - 1));
    if (static_cast<int>(owner_.size()) > g.heads)
      throw UsageError(
          fmt::format("heads(...) assigns a pattern to head {}, but the geometry has only {} heads",
                      static_cast<int>(owner_.size()) - 1, g.heads));
    for (const auto& grp : groups_) grp.pattern->check(g);
  }
  bool bounds_keys() const override {
    return std::all_of(groups_.begin(), groups_.end(),
                       [](const HeadGroup& g) { return g.pattern->bounds_keys(); });
  }
  bool analytic_tiles() const override {
    return std::all_of(groups_.begin(), groups_.end(),
                       [](const HeadGroup& g) { return g.pattern->analytic_tiles(); });
  }
  std::string scanned_part() const override {
    for (const auto& grp : groups_)
      if (auto s = grp.pattern->scanned_part(); !s.empty()) return s;
    return {};
  }
  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    return at(h).key_ranges(g, h, q0, q1, out);
  }
  void full_key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    at(h).full_key_ranges(g, h, q0, q1, out);
  }
  TileClass classify(const Geometry& g, int h, const Tile& t) const override {
    return at(h).classify(g, h, t);
  }
  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& mask) const override {
    at(h).fill_tile(g, h, t, mask);
  }
  void diagonal_cover(const Geometry& g, int h, DiagonalCover& out) const override {
    at(h).diagonal_cover(g, h, out);
  }

 private:
  std::vector<HeadGroup> groups_;
  std::vector<int> owner_;  // head -> group index, -1 if unassigned
};

template <class T>
void flatten_into(std::vector<PatternPtr>& out, const PatternPtr& p) {
  if (auto* n = dynamic_cast<const T*>(p.get()))
    for (const auto& c : n->children()) out.push_back(c);
  else
    out.push_back(p);
}

}  // namespace

PatternPtr make_union(std::vector<PatternPtr> children) {
  if (children.empty()) throw UsageError("a union needs at least one pattern");
  if (children.size() == 1) return children.front();
  std::vector<PatternPtr> flat;
  for (const auto& c : children) flatten_into<UnionPattern>(flat, c);
  return std::make_shared<UnionPattern>(std::move(flat));
}

PatternPtr make_intersection(std::vector<PatternPtr> children) {
  if (children.empty()) throw UsageError("an intersection needs at least one pattern");
  if (children.size() == 1) return children.front();
  std::vector<PatternPtr> flat;
  for (const auto& c : children) flatten_into<IntersectionPattern>(flat, c);
  return std::make_shared<IntersectionPattern>(std::move(flat));
}

PatternPtr make_difference(PatternPtr a, PatternPtr b) {
  return std::make_shared<DifferencePattern>(std::move(a), std::move(b));
}

PatternPtr make_per_head(std::vector<HeadGroup> groups) {
  if (groups.empty()) throw UsageError("heads(...) needs at least one group");
  for (const auto& g : groups) {
    if (g.ranges.empty()) throw UsageError("heads(...): a group lists no heads");
    for (auto [lo, hi] : g.ranges)
      if (lo < 0 || hi < lo || hi >= kMaxHeads)
        throw UsageError(fmt::format("heads(...): head range {}..{} is invalid: allowed 0..{}", lo,
                                     hi, kMaxHeads - 1));
  }
  return std::make_shared<PerHeadPattern>(std::move(groups));
}

}  // namespace spattn
