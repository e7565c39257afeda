#pragma once
// Residue tracks: how the diagonal path runs sparse diagonals (a cover run with step >= 2) with
// the reuse of a tile kernel.
//
// Offsets o = p - j of the sparse set all lie in a few residue classes delta mod T, where T, a
// multiple of 16, is lcm(16, gcd of the runs' steps). Query vector v (queries 16v .. 16v + 15)
// belongs to track tau = v mod (T / 16); along a track, vector a sits T positions after vector
// a - 1. Key vector b of residue delta holds keys base + bT .. base + bT + 15 with base = 16 tau
// + shift - delta, so query vector a and key vector b meet at one offset, (a - b)T + delta, in
// every lane: lane i pairs query 16v + i with key base + bT + i. The pattern (a strided band of
// diagonals) becomes a band in (a, b), and a block of 4 query vectors x 8 key vectors is a small
// dense tile in residue-reordered coordinates: every K/V vector loaded serves 4 query vectors,
// every Q vector 8 key vectors (the Sparse Transformer's reordering, done in the lanes).
#include <cstdint>
#include <vector>

namespace spattn::flash {

inline constexpr int kTrackQueries = 4;  // query vectors per block, at most
inline constexpr int kTrackKeys = 16;    // key vectors per block
// Query blocks per work item: the item walks its key vectors once, 8 at a time, and runs each
// chunk against all its query blocks while the chunk's K and V rows are in cache.
inline constexpr int kTrackGroupBlocks = 4;
// K and V are laid out for the tracks as 16-key panels [d][16] (one 4 KiB run per key vector),
// one copy per alignment of the key vectors mod 16 that the residues need; a plan needing more
// alignments than this runs its sparse diagonals on the single-vector path instead (measured:
// dilated(256, 4), 4 alignments, ran slower on 4 panel copies than on single vectors, while
// strided sets, 1 alignment, ran 4-9x faster on tracks at N = 64K; attention/README.md).
inline constexpr int kMaxTrackAlignments = 1;

struct TrackPlan {
  std::int64_t step = 0;  // T (0: no sparse diagonals)
  // Query vectors per block: 4, or fewer when the band of key vectors each query vector meets
  // at one residue is narrow (a block of A query vectors over a band of w key vectors
  // evaluates A + w - 1 key vectors for w).
  int queries = kTrackQueries;
  std::vector<std::int64_t> deltas;  // residues of the offsets mod T, increasing
  // Alignments (key of lane 0 mod 16) of the key vectors: (shift - delta) mod 16 for each
  // residue, distinct, increasing; align_of[k] is the index of deltas[k]'s.
  std::vector<int> aligns, align_of;
  std::int64_t omin = 0, omax = -1;  // smallest and largest offset of the set
  std::vector<std::uint64_t> bits;   // offset o is in the set iff bit o - omin is set
  // Per track tau: the query vectors v of the rows that run diagonals, increasing.
  std::vector<std::vector<std::int64_t>> members;

  bool empty() const { return step == 0; }
  bool contains(std::int64_t o) const {
    if (o < omin || o > omax) return false;
    const std::int64_t k = o - omin;
    return (bits[k / 64] >> (k % 64)) & 1u;
  }
  // Blocks of up to `queries` member vectors, over all tracks.
  std::int64_t query_blocks() const;
};

// The track plan of a sparse offset set (increasing, distinct) whose runs have steps with
// greatest common divisor `g` (>= 1). Members are left empty.
TrackPlan make_track_plan(const std::vector<std::int64_t>& offsets, std::int64_t g,
                          std::int64_t shift);

// Members: the vectors of the query-tile rows with row_diagonal[r] set.
void set_track_members(TrackPlan& tp, const std::vector<std::uint8_t>& row_diagonal,
                       std::int64_t block_q, std::int64_t nq);

// A work item: up to kTrackGroupBlocks query blocks of one track, members [first, first +
// count), split into blocks of tp.queries vectors.
struct TrackGroup {
  std::int64_t tau = 0, first = 0;
  int count = 0;  // member vectors, 1..kTrackGroupBlocks x tp.queries
};
std::vector<TrackGroup> track_groups(const TrackPlan& tp);

// One kernel block: a query block's vectors against up to 8 key vectors of residue `delta`.
struct TrackBlock {
  int query_block = 0;  // within the group
  int queries = 0;      // its member vectors
  std::int64_t delta = 0;
  int align = 0;                       // index into TrackPlan::aligns of the key vectors
  std::int64_t key0[kTrackKeys] = {};  // key of lane 0 of each key vector
  int keys = 0;                        // key vectors, 1..kTrackKeys
  // Lane bits of each (query vector, key vector) pair: its offset is in the set, the key lane
  // is inside the sequence and the query lane is below nq; 0 for a pair that meets nowhere.
  std::uint16_t keep[kTrackQueries][kTrackKeys] = {};
};

// Calls f(const TrackBlock&) for the blocks of a group, in a fixed order: residues increasing,
// chunks of 8 consecutive key vectors increasing, query blocks increasing; a block holds the
// chunk's key vectors that meet one of its query vectors (not always consecutive) and is
// skipped when there is none. Queries at positions i + shift (shift = nk - nq).
template <class F>
void for_each_track_block(const TrackPlan& tp, const TrackGroup& grp, std::int64_t nq,
                          std::int64_t nk, F&& f);

}  // namespace spattn::flash

#include "tracks_inl.hpp"
