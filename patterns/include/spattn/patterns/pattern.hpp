#pragma once
// The Pattern interface: an exact set of allowed (query, key) pairs, per head.
//
// A prototype implements only `allows` and `spec`; the layout builder then scans every pair
// (correct, quadratic, and reported as "scanned"). Built-ins also implement the fast paths
// `key_ranges`, `classify` and `fill_tile`, which let the builder work in time proportional to the
// kept tiles plus the bits of partial tiles.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spattn/patterns/diagonals.hpp"
#include "spattn/patterns/geometry.hpp"
#include "spattn/patterns/tile.hpp"

namespace spattn {

class Pattern;
class Selector;
using PatternPtr = std::shared_ptr<const Pattern>;

// Turns the selector nodes of a pattern tree into static patterns once Q and K are known
// (attention/select/ implements it; selector.hpp has the selector node).
class SelectorResolver {
 public:
  virtual ~SelectorResolver() = default;
  // The static pattern holding what `s` selects on the heads h with heads[h] true (other heads
  // are never asked of the result).
  virtual PatternPtr resolve(const Selector& s, const std::vector<bool>& heads) const = 0;
};

class Pattern {
 public:
  virtual ~Pattern() = default;

  // Ground truth: may query i (0 <= i < nq, position p(i) = g.position(i)) attend to key j
  // (0 <= j < nk) on head `head`?
  virtual bool allows(const Geometry& g, int head, std::int64_t i, std::int64_t j) const = 0;

  // Canonical spec string; parse_spec(spec()) yields an equal pattern.
  virtual std::string spec() const = 0;

  // Checks the pattern against a geometry (e.g. global tokens must be < nk) and throws
  // UsageError naming the bad value. Called once by the builder before any work.
  virtual void check(const Geometry& g) const;

  // Fast path: replaces `out` with key ranges that contain every key allowed for some query in
  // [q_begin, q_end) on `head` (a superset is fine; the builder classifies what it gets).
  // Returns false when not implemented: every key is then a candidate.
  virtual bool key_ranges(const Geometry& g, int head, std::int64_t q_begin, std::int64_t q_end,
                          std::vector<KeyRange>& out) const;

  // Fast path: replaces `out` with key ranges in which every query of [q_begin, q_end) may attend
  // to every key (a subset is fine; empty means "none known"). The builder marks tiles inside
  // them Full without calling classify. Default: none.
  virtual void full_key_ranges(const Geometry& g, int head, std::int64_t q_begin,
                               std::int64_t q_end, std::vector<KeyRange>& out) const;

  // Fast path: Empty/Full must be exact; Partial means "scan it". Default: scans with `allows`.
  virtual TileClass classify(const Geometry& g, int head, const Tile& t) const;

  // Fast path: sets exactly the allowed bits of tile `t` into `mask` (already reset to t's
  // rows x cols, all zero). Default: scans with `allows`.
  virtual void fill_tile(const Geometry& g, int head, const Tile& t, TileMask& mask) const;

  // Fast path for the executor: replaces `out` with diagonals o = p(i) - j on which every pair
  // (with 0 <= j < nk) is allowed on `head` (a subset is fine; empty means "none known", the
  // default). Residue-class rules report their sparse diagonals here, bands their offset range,
  // and combinators combine their children's (diagonals.hpp).
  virtual void diagonal_cover(const Geometry& g, int head, DiagonalCover& out) const;

  // True when key_ranges is implemented for every head (the builder need not try every key).
  virtual bool bounds_keys() const { return false; }
  // True when classify and fill_tile avoid per-pair `allows` calls (throughout the tree).
  virtual bool analytic_tiles() const { return false; }
  // Name of the first pattern in the tree that lacks a fast path, for `stats` ("" if none).
  virtual std::string scanned_part() const;

  // A string that is equal for two heads exactly when this pattern allows the same pairs on
  // them (heads with equal head_spec share one BlockLayout). Default: spec(), plus "@h" for
  // patterns whose pairs depend on the head.
  virtual std::string head_spec(int head) const;
  virtual bool depends_on_head() const { return false; }

  // True when the tree holds a selector (selector.hpp): a node that chooses its keys from Q and
  // K and has no layout until it has seen them.
  virtual bool needs_inputs() const { return false; }
  // The tree with every selector replaced by what `r` resolves it to, for the heads marked in
  // `heads`; nullptr when nothing changes (no selector below this node).
  virtual PatternPtr resolve(const SelectorResolver& r, const std::vector<bool>& heads) const;

  // Precedence used by the printer to place parentheses: 4 atom, 3 '-', 2 '&', 1 '|'.
  virtual int precedence() const { return 4; }
};

// Equality of patterns is equality of canonical spec strings.
inline bool operator==(const Pattern& a, const Pattern& b) {
  return a.spec() == b.spec();
}

// Shared helpers for implementations.
namespace detail {
// Default scan of a tile with allows(); early exit once both allowed and denied pairs are seen.
TileClass scan_classify(const Pattern& p, const Geometry& g, int head, const Tile& t);
void scan_fill(const Pattern& p, const Geometry& g, int head, const Tile& t, TileMask& mask);
// Classifies a tile of a pattern whose allowed keys for each query form one interval
// [lo(p), hi(p)] (inclusive, possibly empty when lo > hi) with lo and hi non-decreasing in p.
// Used by window-like patterns.
template <class Lo, class Hi>
TileClass classify_monotone_band(const Geometry& g, const Tile& t, Lo lo, Hi hi) {
  const std::int64_t p0 = g.position(t.q_begin), p1 = g.position(t.q_end - 1);
  const std::int64_t k0 = t.k_begin, k1 = t.k_end - 1;
  // Full iff every query's interval covers [k0, k1]: the largest lo <= k0 and the smallest hi >=
  // k1.
  if (lo(p1) <= k0 && hi(p0) >= k1) return TileClass::Full;
  // Empty iff no query's interval meets [k0, k1].
  // Intervals move right with p; the tile is empty iff the last interval ends before k0 or the
  // first starts after k1, or every interval in between is itself empty/misses.
  if (hi(p1) < k0 || lo(p0) > k1) return TileClass::Empty;
  return TileClass::Partial;
}
template <class Lo, class Hi>
void fill_monotone_band(const Geometry& g, const Tile& t, TileMask& m, Lo lo, Hi hi) {
  for (std::int64_t r = 0; r < t.rows(); ++r) {
    const std::int64_t p = g.position(t.q_begin + r);
    m.set_range(r, lo(p) - t.k_begin, hi(p) + 1 - t.k_begin);
  }
}
}  // namespace detail

}  // namespace spattn
