#pragma once
// One step of the flash backward: a query tile against one key tile, all five products with
// register-blocked 16-lane kernels and no allocation.
//
// Orientation: keys live in the vector lanes for the scores, head dims for the gradients. The
// caller packs the key tile transposed once per key tile, (scale K)^T and V^T [d][kw] (kw: keys
// rounded up to 16, zero padded), and reuses it for every query tile that keeps it. Then
//   S[i][j]  = sum_p Q[i][p] (scale K)^T[p][j]      dP[i][j] = sum_x dO[i][x] V^T[x][j]
//   P = exp(z(S) - LSE_i) (masked lanes exactly 0), dS = P (dP - D_i) z'(S)
// with P and dS formed in registers beside each block of dP and stored once (z is the score
// modification, z' its derivative: 1 - tanh^2(S / C) with soft-capping, 1 otherwise; ALiBi's bias
// is constant). The gradients broadcast P or dS and read rows of dO, Q and K in place (head dims in
// the lanes):
//   dV[j] += sum_i P[i][j] dO[i],  dK[j] += sum_i dS[i][j] Q[i],  dQ[i] += sum_j dS[i][j] K[j]
// dK and dQ leave out the factor scale (the caller applies it once at the end).
#include <cstdint>

namespace spattn::kernels {

struct BackwardTile {
  int d = 0;     // head dim as stored: a multiple of 16 (rows are zero padded beyond the real d)
  int rows = 0;  // query rows of the tile (1..)
  int keys = 0;  // keys of the tile (1..)
  const float* q = nullptr;  // query row a: d floats at q + a * q_stride
  std::int64_t q_stride = 0;
  const float* d_o = nullptr;  // dO row a
  std::int64_t do_stride = 0;
  const float* k = nullptr;  // key row j (unscaled)
  std::int64_t k_stride = 0;
  const float* kt = nullptr;     // (scale K)^T [d][kw], kw = keys rounded up to 16, zero padded
  const float* vt = nullptr;     // V^T [d][kw]
  const float* lse = nullptr;    // [rows] the forward's LSE (-inf: a fully masked row)
  const float* delta = nullptr;  // [rows] D_i = dO_i . O_i
  // Partial tile: row a's allowed keys are bits of mask + a * mask_words (bit j = key j); null:
  // every key of the tile is allowed.
  const std::uint64_t* mask = nullptr;
  int mask_words = 0;
  // Score modifications: soft-capping constant (0: none); ALiBi slope of the head (0: none),
  // with qpos0 the position of row 0 and kpos0 the index of key 0.
  float cap = 0.0f;
  float slope = 0.0f;
  std::int64_t qpos0 = 0;
  std::int64_t kpos0 = 0;
  float* p = nullptr;   // scratch [rows][kw]: P
  float* ds = nullptr;  // scratch [rows][kw]: dS
  float* dk = nullptr;  // [keys][d] accumulators of dS^T Q
  float* dv = nullptr;  // [keys][d] accumulators of P^T dO
  float* dq = nullptr;  // row a: d accumulators of dS K at dq + a * dq_stride
  std::int64_t dq_stride = 0;
};

// Adds the tile's contributions to dk, dv and dq.
void backward_step(const BackwardTile& t);

}  // namespace spattn::kernels
