#pragma once
// Layout: one BlockLayout per head (heads with equal head patterns share one), and build_layout.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spattn/patterns/block_layout.hpp"
#include "spattn/patterns/diagonals.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/pattern.hpp"

namespace spattn {

struct BuildOptions {
  // A pattern without fast paths is built by scanning pairs; refuse scans of more pairs than
  // this (per distinct head layout) with an error instead of running for hours.
  std::int64_t max_scan_pairs = std::int64_t{1} << 32;
  // Layout memory budget in bytes, for all distinct head layouts together: a layout estimated
  // (from sampled rows) or found (while building) to exceed it is refused with BudgetError.
  // Default: 3/4 of the memory available when the options are made (MemAvailable).
  std::int64_t max_layout_bytes = default_layout_budget();
  // Worker threads for the build (0: oneTBB's default, all cores).
  int threads = 0;

  static std::int64_t default_layout_budget();
};

struct Layout {
  Geometry geometry;
  std::string spec;                                          // canonical spec of the pattern
  std::vector<std::shared_ptr<const BlockLayout>> distinct;  // distinct head layouts
  std::vector<int> head_to_distinct;                         // head h -> index into distinct
  // Per distinct head layout: diagonals on which every pair is allowed (Pattern::diagonal_cover
  // of its first head; empty when unknown). An execution hint: the BlockLayout still holds
  // every allowed pair, and the executor removes from its tiles what it runs as diagonals.
  std::vector<DiagonalCover> diagonals;
  bool scanned = false;      // some part was built by scanning pairs with allows()
  std::string scanned_part;  // which pattern lacked fast paths (when scanned)
  double build_seconds = 0;  // wall time of build_layout

  const BlockLayout& head(int h) const { return *distinct[head_to_distinct[h]]; }
  // Counts summed over all heads (shared layouts counted once per head that uses them), except
  // bytes, which counts each distinct layout once.
  LayoutCounts counts() const;
};

// Builds the layout of `pattern` at geometry `g` (validated first; throws UsageError on bad
// geometry or pattern/geometry mismatch). Parallel over query-block rows with oneTBB; the result
// does not depend on the thread count. Cost: O(kept tiles + partial-tile bits) for patterns with
// fast paths.
Layout build_layout(const Pattern& pattern, const Geometry& g, const BuildOptions& opt = {});

// Builds the BlockLayout of a single head.
BlockLayout build_block_layout(const Pattern& pattern, const Geometry& g, int head,
                               const BuildOptions& opt = {});

}  // namespace spattn
