#pragma once
// One step of the flash executor: a block of query lanes against one key tile.
//
// Orientation: queries live in the vector lanes. The executor packs a query tile transposed,
// Q^T [d][lanes] (once per task, amortized over all of the row's key tiles), and keeps the
// output transposed, O^T [d][lanes]. Then
//   S^T[j][i] = sum_p K[j][p] * Q^T[p][i]     (K read in place, one broadcast per FMA)
//   O^T[x][i] += sum_j V[j][x] * P^T[j][i]    (V read in place, one broadcast per FMA)
// so neither K nor V is ever transposed, and the softmax statistics of a query (the max and sum
// over keys) are lane-wise max/add across rows: no horizontal reductions anywhere. The query
// heads of a GQA/MQA group that share a layout are simply more lanes of the same step, so every
// K/V element loaded feeds all of them.
#include <cstdint>

#include "score_mod.hpp"

namespace spattn::kernels {

struct TileStep {
  const float* qt = nullptr;  // Q^T [d][lanes], already multiplied by the softmax scale
  std::int64_t lanes = 0;     // query lanes, a multiple of 16
  int d = 0;                  // head dim of q and k
  int dv = 0;                 // head dim of v and O^T (0: d)
  const float* k = nullptr;   // key j of the tile: d contiguous floats at k + j * k_stride
  std::int64_t k_stride = 0;
  const float* v = nullptr;  // value j: dv contiguous floats at v + j * v_stride
  std::int64_t v_stride = 0;
  int keys = 0;                         // keys in the tile (1..128)
  const std::uint16_t* keep = nullptr;  // [keys][lanes / 16] allowed-lane bits; null: Full tile
  float* s = nullptr;                   // scratch [keys][lanes]: S^T, then P^T
  float* ot = nullptr;                  // O^T accumulators [dv][lanes] (unnormalized)
  float* m = nullptr;                   // running max per lane [lanes] (-inf: nothing yet)
  float* l = nullptr;                   // running sum per lane [lanes]
  float* scratch = nullptr;             // [2 * lanes]
  // Soft-capping / ALiBi (qpos and slope [lanes], kpos [keys]); null: scores unmodified.
  const ScoreLanes* mod = nullptr;
};

// Folds one key tile into (O^T, m, l): online softmax with the tile's max, masked lanes
// contributing exactly zero. Dispatches on d (compile-time loops for 64 and 128 in AVX-512
// builds when dv = d; any other dv, and portable builds, run the generic instance).
void flash_step(const TileStep& t);

// O^T[x][i] /= l[i] in place, for all d rows and lanes (vectorized: a row item's d x lanes
// divisions cost ~6% of a 9-tile sliding-window row when done one float at a time). Lanes with
// l = 0 (nothing allowed) become NaN; the caller writes zeros for them.
void normalize(float* ot, const float* l, std::int64_t lanes, int d);

// Lane bits of a Partial tile: keep[j * (lanes / 16) + w] bit b = mask row ((16 w + b) mod
// block_q), key col0 + j, for j < keys. `mask` is a BlockLayout mask (block_q rows of row_words
// words, bit c of a row = key c). Lanes repeat every block_q (one block per query head of a
// group).
void transpose_mask(const std::uint64_t* mask, int row_words, int block_q, int col0, int keys,
                    std::int64_t lanes, std::uint16_t* keep);

// One key column of a mask as lane bits: keep[w] bit b = mask row ((16 w + b) mod block_q), key
// `col`, for the lanes / 16 vectors. Returns whether every lane is set.
bool column_lanes(const std::uint64_t* mask, int row_words, int block_q, int col,
                  std::int64_t lanes, std::uint16_t* keep);

}  // namespace spattn::kernels
