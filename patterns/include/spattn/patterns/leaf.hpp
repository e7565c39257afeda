#pragma once
// Leaf: the base of a pattern that implements every fast path (key_ranges, classify, fill_tile),
// so its layouts build in O(kept tiles + partial-tile bits); the built-ins and plugin patterns
// derive from it (patterns/README.md, "Step 2: the fast paths").
#include <cstdint>

#include "spattn/patterns/pattern.hpp"

namespace spattn {

// A pattern with every fast path: bounds_keys() and analytic_tiles() are true.
class Leaf : public Pattern {
 public:
  bool bounds_keys() const override { return true; }
  bool analytic_tiles() const override { return true; }
};

// The positions [p(q_begin), p(q_end - 1)] (inclusive) of the query range [q_begin, q_end).
struct PosSpan {
  std::int64_t first, last;
};
inline PosSpan positions(const Geometry& g, std::int64_t q0, std::int64_t q1) {
  return {g.position(q0), g.position(q1 - 1)};
}

}  // namespace spattn
