#pragma once
// One step of the diagonal path: 16 queries (one vector of lanes) against up to 64 diagonals.
//
// Lane i holds query q0 + i (position P + i); at diagonal slot y its key is key0[y] + i, so the
// 16 keys of a slot are consecutive and their K and V rows are one vector of each row of the
// transposed K^T [d][keys] and V^T [d][keys]:
//   S[y][i]    = sum_p Q^T[p][i] * K^T[p][key0[y] + i]
//   O^T[x][i] += sum_y P[y][i] * V^T[x][key0[y] + i]
// Every multiply-add is useful (no broadcast, no masked tile area); lanes whose key lies
// outside the sequence are masked by `keep`. Residue-class rules ((p - j) mod l == 0) put
// 16 consecutive residue classes in the lanes, which is the Sparse Transformer's reordering
// done in place.
#include <cstdint>

#include "score_mod.hpp"

namespace spattn::kernels {

inline constexpr int kMaxDiagonalSlots = 64;

struct DiagonalStep {
  const float* qt = nullptr;  // Q^T of the item, [d][lanes], already scaled; this vector's
                              // lanes start at qt (stride `lanes` between dims)
  std::int64_t lanes = 0;
  int d = 0;                  // head dim of q and k
  int dv = 0;                 // head dim of v and O^T (0: d)
  const float* kt = nullptr;  // K^T: key j of dim p at kt[p * t_stride + j] (j may be -16..-1
  const float* vt = nullptr;  // or nk..nk+15: padding, finite, always masked)
  std::int64_t t_stride = 0;
  const std::int64_t* key0 = nullptr;   // [slots] key of lane 0 at each slot
  const std::uint16_t* keep = nullptr;  // [slots] valid lanes
  int slots = 0;                        // 1..kMaxDiagonalSlots
  float* s = nullptr;                   // scratch [kMaxDiagonalSlots][16]
  float* ot = nullptr;                  // O^T of this vector (stride `lanes`)
  float* m = nullptr;                   // running max of these 16 lanes
  float* l = nullptr;                   // running sum of these 16 lanes
  // Soft-capping / ALiBi (qpos and slope: these 16 lanes; key of lane i at slot y: key0[y] + i);
  // null: scores unmodified.
  const ScoreLanes* mod = nullptr;
};

// Folds the slots into (O^T, m, l) with the same online softmax as flash_step.
void diagonal_step(const DiagonalStep& t);

}  // namespace spattn::kernels
