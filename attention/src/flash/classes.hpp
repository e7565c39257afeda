#pragma once
// Residue classes: how the executor runs sparse diagonals (cover runs with step >= 2) through
// the tile kernel, the way the Sparse Transformer implements strided attention.
//
// Let s be the gcd of the sparse runs' steps. A query at position P belongs to class c = P mod
// s and has class index a = P div s; a key j to class j mod s with index b = j div s. Every
// offset o = P - j of residue delta = o mod s pairs class c with key class c' = (c - delta) mod
// s, and o = (a - b) s + (c - c'), where c - c' is delta (c >= delta) or delta - s. When the
// offsets of residue delta are delta + k s for every k in [k0, k1], class c meets class c' on
// the band k0 + e <= a - b <= k1 + e (e = 0 or 1): in reordered coordinates a strided rule is a
// dense causal block per class, a dilated window a narrow band. A work item takes `queries`
// consecutive class indices of one class (Q^T gathered from rows s apart) and runs the band's
// key indices of each residue, 64 at a time, through the tile kernel (K and V rows gathered
// into a packed panel), masked only on the band's edges; the result is folded into O and LSE
// like the residue tracks'.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "spattn/patterns/geometry.hpp"

namespace spattn::flash {

inline constexpr int kClassKeys = 64;  // keys per kernel step (a gather panel's size)

// Offsets delta + k s, k0 <= k <= k1, of one residue.
struct ClassBand {
  std::int64_t delta = 0, k0 = 0, k1 = -1;
};

struct ClassItem {
  std::int64_t c = 0, a0 = 0;  // class, first class index
  std::uint64_t lanes = 0;     // bit q: query a0 + q of the class exists and runs diagonals
};

struct ClassPlan {
  std::int64_t step = 0;         // s (0: the offsets are not bands of residues)
  int queries = 64;              // class indices per item: 16, 32 or 64
  std::vector<ClassBand> bands;  // by increasing delta
  std::vector<ClassItem> items;
  std::int64_t pairs = 0;  // queries x keys the kernel evaluates, over the items

  bool empty() const { return step == 0; }
};

// The bands of an offset set (increasing, distinct) whose runs' steps have gcd `s` >= 1 (s = 1:
// a dense band in plain coordinates);
// an empty plan (step 0) when some residue's offsets are not one run of step s.
ClassPlan make_class_bands(const std::vector<std::int64_t>& offsets, std::int64_t s);

// Items of `queries` class indices (16, 32 or 64) over the query rows with row_diagonal set,
// and their pairs. Queries at positions i + shift, i < nq; block_q rows per query-tile row.
void set_class_items(ClassPlan& cp, int queries, const std::vector<std::uint8_t>& row_diagonal,
                     std::int64_t block_q, std::int64_t nq, std::int64_t nk, std::int64_t shift);

// One kernel step of an item: key indices b0 .. b0 + keys - 1 of class cp (keys of the
// sequence at cp + b s) against the item's queries on band [lo, hi] of a - b.
struct ClassChunk {
  std::int64_t cp = 0, b0 = 0;
  int keys = 0;
  std::int64_t lo = 0, hi = 0;
  bool full = false;  // every lane and key of the step is on the band and valid
};

// Calls f(const ClassChunk&) for the steps of an item: bands by increasing delta, key indices
// increasing.
template <class F>
void for_each_class_chunk(const ClassPlan& cp, const ClassItem& item, std::int64_t nk, F&& f) {
  const std::int64_t s = cp.step;
  const std::uint64_t all =
      cp.queries == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << cp.queries) - 1;
  for (const ClassBand& band : cp.bands) {
    const std::int64_t cprime = floor_mod(item.c - band.delta, s);
    if (cprime > nk - 1) continue;
    const std::int64_t e = item.c >= band.delta ? 0 : 1;
    const std::int64_t lo = band.k0 + e, hi = band.k1 + e;
    const std::int64_t b_first = std::max<std::int64_t>(0, item.a0 - hi);
    const std::int64_t b_last = std::min((nk - 1 - cprime) / s, item.a0 + cp.queries - 1 - lo);
    for (std::int64_t b0 = b_first; b0 <= b_last; b0 += kClassKeys) {
      ClassChunk ch;
      ch.cp = cprime;
      ch.b0 = b0;
      ch.keys = static_cast<int>(std::min<std::int64_t>(kClassKeys, b_last - b0 + 1));
      ch.lo = lo;
      ch.hi = hi;
      ch.full = item.lanes == all && item.a0 - (b0 + ch.keys - 1) >= lo &&
                item.a0 + cp.queries - 1 - b0 <= hi;
      f(ch);
    }
  }
}

// Lane bits of a step: keep[x * (lanes / 16) + w] bit t = lane 16 w + t (query q = (16 w + t)
// mod queries of the item, one block of `queries` lanes per query head) meets key index b0 + x
// on the band and the query exists. For x < keys.
void class_chunk_keep(const ClassPlan& cp, const ClassItem& item, const ClassChunk& ch,
                      std::int64_t lanes, std::uint16_t* keep);

}  // namespace spattn::flash
