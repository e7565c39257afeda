#pragma once
// Context-parallel attention over MPI (optional component spattn::distributed, built when MPI is
// found). The sequence is split over the P ranks of a communicator in shards of whole tiles
// (contiguous, or zig-zag for causal balance); each rank holds the Q, K and V rows of its shard. In
// ring order (step t: send to rank r + t, receive from rank r - t) every rank sends each other rank
// exactly the K/V rows of the key tiles that the receiver's kept tiles need from its shard: a rank
// pair with no kept tile exchanges no message at all (a sliding window needs its neighbour's last
// rows only). Each rank runs the block-sparse executor (attention.hpp) on its queries against every
// visiting piece as it arrives, and merges the partial outputs through their log-sum-exp in ring
// order, so the result is deterministic for a given P (it equals the single-process executor's
// within float rounding, not bitwise: the merge order differs).
#include <mpi.h>

#include <cstdint>
#include <vector>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn::distributed {

// Token rows [begin, end).
struct ShardRange {
  std::int64_t begin = 0, end = 0;
  std::int64_t size() const { return end - begin; }
};

// The rows one rank holds: ranges of whole tiles, ascending (only the sequence's last tile may be
// cut short, in the last range); the rank's tensors hold the ranges' rows one after the other.
struct Shard {
  std::vector<ShardRange> ranges;
  std::int64_t size() const;
  std::int64_t global_row(std::int64_t local) const;  // the sequence row of local row `local`
};

// P contiguous shards of n tokens: rank r holds tiles [r T / P, (r + 1) T / P) of the T tiles of
// `align` tokens (sizes differ by at most one tile; a shard may be empty when T < P). Throws
// UsageError for n < 1, parts < 1 or align < 1.
std::vector<Shard> contiguous_shards(std::int64_t n, int parts, int align);

// P zig-zag shards: the T tiles cut into 2P chunks as above, rank r holding chunks r and
// 2P - 1 - r, so that under a causal pattern every rank has about the same number of pairs.
std::vector<Shard> zigzag_shards(std::int64_t n, int parts, int align);

// Which key tiles each rank needs from each rank: needed[r][s] lists, ascending, the global key
// tiles inside shard s's rows that some kept tile of a query tile of shard r holds (over every
// distinct head layout). O(kept tiles + tiles of the sequence). The layout must be square
// (nq = nk); the shards must hold every row once, in ranges whose ends are multiples of block_q
// and block_k (or the sequence's end). Throws UsageError otherwise.
struct CommPlan {
  std::vector<Shard> shards;
  int block_k = 0;
  std::int64_t nk = 0;
  std::vector<std::vector<std::vector<std::int32_t>>> needed;  // [receiver][sender] -> tiles
  std::vector<std::int64_t> key_tile_row;  // the local row of each key tile's first key, in its
                                           // owner's tensors
  // Key rows receiver r needs from sender s (the tiles' rows, the last tile clipped at nk).
  std::int64_t rows(int r, int s) const;
};
CommPlan plan_communication(const Layout& layout, const std::vector<Shard>& shards);

// The communication the plan implies for K and V of `batch` x `kv_heads` heads of `dim` floats:
// per rank, bytes and messages sent to other ranks (and received); a rank sends itself nothing.
struct CommPrediction {
  std::vector<std::int64_t> bytes_sent, messages_sent, bytes_received, messages_received;
  std::vector<std::int64_t> rows_received;  // key rows each rank receives from the others
};
CommPrediction predict_communication(const CommPlan& plan, std::int64_t batch,
                                     std::int64_t kv_heads, std::int64_t dim);

// What one rank did in one call (measured: the sizes of the messages it actually posted).
struct RankStats {
  std::int64_t bytes_sent = 0, messages_sent = 0;
  std::int64_t bytes_received = 0, messages_received = 0;
  std::int64_t rows_received = 0;    // key rows received from other ranks
  std::int64_t pieces_computed = 0;  // executor calls (visiting pieces, its own included)
  double seconds = 0;                // wall time of the call on this rank
};

// Collective over `comm` (every rank calls it with the same layout and shards, shards.size() ==
// the communicator's size). This rank's q [B, Hq, n_r, d], k and v [B, Hkv, n_r, d] are the rows
// of its shard in the shard's order (n_r = shards[rank].size(); any strides); o [B, Hq, n_r, d] and
// lse [B, Hq, n_r, 1] receive its queries' output (fully masked rows: O = 0, LSE = -inf). The
// layout is the global one (nq = nk = the sequence, Hq or 1 heads). Every rank validates its
// inputs, then all agree: when any rank's inputs are bad (shapes, shards, a layout that differs
// between ranks), every rank throws the same UsageError naming the first bad rank and its problem,
// before any data moves (no rank hangs).
RankStats context_parallel_attention(MPI_Comm comm, const ConstTensorView& q,
                                     const ConstTensorView& k, const ConstTensorView& v,
                                     const Layout& layout, const std::vector<Shard>& shards,
                                     const TensorView& o, const TensorView& lse,
                                     const AttentionOptions& options = {});

}  // namespace spattn::distributed
