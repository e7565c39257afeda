// Context-parallel attention over MPI (see context_parallel.hpp).
#include "spattn/distributed/context_parallel.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "spattn/attention/shapes.hpp"
#include "spattn/patterns/error.hpp"
#include "tile_subset_pattern.hpp"

namespace spattn::distributed {
namespace {

// Floats per MPI message: pieces beyond it go as several messages (MPI counts are int).
constexpr std::int64_t kMaxMessageFloats = std::int64_t{1} << 28;

std::int64_t messages_for(std::int64_t floats) {
  return floats == 0 ? 0 : (floats + kMaxMessageFloats - 1) / kMaxMessageFloats;
}

// Checks that the shards hold every row once in tile-aligned ranges, and fills, per tile of
// `block` tokens, its owner and the local row of its first token there.
void map_tiles(const std::vector<Shard>& shards, std::int64_t n, int block, std::vector<int>& owner,
               std::vector<std::int64_t>& local_row) {
  const std::int64_t tiles = (n + block - 1) / block;
  owner.assign(static_cast<std::size_t>(tiles), -1);
  local_row.assign(static_cast<std::size_t>(tiles), 0);
  for (std::size_t r = 0; r < shards.size(); ++r) {
    std::int64_t local = 0;
    for (const ShardRange& g : shards[r].ranges) {
      if (g.begin < 0 || g.end > n || g.end < g.begin)
        throw UsageError(fmt::format("shard {} holds rows [{}, {}), outside the sequence [0, {})",
                                     r, g.begin, g.end, n));
      if (g.begin % block != 0 || (g.end % block != 0 && g.end != n))
        throw UsageError(
            fmt::format("shard {} holds rows [{}, {}), not whole tiles of {} "
                        "tokens: shards hold whole tiles",
                        r, g.begin, g.end, block));
      for (std::int64_t t = g.begin / block; t * block < g.end; ++t) {
        if (owner[static_cast<std::size_t>(t)] >= 0)
          throw UsageError(fmt::format(
              "rows [{}, {}) are in shard {} and shard {}: each row "
              "belongs to one shard",
              t * block, std::min(n, (t + 1) * block), owner[static_cast<std::size_t>(t)], r));
        owner[static_cast<std::size_t>(t)] = static_cast<int>(r);
        local_row[static_cast<std::size_t>(t)] = local + (t * block - g.begin);
      }
      local += g.size();
    }
  }
  for (std::int64_t t = 0; t < tiles; ++t)
    if (owner[static_cast<std::size_t>(t)] < 0)
      throw UsageError(
          fmt::format("rows [{}, {}) are in no shard", t * block, std::min(n, (t + 1) * block)));
}

// Rows [t0 * align, t1 * align) clipped at n, or nothing when empty.
void add_range(Shard& s, std::int64_t t0, std::int64_t t1, int align, std::int64_t n) {
  if (t1 > t0) s.ranges.push_back({std::min(n, t0 * align), std::min(n, t1 * align)});
}

void check_split(std::int64_t n, int parts, int align, const char* what) {
  if (n < 1 || parts < 1 || align < 1)
    throw UsageError(fmt::format("{}: n = {}, parts = {}, align = {}; each must be >= 1", what, n,
                                 parts, align));
}

// The rows of `tiles` (ascending global key tiles of this rank's shard) of k and v, packed as
// [2][B][Hkv][rows][d].
std::vector<float> pack(const ConstTensorView& k, const ConstTensorView& v,
                        const std::vector<std::int32_t>& tiles, const CommPlan& plan,
                        std::int64_t rows) {
  const int block_k = plan.block_k;
  const std::int64_t nk = plan.nk;
  const std::int64_t B = k.batch(), H = k.heads(), d = k.dim();
  std::vector<float> buf(static_cast<std::size_t>(2 * B * H * rows * d));
  float* out = buf.data();
  for (const ConstTensorView* t : {&k, &v})
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h)
        for (const std::int32_t c : tiles) {
          const std::int64_t first = plan.key_tile_row[static_cast<std::size_t>(c)];
          const std::int64_t count =
              std::min<std::int64_t>(block_k, nk - std::int64_t{c} * block_k);
          for (std::int64_t i = first; i < first + count; ++i, out += d)
            for (std::int64_t x = 0; x < d; ++x) out[x] = t->at(b, h, i, x);
        }
  return buf;
}

// Merges a piece's (o_p, lse_p) into the running (o, lse) through the log-sum-exp.
void merge(const TensorView& o, const TensorView& lse, const Tensor& o_p, const Tensor& lse_p) {
  const ConstTensorView po = o_p.view(), pl = lse_p.view();
  for (std::int64_t b = 0; b < o.batch(); ++b)
    for (std::int64_t h = 0; h < o.heads(); ++h)
      for (std::int64_t i = 0; i < o.tokens(); ++i) {
        const float a = lse.at(b, h, i, 0), c = pl.at(b, h, i, 0);
        if (c == -std::numeric_limits<float>::infinity()) continue;
        if (a == -std::numeric_limits<float>::infinity()) {
          for (std::int64_t x = 0; x < o.dim(); ++x) o.at(b, h, i, x) = po.at(b, h, i, x);
          lse.at(b, h, i, 0) = c;
          continue;
        }
        const double m = std::max(a, c);
        const double wa = std::exp(double{a} - m), wc = std::exp(double{c} - m);
        const double sum = wa + wc;
        for (std::int64_t x = 0; x < o.dim(); ++x)
          o.at(b, h, i, x) =
              static_cast<float>((wa * o.at(b, h, i, x) + wc * po.at(b, h, i, x)) / sum);
        lse.at(b, h, i, 0) = static_cast<float>(m + std::log(sum));
      }
}

// Everything checkable on this rank alone; "" when fine.
std::string local_problem(const ConstTensorView& q, const ConstTensorView& k,
                          const ConstTensorView& v, const Layout& layout,
                          const std::vector<Shard>& shards, const TensorView& o,
                          const TensorView& lse, int rank, int size, CommPlan* plan) {
  try {
    if (static_cast<int>(shards.size()) != size)
      return fmt::format("{} shards given for {} ranks", shards.size(), size);
    const Geometry& g = layout.geometry;
    if (g.nq != g.nk)
      return fmt::format(
          "the layout is {} queries x {} keys; context parallelism splits one "
          "sequence (nq = nk)",
          g.nq, g.nk);
    const std::int64_t n = shards[static_cast<std::size_t>(rank)].size();
    for (const auto& [t, name] : {std::pair{&q, "q"}, std::pair{&k, "k"}, std::pair{&v, "v"}})
      if (t->tokens() != n)
        return fmt::format("{} has {} rows, but this rank's shard has {}", name, t->tokens(), n);
    if (n > 0) {
      const AttentionShape s = check_qkv(q, k, v);
      require_same_value_dim(s, "context-parallel attention");
      if (g.heads != s.q_heads && g.heads != 1)
        return fmt::format("the layout has {} heads, q has {} (allowed: {} or 1)", g.heads,
                           s.q_heads, s.q_heads);
      check_output(o, {s.batch, s.q_heads, n, s.dim}, "o");
      check_output(lse, {s.batch, s.q_heads, n, 1}, "lse");
    }
    *plan = plan_communication(layout, shards);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Every rank learns whether any rank's inputs are bad, and the first bad rank's message.
void agree(MPI_Comm comm, int rank, int size, const std::string& problem) {
  int bad = problem.empty() ? size : rank, first = size;
  MPI_Allreduce(&bad, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  int length = first == rank ? static_cast<int>(std::min<std::size_t>(problem.size(), 4000)) : 0;
  MPI_Bcast(&length, 1, MPI_INT, first, comm);
  std::string message(static_cast<std::size_t>(length), ' ');
  if (first == rank) std::memcpy(message.data(), problem.data(), message.size());
  MPI_Bcast(message.data(), length, MPI_CHAR, first, comm);
  throw UsageError(
      fmt::format("context-parallel attention: rank {} of {}: {}", first, size, message));
}

// A fingerprint of what must be equal on every rank: the layout and the head counts and size.
std::uint64_t fingerprint(const Layout& layout, const ConstTensorView& q,
                          const ConstTensorView& k) {
  std::uint64_t h = std::hash<std::string>{}(layout.spec);
  const LayoutCounts c = layout.counts();
  for (const std::int64_t x :
       {layout.geometry.nq, layout.geometry.nk, std::int64_t{layout.geometry.heads},
        std::int64_t{layout.geometry.block_q}, std::int64_t{layout.geometry.block_k}, c.kept_tiles,
        c.allowed_pairs, q.batch(), q.heads(), k.heads(), q.dim()})
    h = (h ^ static_cast<std::uint64_t>(x)) * 0x100000001b3ULL;
  return h;
}

}  // namespace

std::int64_t CommPlan::rows(int r, int s) const {
  std::int64_t n = 0;
  for (const std::int32_t c : needed[static_cast<std::size_t>(r)][static_cast<std::size_t>(s)])
    n += std::min<std::int64_t>(block_k, nk - std::int64_t{c} * block_k);
  return n;
}

std::int64_t Shard::size() const {
  std::int64_t n = 0;
  for (const ShardRange& r : ranges) n += r.size();
  return n;
}

std::int64_t Shard::global_row(std::int64_t local) const {
  for (const ShardRange& r : ranges) {
    if (local < r.size()) return r.begin + local;
    local -= r.size();
  }
  throw UsageError(fmt::format("row {} is beyond the shard's {} rows", local, size()));
}

std::vector<Shard> contiguous_shards(std::int64_t n, int parts, int align) {
  check_split(n, parts, align, "contiguous_shards");
  const std::int64_t tiles = (n + align - 1) / align;
  std::vector<Shard> out(static_cast<std::size_t>(parts));
  for (int r = 0; r < parts; ++r)
    add_range(out[static_cast<std::size_t>(r)], tiles * r / parts, tiles * (r + 1) / parts, align,
              n);
  return out;
}

std::vector<Shard> zigzag_shards(std::int64_t n, int parts, int align) {
  check_split(n, parts, align, "zigzag_shards");
  const std::int64_t tiles = (n + align - 1) / align, chunks = 2 * std::int64_t{parts};
  std::vector<Shard> out(static_cast<std::size_t>(parts));
  for (int r = 0; r < parts; ++r) {
    const std::int64_t a = r, b = chunks - 1 - r;
    add_range(out[static_cast<std::size_t>(r)], tiles * a / chunks, tiles * (a + 1) / chunks, align,
              n);
    add_range(out[static_cast<std::size_t>(r)], tiles * b / chunks, tiles * (b + 1) / chunks, align,
              n);
  }
  return out;
}

CommPlan plan_communication(const Layout& layout, const std::vector<Shard>& shards) {
  const Geometry& g = layout.geometry;
  if (g.nq != g.nk)
    throw UsageError(
        fmt::format("plan_communication: the layout is {} x {}; it must be square", g.nq, g.nk));
  if (shards.empty()) throw UsageError("plan_communication: no shards");
  CommPlan plan;
  plan.shards = shards;
  plan.block_k = g.block_k;
  plan.nk = g.nk;
  const std::size_t P = shards.size();
  plan.needed.assign(P, std::vector<std::vector<std::int32_t>>(P));
  std::vector<int> q_owner, k_owner;
  std::vector<std::int64_t> q_row;
  map_tiles(shards, g.nq, g.block_q, q_owner, q_row);
  map_tiles(shards, g.nk, g.block_k, k_owner, plan.key_tile_row);
  for (const auto& head : layout.distinct) {
    const BlockLayout& L = *head;
    for (std::int64_t r = 0; r < L.q_blocks(); ++r) {
      auto& row = plan.needed[static_cast<std::size_t>(q_owner[static_cast<std::size_t>(r)])];
      for (std::int64_t t = L.row_ptr()[r]; t < L.row_ptr()[r + 1]; ++t) {
        const std::int32_t c = L.col_index()[t];
        auto& list = row[static_cast<std::size_t>(k_owner[static_cast<std::size_t>(c)])];
        if (list.empty() || list.back() != c) list.push_back(c);
      }
    }
  }
  for (auto& row : plan.needed)
    for (auto& list : row) {
      std::sort(list.begin(), list.end());
      list.erase(std::unique(list.begin(), list.end()), list.end());
    }
  return plan;
}

CommPrediction predict_communication(const CommPlan& plan, std::int64_t batch,
                                     std::int64_t kv_heads, std::int64_t dim) {
  const int P = static_cast<int>(plan.shards.size());
  CommPrediction p;
  for (auto* v :
       {&p.bytes_sent, &p.messages_sent, &p.bytes_received, &p.messages_received, &p.rows_received})
    v->assign(static_cast<std::size_t>(P), 0);
  for (int r = 0; r < P; ++r)
    for (int s = 0; s < P; ++s) {
      if (r == s) continue;
      const std::int64_t rows = plan.rows(r, s);
      const std::int64_t floats = 2 * batch * kv_heads * rows * dim;
      const auto sr = static_cast<std::size_t>(r), ss = static_cast<std::size_t>(s);
      p.bytes_sent[ss] += floats * 4;
      p.messages_sent[ss] += messages_for(floats);
      p.bytes_received[sr] += floats * 4;
      p.messages_received[sr] += messages_for(floats);
      p.rows_received[sr] += rows;
    }
  return p;
}

RankStats context_parallel_attention(MPI_Comm comm, const ConstTensorView& q,
                                     const ConstTensorView& k, const ConstTensorView& v,
                                     const Layout& layout, const std::vector<Shard>& shards,
                                     const TensorView& o, const TensorView& lse,
                                     const AttentionOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  CommPlan plan;
  std::string problem = local_problem(q, k, v, layout, shards, o, lse, rank, size, &plan);
  // Ranks given different layouts or head counts would exchange pieces of different shapes.
  std::uint64_t mine = problem.empty() ? fingerprint(layout, q, k) : 0, lo = 0, hi = 0;
  MPI_Allreduce(&mine, &lo, 1, MPI_UINT64_T, MPI_MIN, comm);
  MPI_Allreduce(&mine, &hi, 1, MPI_UINT64_T, MPI_MAX, comm);
  if (problem.empty() && lo != hi && (lo != 0 || hi != mine))
    problem = fmt::format(
        "its layout ('{}', {}) or its batch, head counts or head size differ "
        "from another rank's",
        layout.spec.substr(0, 60), layout.geometry.describe());
  agree(comm, rank, size, problem);

  RankStats stats;
  const Geometry& g = layout.geometry;
  const Shard& own = shards[static_cast<std::size_t>(rank)];
  const std::int64_t n = own.size();
  const std::int64_t B = k.batch(), Hkv = k.heads(), d = k.dim();

  // Post every receive and send of the ring at once (step t: to rank + t, from rank - t).
  std::vector<std::vector<float>> send_buf(static_cast<std::size_t>(size)),
      recv_buf(static_cast<std::size_t>(size));
  std::vector<MPI_Request> sends;
  std::vector<std::vector<MPI_Request>> recvs(static_cast<std::size_t>(size));
  for (int t = 1; t < size; ++t) {
    const int src = (rank - t + size) % size, dst = (rank + t) % size;
    const std::int64_t in_rows = plan.rows(rank, src);
    if (in_rows > 0) {
      auto& buf = recv_buf[static_cast<std::size_t>(src)];
      buf.resize(static_cast<std::size_t>(2 * B * Hkv * in_rows * d));
      for (std::int64_t at = 0; at < static_cast<std::int64_t>(buf.size());
           at += kMaxMessageFloats) {
        const int count = static_cast<int>(
            std::min<std::int64_t>(kMaxMessageFloats, static_cast<std::int64_t>(buf.size()) - at));
        recvs[static_cast<std::size_t>(src)].emplace_back();
        MPI_Irecv(buf.data() + at, count, MPI_FLOAT, src, 0, comm,
                  &recvs[static_cast<std::size_t>(src)].back());
        stats.bytes_received += std::int64_t{count} * 4;
        ++stats.messages_received;
      }
      stats.rows_received += in_rows;
    }
    const auto& tiles = plan.needed[static_cast<std::size_t>(dst)][static_cast<std::size_t>(rank)];
    if (!tiles.empty()) {
      auto& buf = send_buf[static_cast<std::size_t>(dst)];
      buf = pack(k, v, tiles, plan, plan.rows(dst, rank));
      for (std::int64_t at = 0; at < static_cast<std::int64_t>(buf.size());
           at += kMaxMessageFloats) {
        const int count = static_cast<int>(
            std::min<std::int64_t>(kMaxMessageFloats, static_cast<std::int64_t>(buf.size()) - at));
        sends.emplace_back();
        MPI_Isend(buf.data() + at, count, MPI_FLOAT, dst, 0, comm, &sends.back());
        stats.bytes_sent += std::int64_t{count} * 4;
        ++stats.messages_sent;
      }
    }
  }

  // This rank's queries against each piece in ring order (its own first), merged through LSE.
  if (n > 0) {
    for (std::int64_t b = 0; b < o.batch(); ++b)
      for (std::int64_t h = 0; h < o.heads(); ++h)
        for (std::int64_t i = 0; i < n; ++i) {
          for (std::int64_t x = 0; x < o.dim(); ++x) o.at(b, h, i, x) = 0.0f;
          lse.at(b, h, i, 0) = -std::numeric_limits<float>::infinity();
        }
  }
  // This rank's query tiles, in its local order.
  std::vector<std::int64_t> query_tiles;
  for (const ShardRange& r : own.ranges)
    for (std::int64_t t = r.begin / g.block_q; t * g.block_q < r.end; ++t) query_tiles.push_back(t);
  std::vector<float> own_buf;
  for (int t = 0; t < size; ++t) {
    const int src = (rank - t + size) % size;
    const auto& tiles = plan.needed[static_cast<std::size_t>(rank)][static_cast<std::size_t>(src)];
    if (tiles.empty()) continue;
    const std::int64_t rows = plan.rows(rank, src);
    const float* data = nullptr;
    if (t == 0) {
      own_buf = pack(k, v, tiles, plan, rows);
      data = own_buf.data();
    } else {
      auto& reqs = recvs[static_cast<std::size_t>(src)];
      MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
      data = recv_buf[static_cast<std::size_t>(src)].data();
    }
    const ConstTensorView kp = view_bhnd(data, B, Hkv, rows, d);
    const ConstTensorView vp = view_bhnd(data + B * Hkv * rows * d, B, Hkv, rows, d);
    Geometry pg = g;
    pg.nq = n;
    pg.nk = rows;
    BuildOptions bo;
    bo.threads = options.threads;
    const detail::TileSubsetPattern piece(layout, query_tiles, tiles);
    const Layout pl = build_layout(piece, pg, bo);
    Tensor po(o.batch(), o.heads(), n, o.dim()), plse(o.batch(), o.heads(), n, 1);
    attention(q, kp, vp, pl, po.view(), plse.view(), options);
    merge(o, lse, po, plse);
    ++stats.pieces_computed;
    if (t == 0) std::vector<float>().swap(own_buf);
  }
  MPI_Waitall(static_cast<int>(sends.size()), sends.data(), MPI_STATUSES_IGNORE);
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return stats;
}

}  // namespace spattn::distributed
