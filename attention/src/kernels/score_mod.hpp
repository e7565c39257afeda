#pragma once
// The score modifications inside the kernels (spattn/attention/score_mod.hpp gives the rules):
// soft-capping z = C tanh(s / C), then ALiBi z -= m_h |p - j|, then an additive bias, on 16
// scaled scores at once, before the mask. Kernels take a null ScoreLanes when nothing is modified
// and then run their unmodified code (a separate template instance), so plain attention pays
// nothing.
#include <cstdint>

#include "simd.hpp"

namespace spattn::kernels {

struct ScoreLanes {
  float cap = 0.0f;      // soft-capping C (0: none)
  float inv_cap = 0.0f;  // 1 / C
  bool alibi = false;
  // Tile and class steps: per lane (the step's lanes) the query position and the ALiBi slope of
  // the lane's head; per key of the step its index. The diagonal step reads 16 lanes from qpos
  // and slope. Unused without ALiBi.
  const float* qpos = nullptr;
  const float* slope = nullptr;
  const float* kpos = nullptr;
  // Additive bias of the step's scores, laid out as its scores (tile and class steps: [keys]
  // [lanes]; diagonal step: [slots][16]; track step: [query vector][key vector][16]); null: none.
  const float* bias = nullptr;
};

// 16 scaled scores s with their distances |p - j| and slopes: soft-capped, then biased.
SPATTN_INLINE VF modify_scores(const ScoreLanes& m, VF s, VF dist, VF slope) {
  if (m.cap > 0.0f) s = mul(bcast(m.cap), tanh(mul(s, bcast(m.inv_cap))));
  if (m.alibi) s = fnma(slope, dist, s);
  return s;
}

// Lane offsets 0..15 as floats.
SPATTN_INLINE VF lane_iota() {
  alignas(64) static constexpr float kIota[kLanes] = {0, 1, 2,  3,  4,  5,  6,  7,
                                                      8, 9, 10, 11, 12, 13, 14, 15};
  return load(kIota);
}

}  // namespace spattn::kernels
