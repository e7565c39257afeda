#pragma once
// Diagonal covers: sets of diagonals o = p(i) - j (query position minus key index) on which a
// pattern allows every pair. The executor runs such diagonals on its diagonal path (16 queries
// against 16 keys at one offset per vector step), so residue-class rules ((p - j) mod l == 0:
// strided, dilated windows) cost what they keep instead of whole tiles. A cover is a subset of
// the pattern: leaving a diagonal out is always correct (the tiles still hold it).
#include <cstdint>
#include <vector>

#include "spattn/patterns/geometry.hpp"

namespace spattn {

// Offsets first, first + step, ..., up to last (inclusive), step >= 1; empty when first > last.
struct DiagonalRun {
  std::int64_t first = 0, last = -1, step = 1;

  bool empty() const { return first > last; }
  bool contains(std::int64_t o) const {
    if (o < first || o > last) return false;
    const std::int64_t r = (o - first) % step;
    return r == 0;
  }
  // Offsets in the run (0 when empty).
  std::int64_t size() const { return empty() ? 0 : (last - first) / step + 1; }
  friend bool operator==(const DiagonalRun&, const DiagonalRun&) = default;
};

using DiagonalCover = std::vector<DiagonalRun>;

// The offsets a geometry can hold: p(i) - j for 0 <= i < nq, 0 <= j < nk.
inline std::int64_t min_offset(const Geometry& g) {
  return g.position(0) - (g.nk - 1);
}
inline std::int64_t max_offset(const Geometry& g) {
  return g.position(g.nq - 1);
}

// The run [lo, hi] with the given step and residue (offsets o with o mod step == residue mod
// step), clipped to the geometry's offsets; empty when nothing is left.
DiagonalRun make_run(const Geometry& g, std::int64_t lo, std::int64_t hi, std::int64_t step,
                     std::int64_t residue = 0);

// Offsets in both runs; exact when one step divides the other, otherwise empty (still a valid
// cover: a subset).
DiagonalRun intersect(const DiagonalRun& a, const DiagonalRun& b);

// Offsets that lie in at least one run of every cover (pairwise run intersections).
DiagonalCover intersect(const DiagonalCover& a, const DiagonalCover& b);

// The distinct offsets of a cover in increasing order (runs may overlap). O(offsets).
std::vector<std::int64_t> cover_offsets(const DiagonalCover& cover);

}  // namespace spattn
