#pragma once
// Selectors: patterns that choose their keys from the data (Q and K) instead of from positions.
//
// A Selector node is parsed, printed, composed (|, &, -, heads(...)) and validated like any
// pattern, but it has no layout of its own: building one from positions alone (build_layout,
// `spattn stats` / `spattn mask` without inputs) throws a UsageError naming --inputs. Given Q and
// K, attention/select/ resolves each selector node into a SelectedPattern (the keys it chose,
// per head), so the combinators and the layout builder work on it unchanged and the executor
// never knows whether a layout was static or selected. The selection rules are catalogued in
// patterns/README.md ("Selectors").
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spattn/patterns/leaf.hpp"
#include "spattn/patterns/pattern.hpp"
#include "spattn/patterns/registry.hpp"

namespace spattn {

class Selector final : public Pattern {
 public:
  // `name` is the registered selector name, `args` its validated arguments, `spec` its
  // canonical spec string.
  Selector(std::string name, Args args, std::string spec)
      : name_(std::move(name)), args_(std::move(args)), spec_(std::move(spec)) {}
  const std::string& name() const { return name_; }
  const Args& args() const { return args_; }

  // No pairs without data: both throw the UsageError of no_inputs_error().
  bool allows(const Geometry& g, int head, std::int64_t i, std::int64_t j) const override;
  void check(const Geometry& g) const override;
  std::string spec() const override { return spec_; }
  bool needs_inputs() const override { return true; }
  bool depends_on_head() const override { return true; }
  PatternPtr resolve(const SelectorResolver& r, const std::vector<bool>& heads) const override {
    return r.resolve(*this, heads);
  }

 private:
  std::string name_;
  Args args_;
  std::string spec_;
};

// The error for a selector asked for a layout without inputs: names the selector and --inputs.
std::string no_inputs_message(const std::string& selector_spec);

// `pattern` with every selector resolved by `r` on heads 0..heads-1 (the pattern itself when it
// has none).
PatternPtr resolve_selectors(const PatternPtr& pattern, const SelectorResolver& r, int heads);

// What a selector chose on one head: the keys a query may reach, as
//   allowed(i, j) = (!causal || j <= p(i)) and
//                   (j in ranges[group(i)] or j in columns or p(i) - j in offsets),
// where group(i) = floor((p(i) - origin) / group_rows) - first_group indexes the CSR lists of
// key ranges (group_rows = 0: no ranges). Per-query selections use group_rows = 1; block
// selectors group the queries of one block.
struct SelectedHead {
  bool causal = true;
  std::int64_t group_rows = 0;
  std::int64_t origin = 0;
  std::int64_t first_group = 0;
  std::vector<std::int64_t> group_ptr{0};  // groups + 1 entries
  std::vector<KeyRange> ranges;            // per group: sorted, disjoint, not touching
  std::vector<std::int64_t> columns;       // sorted, distinct
  std::vector<std::int64_t> offsets;       // sorted, distinct, >= 0 when causal

  std::int64_t groups() const { return static_cast<std::int64_t>(group_ptr.size()) - 1; }
  // Appends the next group's ranges (normalized here, clipped to [0, nk)).
  void add_group(std::vector<KeyRange> group_ranges, std::int64_t nk);
  // Whether (query at position p, key j) is allowed.
  bool allows(std::int64_t p, std::int64_t j) const;
  std::int64_t bytes() const;
};

// The static pattern a selector resolves to: one SelectedHead per query head (nullptr for heads
// that were not selected, which allow nothing). Prints the selector's spec.
class SelectedPattern final : public Leaf {
 public:
  SelectedPattern(std::string spec, std::vector<std::shared_ptr<const SelectedHead>> heads)
      : spec_(std::move(spec)), heads_(std::move(heads)) {}
  const SelectedHead* head(int h) const {
    return h >= 0 && h < static_cast<int>(heads_.size()) ? heads_[h].get() : nullptr;
  }

  bool allows(const Geometry& g, int head, std::int64_t i, std::int64_t j) const override;
  std::string spec() const override { return spec_; }
  bool depends_on_head() const override { return true; }
  bool key_ranges(const Geometry& g, int head, std::int64_t q_begin, std::int64_t q_end,
                  std::vector<KeyRange>& out) const override;
  // Empty when no key range meets the tile, else Partial (fill_tile finds Full tiles).
  TileClass classify(const Geometry& g, int head, const Tile& t) const override;
  void fill_tile(const Geometry& g, int head, const Tile& t, TileMask& mask) const override;
  // The selected diagonal offsets, as runs of consecutive offsets.
  void diagonal_cover(const Geometry& g, int head, DiagonalCover& out) const override;

 private:
  std::string spec_;
  std::vector<std::shared_ptr<const SelectedHead>> heads_;
};

}  // namespace spattn
