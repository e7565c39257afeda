#pragma once
// The execution plan of one head layout: which path each kept tile and each query-tile row
// takes (execution_path.hpp), decided from the layout and its diagonal cover alone, so the
// executor and the cost model follow the same plan and the output does not depend on threads.
//
// Decisions. A Partial tile's cost is rows x keys evaluated: whole (rows x cols), narrowed to
// its used key run (rows x run length) or gathered (rows x used columns x kGatherWeight, the
// copy and the masked kernel); Auto takes the cheapest. A row uses the diagonal path when the
// weighted cost of its diagonals (kDiagonalWeight per pair: the diagonal kernel loads one K or V
// vector per FMA, the tile kernel fewer) plus what its tiles still hold after the diagonals are
// removed is below the cost of its tiles alone.
#include <cstdint>
#include <limits>
#include <vector>

#include "classes.hpp"
#include "spattn/attention/execution_path.hpp"
#include "spattn/patterns/block_layout.hpp"
#include "spattn/patterns/diagonals.hpp"
#include "spattn/patterns/layout.hpp"
#include "tracks.hpp"

namespace spattn::flash {

// Pairs: a tile whose rows keep a few scattered keys each (no shared columns): every kept pair
// on its own, one query row against its own keys (the row-level gather).
enum class TileAction : std::uint8_t { Skip, Whole, Run, Gather, Pairs };

// Offsets of a dense (step 1) cover run longer than this stay on the tiles (a causal or wide
// window band is cheaper there).
inline constexpr std::int64_t kMaxDenseDiagonalRun = 128;
inline constexpr double kGatherWeight = 1.15;
// A pair run on its own (a dot product, an exponential and a V row per pair, the row's state
// merged once per tile) against a pair of a 64-wide tile.
inline constexpr double kPairWeight = 8.0;
inline constexpr double kDiagonalWeight = 1.5;  // the single-vector kernel (short dense bands)
inline constexpr double kTrackWeight = 1.1;     // residue tracks (sparse diagonals)
// Once the rows are chosen, the sparse diagonals run on the cheapest of three kernels, costed
// per pair they evaluate relative to a 64-lane tile step: single vectors, residue tracks, or
// residue classes of 64, 32 or 16 queries per item (attention/README.md has the rates these
// come from).
inline constexpr double kSingleVectorCost = 2.4;
inline constexpr double kTrackCost = 2.4;
inline constexpr double kClassCost[3] = {1.4, 1.45, 1.5};  // 64, 32, 16 queries
// Short dense bands (one run of offsets) run as classes of step 1 inside the rows, on their
// lanes' running state: no gather of Q and no fold into O, so near a tile's rate per pair (64,
// 32, 16 queries; attention/README.md has the measurement).
inline constexpr double kBandCost[3] = {1.0, 1.05, 1.1};
// Residue classes need classes of at least this many queries, and run only where at least 70%
// of what they evaluate is kept (a narrow band wastes more: a block of Q queries over a band of
// W offsets evaluates Q + W - 1 keys per query for W; a short causal class wastes its corner).
inline constexpr std::int64_t kMinClassLength = 16;
// Cost of a tile pair by the tile's width, for choosing between whole plans: narrow tiles
// rescale the output every block_k keys and pay a row's overheads over fewer pairs.
inline double tile_cost(std::int64_t block_k) {
  return block_k <= 16 ? 1.2 : block_k <= 32 ? 1.1 : 1.0;
}
inline constexpr double kMinClassEfficiency = 0.7;
// Short dense bands leave the diagonal path for the tiles only where the plan keeps this
// efficiency (allowed / evaluated pairs).
inline constexpr double kMinPlanEfficiency = 0.75;

struct HeadPlan {
  std::vector<TileAction> action;  // per kept tile (index into col_index)
  std::vector<std::uint8_t> c0;    // per kept tile: first used key column (Run, Gather)
  std::vector<std::uint8_t> c1;    // per kept tile: last used key column, inclusive
  // Per kept tile: -1 every pair of the tile (Full, nothing removed); >= 0 mask m of the layout;
  // <= -2 residual mask -2 - k of `residual` (a tile's mask with the diagonals removed).
  std::vector<std::int32_t> mask;
  std::vector<std::uint64_t> residual;     // residual masks, layout mask format
  std::vector<std::uint8_t> row_diagonal;  // per query-tile row: 1 when it runs the diagonals
  // Diagonals of those rows: the dense bands' offsets, run per 16-query vector
  // (diagonal_step.hpp), increasing, and the sparse ones, run as residue tracks (tracks.hpp).
  std::vector<std::int64_t> offsets;
  TrackPlan track;
  std::vector<TrackGroup> track_groups;  // the residue tracks' work items
  ClassPlan classes;                     // or the sparse diagonals as residue classes
  ClassPlan bands;  // the dense bands as classes of step 1 (then `offsets` is left empty)
  PathPairs pairs;  // one head, one batch
  double cost = 0;  // pairs times their kernel's cost (plan.hpp's weights), for choosing plans

  bool uses_diagonals() const { return pairs.diagonal_rows > 0; }
  // The bits of kept tile t, or null when every pair of the tile is kept.
  const std::uint64_t* mask_bits(const BlockLayout& bl, std::int64_t t) const {
    const std::int32_t m = mask[t];
    if (m == -1) return nullptr;
    if (m >= 0) return bl.mask(m);
    return residual.data() + static_cast<std::int64_t>(-2 - m) * bl.mask_words();
  }
};

// Bytes the executor allocates for a large per-call buffer of `bytes` (the transposed K and V):
// from 4 MiB on, rounded up to whole 2 MiB huge pages; below, to 64 bytes.
inline std::int64_t large_buffer_bytes(std::int64_t bytes) {
  constexpr std::int64_t kHuge = std::int64_t{2} << 20;
  if (bytes > std::numeric_limits<std::int64_t>::max() - kHuge) return bytes;  // saturated
  if (bytes >= 2 * kHuge) return (bytes + kHuge - 1) / kHuge * kHuge;
  return bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
}

// What the diagonal paths of a set of plans need besides the workspaces: a transposed K and V
// ([d][16 + nk + 16] per K/V head) for the single-vector path, and 16-key panels of K and V
// ([panel][d][16], panel_count(nk) panels per alignment) for the residue tracks.
struct DiagonalBuffers {
  bool transposed = false;
  std::vector<int> aligns;  // alignments mod 16 needing panels, increasing
};
DiagonalBuffers diagonal_buffers(const std::vector<HeadPlan>& plans);
// Panels of one alignment r: panel i holds keys 16 i + r - 16 + lane (zero outside [0, nk)).
inline std::int64_t panel_count(std::int64_t nk) {
  return (nk + 31) / 16 + 1;
}

// Plans `bl` (positions: query i at i + nk - nq) with the diagonal `cover` of its pattern.
HeadPlan make_head_plan(const BlockLayout& bl, const DiagonalCover& cover, ExecutionPath path);
// The plans of a layout's distinct head layouts, in Layout::distinct order (a layout without
// diagonal covers plans with none).
std::vector<HeadPlan> make_layout_plans(const Layout& layout, ExecutionPath path);

// Offsets of `offsets` (sorted) in [lo, hi]: the index range [first, last).
std::pair<std::int64_t, std::int64_t> offset_range(const std::vector<std::int64_t>& offsets,
                                                   std::int64_t lo, std::int64_t hi);

}  // namespace spattn::flash
