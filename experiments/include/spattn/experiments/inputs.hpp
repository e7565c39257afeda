#pragma once
// Q, K and V for a measurement: i.i.d. random, synthetic with the structure of real attention, or
// read from .npy files (float32 [B, H, N, d], [H, N, d] or [N, d]).
//
// Synthetic inputs (kind "synthetic"). Real attention is not uniform: most of a query's softmax
// mass sits on nearby keys, a few "sink" tokens at the start draw attention from every query,
// and some queries retrieve one specific key far back (induction and retrieval heads). The
// generator builds Q and K so that the logits s(i, j) = q_i · k_j / sqrt(d) (the executor's
// default scale) have exactly these three components, plus Gaussian noise. With d the head dim,
// P = floor(d / 4) and p(i) = i + nk - nq the position of query i:
//   - dims [0, 2P), position (rotary-like): q_i[2f] = a cos(w_f p(i)), q_i[2f+1] =
//     a sin(w_f p(i)), and k_j the same at position j, so q_i · k_j over these dims is
//     a^2 sum_f cos(w_f (p(i) - j)), a function of the distance only. The frequencies
//     w_f = tan(pi (f + 1/2) / (2P)) / lambda are the P quantile midpoints of a half-Cauchy
//     distribution of scale 1/lambda, whose cosine transform is exp(-|t| / lambda); with
//     a^2 = A_local sqrt(d) / P this component of the logit is about A_local exp(-|p(i)-j| /
//     lambda) near the diagonal (A_local = 10; the finite sum leaves a ripple of about
//     A_local / sqrt(2P) far away). lambda = 8 x 2^(g mod 4) for K/V head g: heads range from
//     sharply local (8 tokens) to broad (64).
//   - dim 2P (when d - 2P >= 2), sinks: every query has s there, the keys at positions
//     0..3 have s, all other keys 0, with s^2 = A_sink sqrt(d): the 4 sink keys get +A_sink
//     (= 8) on every query's logit.
//   - the remaining dims, content: i.i.d. N(0, 1) (fill_normal, streams 0 for q, 1 for k), a
//     logit noise of standard deviation sqrt(d_content / d) (0.7 at d = 64).
//   - long-range matches: query i of query head h is a retrieving query with probability 1/16
//     when p(i) - 4 lambda >= 4; its source key j is uniform in [4, p(i) - 4 lambda] (never a
//     sink, at least 4 lambda back), and the content dims of key j (K/V head of h) are replaced
//     by c q_i's content, c = A_match sqrt(d) / |q_i content|^2, so the pair gets +A_match
//     (= 12) on top of its position term. The two uniforms of (b, h, i) are Phi(z) of two
//     fill_normal samples (stream 3, tensor [B, Hq, nq, 2]); keys are written in order of
//     query head, then query, so a later match overwrites an earlier one on the same key.
//   V is i.i.d. N(0, 1) (stream 2). Everything is a pure function of the seed and the shape:
//   the same on every machine and thread count. With d < 4 there is no position part and with
//   d - 2P < 2 no sink dim.
// Planted inputs (kind "planted"): spattn::planted_inputs (attention/select/planted.hpp) with
// the fixed structure of planted_spec(s) below: N(0, 1) Q, K, V plus two vertical lines, two
// diagonals, 16 needles and topic blocks, every head alike. The needles are known, so a
// measurement on these inputs reports the share of them its layout keeps (fidelity.needle_hit).
// Random inputs (kind "random"): q, k, v i.i.d. N(0, 1) from fill_normal, streams 0, 1, 2 (the
// same values as `spattn run --seed`), which make attention nearly uniform.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/select/planted.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/experiments/experiment.hpp"

