#pragma once
// The residue-track kernel (see src/flash/tracks.hpp): up to 4 query vectors (16 queries each)
// against up to 8 key vectors, lane i of query vector a meeting lane i of key vector b:
//   S[a][b][i]   = sum_p Q^T_a[p][i] * K_b[p][i]
//   O^T_a[x][i] += sum_b P[a][b][i] * V_b[x][i]
// where K_b and V_b are the 16 keys of key vector b laid out [d][16] (a 16-key panel).
// Register blocks of 4 x 4 vector pairs: per dimension 4 loads of Q^T (L1) and 4 of K^T for 16
// FMAs, as in the tile kernel, so sparse diagonals run near its rate. Same online softmax as
// flash_step, per query vector.
#include <cstdint>

#include "score_mod.hpp"

namespace spattn::kernels {

inline constexpr int kTrackMaxQueries = 4;
inline constexpr int kTrackMaxKeys = 16;

struct TrackStep {
  int d = 0;                               // head dim of q and k
  int dv = 0;                              // head dim of v and O^T (0: d)
  int queries = 0;                         // query vectors, 1..4
  int keys = 0;                            // key vectors, 1..8
  const float* qt[kTrackMaxQueries] = {};  // Q^T of query vector a: [d][16], scaled
  float* ot[kTrackMaxQueries] = {};        // O^T of query vector a: [dv][16], unnormalized
  float* m[kTrackMaxQueries] = {};         // running max, 16 lanes
  float* l[kTrackMaxQueries] = {};         // running sum, 16 lanes
  const float* k[kTrackMaxKeys] = {};      // K_b: dim p of its 16 keys at k[b] + p * kv_stride
  const float* v[kTrackMaxKeys] = {};      // V_b likewise
  std::int64_t kv_stride = 0;
  const std::uint16_t (*keep)[kTrackMaxKeys] = nullptr;  // [queries][8] lane bits
  float* s = nullptr;                                    // scratch [4][8][16]
  // Soft-capping / ALiBi: lane i of query vector a sits at position qpos0[a] + i, lane i of key
  // vector b is key kpos0[b] + i, so their distance is |qpos0[a] - kpos0[b]| in every lane; all
  // lanes are one head, of ALiBi slope `slope`. mod null: scores unmodified (fields unused).
  const ScoreLanes* mod = nullptr;
  float slope = 0.0f;
  float qpos0[kTrackMaxQueries] = {};
  float kpos0[kTrackMaxKeys] = {};
};

void track_step(const TrackStep& t);

}  // namespace spattn::kernels
