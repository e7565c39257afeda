#pragma once
// for_each_track_block (tracks.hpp): shared by the plan, which counts the pairs, and the
// executor, which runs them, so that the two agree by construction.
#include <algorithm>

#include "spattn/patterns/geometry.hpp"

namespace spattn::flash {

template <class F>
void for_each_track_block(const TrackPlan& tp, const TrackGroup& grp, std::int64_t nq,
                          std::int64_t nk, F&& f) {
  const std::int64_t T = tp.step, per = T / 16, shift = nk - nq;
  const std::int64_t* v = tp.members[grp.tau].data() + grp.first;
  const std::int64_t a_lo = (v[0] - grp.tau) / per, a_hi = (v[grp.count - 1] - grp.tau) / per;
  const int blocks = (grp.count + tp.queries - 1) / tp.queries;
  for (std::size_t di = 0; di < tp.deltas.size(); ++di) {
    const std::int64_t delta = tp.deltas[di];
    const std::int64_t base = 16 * grp.tau + shift - delta;
    // Offsets (a - b)T + delta within [omin, omax], keys base + bT + [0, 16) meeting [0, nk).
    std::int64_t b_lo = a_lo - floor_div(tp.omax - delta, T);
    std::int64_t b_hi = a_hi - ceil_div(tp.omin - delta, T);
    b_lo = std::max(b_lo, ceil_div(-15 - base, T));
    b_hi = std::min(b_hi, floor_div(nk - 1 - base, T));
    for (std::int64_t b0 = b_lo; b0 <= b_hi; b0 += kTrackKeys) {
      const int chunk = static_cast<int>(std::min<std::int64_t>(kTrackKeys, b_hi - b0 + 1));
      for (int qb = 0; qb < blocks; ++qb) {
        TrackBlock blk;
        blk.query_block = qb;
        blk.queries = std::min(tp.queries, grp.count - qb * tp.queries);
        blk.delta = delta;
        blk.align = tp.align_of[di];
        const std::int64_t* qv = v + qb * tp.queries;
        for (int c = 0; c < chunk; ++c) {
          const std::int64_t key0 = base + (b0 + c) * T;
          const std::int64_t lo = std::max<std::int64_t>(0, -key0);
          bool any = false;
          for (int k = 0; k < blk.queries; ++k) {
            const std::int64_t rows = std::min<std::int64_t>(16, nq - 16 * qv[k]);
            const std::int64_t hi = std::min<std::int64_t>(rows, nk - key0);
            std::uint16_t bits = 0;
            if (lo < hi && tp.contains(16 * qv[k] + shift - key0))
              bits = static_cast<std::uint16_t>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
            blk.keep[k][blk.keys] = bits;
            any = any || bits != 0;
          }
          if (any) blk.key0[blk.keys++] = key0;
        }
        if (blk.keys > 0) f(static_cast<const TrackBlock&>(blk));
      }
    }
  }
}

}  // namespace spattn::flash
