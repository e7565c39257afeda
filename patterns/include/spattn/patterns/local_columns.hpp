#pragma once
// Causal "local band plus key columns" patterns: query position p may attend to key j iff
//   j <= p  and  (j >= local_lo(p)  or  j is a column key),
// where local_lo is non-decreasing with local_lo(p) <= p, and the column keys are periodic runs
// (a head-dependent ColumnSet). Sparse Transformer 'fixed' (local block + summary columns),
// vLLM's local/vertical-stride block-sparse attention and StreamingLLM (recent window + sinks)
// all have this shape; they share the fast paths here.
#include <algorithm>

#include "spattn/patterns/band.hpp"

namespace spattn {

// Keys j with floor_mod(j - offset, period) < len: runs of `len` keys every `period` keys.
// A single run [offset, offset + len) is period = kFarRight.
struct ColumnSet {
  std::int64_t period = kFarRight, offset = 0, len = 0;

  bool contains(std::int64_t j) const { return floor_mod(j - offset, period) < len; }
  // Column keys in [offset, x), extended to x < offset as a counting function (differences of
  // two values count the keys between them).
  std::int64_t below(std::int64_t x) const {
    const std::int64_t d = x - offset;
    return floor_div(d, period) * len + std::min(floor_mod(d, period), len);
  }
  // Column keys in [a, b] (inclusive; 0 when a > b).
  std::int64_t count(std::int64_t a, std::int64_t b) const {
    return a > b ? 0 : below(b + 1) - below(a);
  }
  // Calls f(begin, end) for each run clipped to [a, b], as half-open [begin, end), in order.
  template <class F>
  void for_each_run(std::int64_t a, std::int64_t b, F f) const {
    if (a > b || len == 0) return;
    for (std::int64_t start = offset + floor_div(a - offset, period) * period; start <= b;
         start += period) {
      const std::int64_t lo = std::max(start, a), hi = std::min(start + len - 1, b);
      if (lo <= hi) f(lo, hi + 1);
    }
  }
};

class CausalLocalColumns : public Leaf {
 public:
  // First key of the local band of position p: the band is [local_lo(p), p].
  virtual std::int64_t local_lo(std::int64_t p) const = 0;
  virtual ColumnSet columns(const Geometry& g, int head) const = 0;

  bool allows(const Geometry& g, int head, std::int64_t i, std::int64_t j) const override {
    const std::int64_t p = g.position(i);
    return j <= p && (j >= local_lo(p) || columns(g, head).contains(j));
  }
  bool key_ranges(const Geometry& g, int head, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    const ColumnSet cs = columns(g, head);
    // Short periods put a column in nearly every key block: one range is cheaper.
    if (cs.period < 2 * g.block_k) {
      out.assign(1, KeyRange{0, s.last + 1});
      return true;
    }
    out.assign(1, KeyRange{local_lo(s.first), s.last + 1});
    cs.for_each_run(0, std::min(s.last, local_lo(s.first) - 1),
                    [&](std::int64_t b, std::int64_t e) {
                      out.push_back({b, e});
                    });
    return true;
  }
  // Every query of the range sees [local_lo(last), first] and the column keys <= first.
  void full_key_ranges(const Geometry& g, int head, std::int64_t q0, std::int64_t q1,
                       std::vector<KeyRange>& out) const override {
    const PosSpan s = positions(g, q0, q1);
    out.clear();
    if (local_lo(s.last) <= s.first) out.push_back({local_lo(s.last), s.first + 1});
    const ColumnSet cs = columns(g, head);
    if (cs.period < 2 * g.block_k) return;
    cs.for_each_run(0, std::min(s.first, local_lo(s.last) - 1),
                    [&](std::int64_t b, std::int64_t e) {
                      out.push_back({b, e});
                    });
  }
  TileClass classify(const Geometry& g, int head, const Tile& t) const override {
    const std::int64_t p0 = g.position(t.q_begin), p1 = g.position(t.q_end - 1);
    const std::int64_t k0 = t.k_begin, k1 = t.k_end - 1;
    if (k0 > p1) return TileClass::Empty;
    const ColumnSet cs = columns(g, head);
    // Full: causal for every row, and the keys left of the last row's band are all columns
    // (the last row has the narrowest band).
    if (k1 <= p0) {
      const std::int64_t left = std::min(k1, local_lo(p1) - 1);
      if (cs.count(k0, left) == std::max<std::int64_t>(0, left - k0 + 1)) return TileClass::Full;
    }
    // Some band pair exists iff local_lo(p0) <= k1 (given k0 <= p1, as local_lo(p) <= p); some
    // column pair iff a column key lies in [k0, min(k1, p1)] (take the last row).
    if (local_lo(p0) > k1 && cs.count(k0, std::min(k1, p1)) == 0) return TileClass::Empty;
    return TileClass::Partial;
  }
  void fill_tile(const Geometry& g, int head, const Tile& t, TileMask& m) const override {
    const ColumnSet cs = columns(g, head);
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const std::int64_t p = g.position(t.q_begin + r);
      const std::int64_t hi = std::min(t.k_end - 1, p);
      if (hi < t.k_begin) continue;
      const std::int64_t lo = local_lo(p);
      m.set_range(r, std::max(t.k_begin, lo) - t.k_begin, hi + 1 - t.k_begin);
      cs.for_each_run(t.k_begin, std::min(hi, lo - 1), [&](std::int64_t b, std::int64_t e) {
        m.set_range(r, b - t.k_begin, e - t.k_begin);
      });
    }
  }
};

}  // namespace spattn