namespace spattn::experiments {

struct Qkv {
  Tensor q;     // [B, Hq, nq, d]
  Tensor k, v;  // [B, Hkv, nk, d]
};

// Throws UsageError naming `what` and the first NaN or Inf element of t [B, H, N, d], with its
// index written in the last `rank` axes (2..4; a [N, d] file read as [1, 1, N, d] is reported
// as [n, x]) and its flat C-order index.
void check_finite(const ConstTensorView& t, const std::string& what, int rank = 4);

// The output of attention over finite inputs: o [B, Hq, nq, d] must be finite and lse
// [B, Hq, nq, 1] finite or -inf (a fully masked row). Finite inputs can still overflow float32
// logits (|q·k|·scale > 3.4e38), which gives NaN: throws spattn::Error (a runtime error, not a
// usage error) naming the first bad element and the cause, so that no NaN result is reported
// as a measurement.
void check_output_finite(const ConstTensorView& o, const ConstTensorView& lse);

// One .npy input file as read.
struct InputFile {
  std::string path;
  std::vector<std::int64_t> file_shape;  // as in the file: 2, 3 or 4 axes
  Tensor tensor;                         // [B, H, N, d], missing leading axes set to 1
};

// Reads a C-order .npy of shape [B, H, N, d], [H, N, d] or [N, d] holding float32 (<f4), float16
// (<f2) or bfloat16 bit patterns saved as uint16 (<u2, e.g. torch's t.view(torch.uint16)); the
// 16-bit ones are converted to float32 exactly. Throws UsageError naming the file on a missing or
// malformed file, another dtype or rank, an empty axis or a NaN/Inf element (with its index;
// a float16 or bfloat16 inf/NaN included); BudgetError when the data exceeds max_bytes.
InputFile read_input_npy(const std::string& path, std::int64_t max_bytes);

struct QkvFiles {
  InputFile q, k, v;
};
// q.npy, k.npy and v.npy of `dir` (read_input_npy each); k and v must have the same shape.
QkvFiles read_qkv_npy(const std::filesystem::path& dir, std::int64_t max_bytes);

// q, k, v i.i.d. N(0, 1) of shape s (see "Random inputs" above).
Qkv random_inputs(const AttentionShape& s, std::uint64_t seed);
// Synthetic inputs of shape s (construction above).
Qkv synthetic_inputs(const AttentionShape& s, std::uint64_t seed);
// The structure planted in kind "planted" at shape s: beta = 4; columns at nk/3 and 2nk/3;
// diagonal offsets 500 and nk/4 (those < nk); needles = spread_needles(s, 16) (query rows in
// the last quarter, keys spread over the context); topic segments of 1024 tokens.
PlantedSpec planted_spec(const AttentionShape& s);

// The inputs of a measurement with shape s: random or synthetic from `seed`, or the files of
// input_dir(spec, nq) fitted to s. A file axis that is missing or 1 is repeated to the point's
// size (a [N, d] capture of one head serves every batch and head); the token axis may also be
// longer than the point's: the capture is one sequence, and k and v give its first or last nk
// tokens (spec.tokens), q the last nq of those nk; any other axis must equal the point's (q:
// B, Hq, nq, d; k and v: B, Hkv, nk, d), else UsageError naming the file, its shape and the
// expected one (a capture shorter than the point: the file, its token count and N). max_bytes
// bounds each file read. UsageError on an unknown kind.
Qkv make_inputs(const InputSpec& spec, const AttentionShape& s, std::uint64_t seed,
                std::int64_t max_bytes);

// spec.npy_dir with its placeholders filled in for seq_len n ({n}, {sqrt_n}: spec_at).
std::filesystem::path input_dir(const InputSpec& spec, std::int64_t n);

// Checks, from the headers alone, that the npy inputs of `spec` serve shape s as make_inputs
// would fit them (files present, dtypes, ranks, axes, enough tokens, k and v alike): the same
// UsageError make_inputs would throw, before any data is read. Returns the bytes make_inputs
// holds beside the tensors it returns (one file's raw data and its float32 copy).
std::int64_t check_npy_inputs(const InputSpec& spec, const AttentionShape& s);

// "random" | "synthetic" | "npy:DIR": how records and point keys name the inputs
// (InputSpec::name).
std::string input_name(const InputSpec& spec);

// An additive bias for geometry g (g.heads query heads) from `values` of `shape`: [heads or 1,
// nq, nk] is one value per pair, [heads or 1, q_blocks, k_blocks] one per block_q x block_k
// tile. Throws UsageError naming `what`, the shape and both allowed shapes, or a non-finite
// value and its index.
ScoreBias score_bias_for(std::vector<float> values, const std::vector<std::int64_t>& shape,
                         const Geometry& g, const std::string& what);

// Bytes make_inputs holds at its peak beyond the q, k, v tensors it returns (the synthetic
// generator's uniforms; for npy, one file's raw bytes next to its float copy).
std::int64_t input_scratch_bytes(const InputSpec& spec, const AttentionShape& s);

}  // namespace spattn::experiments
