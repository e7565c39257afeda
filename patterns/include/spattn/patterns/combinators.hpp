#pragma once
// Combinators: union, intersection, difference and per-head assignment. Each derives its fast
// paths from its children (union of key ranges, min/max of tile classes, bitwise mask ops).
#include <utility>
#include <vector>

#include "spattn/patterns/pattern.hpp"

namespace spattn {

// a | b | ...: allowed when any child allows (nested unions are flattened).
PatternPtr make_union(std::vector<PatternPtr> children);
// a & b & ...: allowed when every child allows (nested intersections are flattened).
PatternPtr make_intersection(std::vector<PatternPtr> children);
// a - b: allowed when a allows and b does not.
PatternPtr make_difference(PatternPtr a, PatternPtr b);

// heads(0..3: A; 4..7: B): head h uses the pattern of the group that lists h. Every head of the
// geometry must be listed exactly once (checked at build time); lists must not overlap.
struct HeadGroup {
  std::vector<std::pair<int, int>> ranges;  // inclusive [first, last] head ranges
  PatternPtr pattern;
};
PatternPtr make_per_head(std::vector<HeadGroup> groups);

}  // namespace spattn
