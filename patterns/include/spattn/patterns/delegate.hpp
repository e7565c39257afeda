#pragma once
// A named pattern family that is exactly a composition of other built-ins: it keeps its own
// canonical spec (the family's name and parameters) and forwards every question, fast paths
// included, to the composed tree, so it builds as fast as the tree and is never scanned.
#include <string>
#include <utility>

#include "spattn/patterns/pattern.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn {

class Delegate : public Pattern {
 public:
  Delegate(std::string spec, PatternPtr inner) : spec_(std::move(spec)), inner_(std::move(inner)) {}

  bool allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const override {
    return inner_->allows(g, h, i, j);
  }
  std::string spec() const override { return spec_; }
  void check(const Geometry& g) const override { inner_->check(g); }
  bool key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    return inner_->key_ranges(g, h, q0, q1, out);
  }
  void full_key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    inner_->full_key_ranges(g, h, q0, q1, out);
  }
  TileClass classify(const Geometry& g, int h, const Tile& t) const override {
    return inner_->classify(g, h, t);
  }
  void fill_tile(const Geometry& g, int h, const Tile& t, TileMask& m) const override {
    inner_->fill_tile(g, h, t, m);
  }
  void diagonal_cover(const Geometry& g, int h, DiagonalCover& out) const override {
    inner_->diagonal_cover(g, h, out);
  }
  bool bounds_keys() const override { return inner_->bounds_keys(); }
  bool analytic_tiles() const override { return inner_->analytic_tiles(); }
  std::string scanned_part() const override {
    return inner_->scanned_part().empty() ? std::string() : spec_;
  }
  bool depends_on_head() const override { return inner_->depends_on_head(); }
  // The composed tree's head_spec is exact per head, so heads with equal parameters share.
  std::string head_spec(int h) const override {
    return depends_on_head() ? inner_->head_spec(h) : spec_;
  }

 private:
  std::string spec_;
  PatternPtr inner_;
};

// The composed tree of a family, written in the spec language over the built-in registry.
inline PatternPtr compose(const std::string& tree) {
  return parse_spec(tree, Registry::global());
}

}  // namespace spattn
