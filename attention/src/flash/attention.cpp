// The block-sparse flash executor: scheduling, packing, heavy-row splitting and the LSE merge.
//
// Work items. A "head group" is the query heads of one K/V head that share one head layout
// (at most kMaxLanes / block_q of them): they are processed as one block of lanes, so every K/V
// tile loaded serves all of them. One item is (batch, head group, query tile), or, for a heavy
// row, one part of its kept key tiles. Items are enumerated arithmetically (no per-row task
// array), and which rows are split depends on the layout alone, never on the thread count; each
// item's arithmetic is fixed, and split rows are merged in part order after all items ran, so
// the output is bitwise the same for every thread count.
//
// Memory. Each worker thread owns one workspace (Q^T, S^T/P^T, O^T, K/V packing buffers, lane
// masks), sized by (lanes, d, block_k) and allocated once per call: O(threads x tile). Split
// rows keep (O^T, m, l) per part until the merge: O(split rows x parts x tile). Nothing else
// grows with N. The buffers are not zeroed: every lane that is read was written first. First
// touches are what cost here: on this (virtualized) machine a first-touch page fault took
// 1.7-2 us per 4 KiB page when idle and 13-14 us under load (256 MiB buffer, one write per
// page), against 0.03 us to write a resident page again: 10^5 to 10^6 FMAs per fault. A
// workspace of ~100 KiB (d = 64, 64 lanes) is 25 pages, 0.05-0.35 ms per thread if fresh; below
// glibc's mmap threshold it comes from the heap, and its pages stay resident between calls.
#include "spattn/attention/attention.hpp"

#include <fmt/format.h>
#include <sys/mman.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "../kernels/diagonal_step.hpp"
#include "../kernels/flash_tile.hpp"
#include "../kernels/track_step.hpp"
#include "../kernels/transpose16.hpp"
#include "kv_rows.hpp"
#include "plan.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Lanes of one work item: at most this many (query heads of a group) x block_q. 256 lanes keep
// Q^T and O^T of d = 64 at 64 KiB each, within L2 next to the K/V tiles.
constexpr std::int64_t kMaxLanes = 256;

// Heavy-row splitting (automatic mode): a part holds max(kMinPartTiles, 4 x the layout's
// average kept tiles per row) key tiles, and a row is split when it has more than two parts'
// worth. Dense and causal rows (at most 2x the average) are never split; a global-token row
// (all N / block_k tiles against an average of a few) is.
constexpr std::int64_t kMinPartTiles = 64;

// Key-loop blocking: a row item takes up to kRowBlock consecutive query-tile rows of a head
// group and walks their key tiles kKeyBlockTiles columns at a time, every row through the
// chunk before the next, so each K/V tile is read from memory once for the block and then from
// cache. Each row runs its tiles in the same order as alone: the same arithmetic, only
// interleaved (a gather panel is flushed at each chunk's end).
constexpr std::int64_t kRowBlock = 4;
constexpr std::int64_t kKeyBlockTiles = 8;

// Gathered key columns are run in panels of this many keys.
constexpr int kPanelKeys = 64;
// Transposed K/V rows are padded by this many keys on each side, so that the diagonal path's
// 16-key vectors never read outside the buffer (the padding is zero and always masked).
constexpr std::int64_t kTransposePad = 16;

// Large per-call buffers (transposed K and V, the tracks' panels) are kept for the next call
// of the same size: at small N their first touches (page faults, page clearing) cost more than
// the arithmetic they serve. At most kPoolBuffers are kept, kPoolBytes in all; the oldest goes
// first.
class LargePool {
 public:
  static LargePool& instance() {
    static LargePool pool;
    return pool;
  }
  // A kept buffer of exactly `bytes`, or null.
  void* take(std::int64_t bytes) {
    const std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < kept_.size(); ++i)
      if (kept_[i].second == bytes) {
        void* p = kept_[i].first;
        kept_.erase(kept_.begin() + static_cast<std::ptrdiff_t>(i));
        return p;
      }
    return nullptr;
  }
  void give(void* p, std::int64_t bytes) {
    const std::lock_guard<std::mutex> lock(mu_);
    if (bytes > kPoolBytes) {
      std::free(p);
      return;
    }
    kept_.emplace_back(p, bytes);
    std::int64_t total = 0;
    for (const auto& k : kept_) total += k.second;
    while (kept_.size() > kPoolBuffers || total > kPoolBytes) {
      total -= kept_.front().second;
      std::free(kept_.front().first);
      kept_.erase(kept_.begin());
    }
  }
  ~LargePool() {
    for (const auto& k : kept_) std::free(k.first);
  }

 private:
  static constexpr std::size_t kPoolBuffers = 4;
  static constexpr std::int64_t kPoolBytes = std::int64_t{512} << 20;
  std::mutex mu_;
  std::vector<std::pair<void*, std::int64_t>> kept_;
};

// Frees, or hands a large buffer back to the pool (pool_bytes > 0).
struct FreeDeleter {
  std::int64_t pool_bytes = 0;
  void operator()(void* p) const {
    if (pool_bytes > 0)
      LargePool::instance().give(p, pool_bytes);
    else
      std::free(p);
  }
};

// 64-byte aligned, uninitialized, counted.
template <class T>
struct Buffer {
  std::unique_ptr<T[], FreeDeleter> ptr;
  std::int64_t bytes = 0;
  T* get() const { return ptr.get(); }
  void allocate(std::int64_t n) {
    bytes = (static_cast<std::int64_t>(n * sizeof(T)) + 63) / 64 * 64;
    if (bytes == 0) bytes = 64;
    ptr = std::unique_ptr<T[], FreeDeleter>(
        static_cast<T*>(std::aligned_alloc(64, static_cast<std::size_t>(bytes))), FreeDeleter{});
    if (!ptr) throw std::bad_alloc();
  }
  // For the large per-call buffers (transposed K and V, the tracks' panels, each the size of K
  // and V): from 4 MiB on, 2 MiB aligned, advised as huge pages and kept for the next call
  // (LargePool), so that first touches fault once per 2 MiB instead of once per 4 KiB, and not
  // again on the next call, and the diagonal kernels' reads stay in the TLB.
  void allocate_large(std::int64_t n) {
    constexpr std::int64_t kHuge = std::int64_t{2} << 20;
    bytes = flash::large_buffer_bytes(static_cast<std::int64_t>(n * sizeof(T)));
    if (bytes < 2 * kHuge) {
      allocate(n);
      return;
    }
    void* p = LargePool::instance().take(bytes);
    if (p == nullptr) {
      p = std::aligned_alloc(kHuge, static_cast<std::size_t>(bytes));
      if (p == nullptr) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
      madvise(p, static_cast<std::size_t>(bytes), MADV_HUGEPAGE);  // a hint; may fail
#endif
    }
    ptr = std::unique_ptr<T[], FreeDeleter>(static_cast<T*>(p), FreeDeleter{bytes});
  }
};

struct HeadGroup {
  std::int64_t kv_head = 0;
  int distinct = 0;        // index into Layout::distinct
  std::vector<int> heads;  // query heads, in increasing order
};

struct SplitRow {
  std::int64_t row = 0;  // query block
  int parts = 0;
};

// Splitting decision of one distinct head layout.
struct SplitPlan {
  std::int64_t part_tiles = 0;  // key tiles per part; rows with > 2 x this are split
  std::vector<SplitRow> rows;   // split rows, increasing
  bool is_split(std::int64_t tiles) const { return tiles > 2 * part_tiles; }
};

struct PartRef {
  int group = 0;        // head group
  int split = 0;        // index into the group's SplitPlan::rows
  int part = 0;         // part number within the row
  std::int64_t t0, t1;  // kept-tile range [t0, t1) of the part
};

// One row's running state: Q^T [d][lanes] and O^T [d_v][lanes], max and sum [lanes].
struct Slot {
  float *qt, *ot, *m, *l;
};

struct Workspace {
  // qt, ot, m and l hold kRowBlock slots (slot 0: single rows and late items).
  Buffer<float> qt, s, ot, m, l, scratch, kpack, vpack;
  Buffer<std::uint16_t> keep[2];
  Buffer<std::uint16_t> all_ones;  // [max(block_k, panel)][lanes / 16] set bits
  // Per-row buffers are sized by dm = max(d, d_v) (Q^T and K hold d floats per lane or key, O^T
  // and V hold d_v).
  // Gather panel: packed K and V rows [kPanelKeys][d], [kPanelKeys][d_v], and their lane bits.
  Buffer<float> kpanel, vpanel;
  Buffer<std::uint16_t> panel_keep;
  // Diagonal path: probabilities [64][16], key of lane 0 and lane bits per slot.
  Buffer<float> ds;
  Buffer<std::int64_t> dkey0;
  Buffer<std::uint16_t> dkeep;
  // Residue tracks: Q^T and O^T of an item's 16 query vectors [16][dm][16], their max and sum
  // [16][16], and the probabilities of one block [4][16][16].
  Buffer<float> tq, tot, tm, tl, ts;
  // Score modifications: per lane the query position and ALiBi slope, per key of a tile step
  // and of the gather panel the key index (diagonal step: 16 lanes' positions and slopes).
  Buffer<float> mqpos, mslope, mkpos, mkpanel, dqpos, dslope;
  // An additive bias: each step's bias laid out as its scores (tile [keys][lanes], gather panel
  // [kPanelKeys][lanes], diagonal step [64][16], track step [4][16][16]).
  Buffer<float> mbias, mbias_panel, dbias, tbias;
  // Two-entry cache of transposed masks (a window's rows alternate between two mask shapes).
  const std::uint64_t* keep_bits[2] = {nullptr, nullptr};
  int keep_col0[2] = {0, 0};
  int keep_keys[2] = {0, 0};
  std::int64_t keep_lanes[2] = {0, 0};
  int keep_next = 0;
  std::int64_t bytes = 0;

  Slot slot(int k, std::int64_t lanes, std::int64_t dm) const {
    return {qt.get() + k * dm * lanes, ot.get() + k * dm * lanes, m.get() + k * lanes,
            l.get() + k * lanes};
  }

  // d: dm = max(d, d_v).
  void allocate(std::int64_t lanes, std::int64_t d, std::int64_t block_k, bool pack_k, bool pack_v,
                bool ones, bool mod, bool bias) {
    const std::int64_t keys = std::max<std::int64_t>(block_k, kPanelKeys);
    kpanel.allocate(kPanelKeys * d);
    vpanel.allocate(kPanelKeys * d);
    panel_keep.allocate(kPanelKeys * (lanes / 16));
    ds.allocate(kernels::kMaxDiagonalSlots * 16);
    dkey0.allocate(kernels::kMaxDiagonalSlots);
    dkeep.allocate(kernels::kMaxDiagonalSlots);
    constexpr std::int64_t kItemVectors = flash::kTrackGroupBlocks * flash::kTrackQueries;
    tq.allocate(kItemVectors * d * 16);
    tot.allocate(kItemVectors * d * 16);
    tm.allocate(kItemVectors * 16);
    tl.allocate(kItemVectors * 16);
    ts.allocate(kernels::kTrackMaxQueries * kernels::kTrackMaxKeys * 16);
    qt.allocate(kRowBlock * d * lanes);
    if (mod) {
      mqpos.allocate(lanes);
      mslope.allocate(lanes);
      mkpos.allocate(keys);
      mkpanel.allocate(kPanelKeys);
      dqpos.allocate(16);
      dslope.allocate(16);
    }
    if (bias) {
      mbias.allocate(keys * lanes);
      mbias_panel.allocate(kPanelKeys * lanes);
      dbias.allocate(kernels::kMaxDiagonalSlots * 16);
      tbias.allocate(kernels::kTrackMaxQueries * kernels::kTrackMaxKeys * 16);
    }
    s.allocate(keys * lanes);  // a gather panel may hold more keys than a tile
    ot.allocate(kRowBlock * d * lanes);
    m.allocate(kRowBlock * lanes);
    l.allocate(kRowBlock * lanes);
    scratch.allocate(2 * lanes);
    if (pack_k) kpack.allocate(block_k * d);
    if (pack_v) vpack.allocate(block_k * d);
    for (auto& k : keep) k.allocate(block_k * (lanes / 16));
    if (ones) {
      all_ones.allocate(keys * (lanes / 16));
      std::fill(all_ones.get(), all_ones.get() + keys * (lanes / 16), std::uint16_t{0xFFFF});
    }
    bytes = qt.bytes + s.bytes + ot.bytes + m.bytes + l.bytes + scratch.bytes +
            (pack_k ? kpack.bytes : 0) + (pack_v ? vpack.bytes : 0) + keep[0].bytes +
            keep[1].bytes + (ones ? all_ones.bytes : 0) + kpanel.bytes + vpanel.bytes +
            panel_keep.bytes + ds.bytes + dkey0.bytes + dkeep.bytes + tq.bytes + tot.bytes +
            tm.bytes + tl.bytes + ts.bytes + mqpos.bytes + mslope.bytes + mkpos.bytes +
            mkpanel.bytes + dqpos.bytes + dslope.bytes + mbias.bytes + mbias_panel.bytes +
            dbias.bytes + tbias.bytes;
  }
};

class Executor {
 public:
  Executor(const ConstTensorView& q, const ConstTensorView& k, const ConstTensorView& v,
           const Layout& layout, const TensorView& o, const TensorView& lse,
           const AttentionOptions& opt, const AttentionShape& shape)
      : q_(q), k_(k), v_(v), layout_(layout), o_(o), lse_(lse), shape_(shape) {
    d_ = static_cast<int>(shape.dim);
    dv_ = static_cast<int>(shape.dim_v);
    dm_ = std::max(d_, dv_);
    scale_ = opt.scale ? *opt.scale : 1.0f / std::sqrt(static_cast<float>(shape.dim));
    mask_full_ = opt.mask_full_tiles;
    mod_ = opt.mod;
    if (mod_.changes_scores()) {
      lanes_mod_.cap = mod_.softcap.value_or(0.0f);
      lanes_mod_.inv_cap = mod_.softcap ? 1.0f / *mod_.softcap : 0.0f;
      lanes_mod_.alibi = !mod_.alibi_slopes.empty();
      modify_ = true;
      bias_ = mod_.bias.on();
    }
    bq_ = layout.geometry.block_q;
    bk_ = layout.geometry.block_k;
    q_blocks_ = layout.geometry.q_blocks();
    make_groups();
    make_splits(opt.split_tiles);
    plans_ = flash::make_layout_plans(layout, opt.path);
  }

  AttentionStats run(int threads) {
    lanes_ = 0;
    for (const HeadGroup& g : groups_)
      lanes_ = std::max<std::int64_t>(lanes_, static_cast<std::int64_t>(g.heads.size()) * bq_);
    for (const flash::HeadPlan& p : plans_)
      for (const flash::ClassPlan* cp : {&p.classes, &p.bands})
        if (!cp->items.empty()) lanes_ = std::max<std::int64_t>(lanes_, cp->queries);
    const bool pack_k = !k_.rows_contiguous(), pack_v = !v_.rows_contiguous();
    tbb::enumerable_thread_specific<Workspace> workspaces;
    auto local = [&]() -> Workspace& {
      bool existed = false;
      Workspace& ws = workspaces.local(existed);
      if (!existed) ws.allocate(lanes_, dm_, bk_, pack_k, pack_v, mask_full_, modify_, bias_);
      return ws;
    };

    const std::int64_t slot = dv_ * lanes_ + 2 * lanes_;  // floats of one part: O^T, m, l
    const std::int64_t parts = static_cast<std::int64_t>(parts_.size());
    Buffer<float> partials;
    if (parts > 0) partials.allocate(shape_.batch * parts * slot);
    partial_ = partials.get();
    slot_ = slot;

    const flash::DiagonalBuffers need = flash::diagonal_buffers(plans_);
    Buffer<float> transposed, panels;
    if (need.transposed) {
      t_stride_ = shape_.nk + 2 * kTransposePad;
      transposed.allocate_large(2 * shape_.batch * shape_.kv_heads * dm_ * t_stride_);
      kt_ = transposed.get();
      vt_ = transposed.get() + shape_.batch * shape_.kv_heads * dm_ * t_stride_;
    }
    panel_aligns_ = need.aligns;
    if (!panel_aligns_.empty()) {
      panels.allocate_large(2 * shape_.batch * shape_.kv_heads *
                            static_cast<std::int64_t>(panel_aligns_.size()) *
                            flash::panel_count(shape_.nk) * dm_ * 16);
      panels_ = panels.get();
    }

    row_blocks_ = (q_blocks_ + kRowBlock - 1) / kRowBlock;
    const std::int64_t row_items =
        shape_.batch * static_cast<std::int64_t>(groups_.size()) * row_blocks_;
    const std::int64_t part_items = shape_.batch * parts;
    const std::int64_t items = part_items + row_items;
    // Late items, one per (batch, query head, track group or class item): they run after the
    // rows (and the merges of split rows) and fold their pairs into the finished O and LSE (the
    // sparse diagonals, as tracks or classes; the dense bands run inside the rows).
    std::vector<LateItem> sparse_items;  // one batch each
    for (std::int64_t h = 0; h < shape_.q_heads; ++h) {
      const flash::HeadPlan& plan = plans_[distinct_of(h)];
      for (std::size_t k = 0; k < plan.track_groups.size(); ++k)
        sparse_items.push_back(
            {static_cast<int>(h), LateKind::Track, static_cast<std::int64_t>(k)});
      for (std::size_t k = 0; k < plan.classes.items.size(); ++k)
        sparse_items.push_back(
            {static_cast<int>(h), LateKind::Class, static_cast<std::int64_t>(k)});
    }
    auto body = [&] {
      if (need.transposed) transpose_kv(transposed.get());
      if (panels_ != nullptr) make_panels();
      tbb::parallel_for(
          tbb::blocked_range<std::int64_t>(0, items, 1),
          [&](const tbb::blocked_range<std::int64_t>& range) {
            Workspace& ws = local();
            // Parts first: they come from the heaviest rows, and starting them early keeps
            // them from ending up alone at the tail of the loop.
            for (std::int64_t it = range.begin(); it != range.end(); ++it) {
              if (it < part_items)
                part_item(ws, it / parts, it % parts);
              else
                row_item(ws, it - part_items);
            }
          },
          tbb::simple_partitioner());
      if (parts > 0) {
        std::int64_t merges_per_batch = 0;
        for (const HeadGroup& g : groups_)
          merges_per_batch += static_cast<std::int64_t>(splits_[g.distinct].rows.size());
        std::vector<std::pair<int, int>> merges;  // (group, split row)
        for (std::size_t gi = 0; gi < groups_.size(); ++gi)
          for (std::size_t si = 0; si < splits_[groups_[gi].distinct].rows.size(); ++si)
            merges.emplace_back(static_cast<int>(gi), static_cast<int>(si));
        tbb::parallel_for(std::int64_t{0}, shape_.batch * merges_per_batch, [&](std::int64_t e) {
          const auto [gi, si] = merges[e % merges_per_batch];
          merge(e / merges_per_batch, gi, si);
        });
      }
      run_late(sparse_items, local);
      if (!mod_.sinks.empty()) add_sinks();
    };
    if (threads > 0) {
      tbb::task_arena arena(threads);
      arena.execute(body);
    } else {
      body();
    }

    AttentionStats st;
    for (const Workspace& ws : workspaces) st.workspace_bytes += ws.bytes;
    st.workspace_bytes += partials.bytes * (parts > 0);
    std::int64_t split_rows = 0;
    for (const HeadGroup& g : groups_) {
      split_rows += static_cast<std::int64_t>(splits_[g.distinct].rows.size());
      st.paths +=
          plans_[g.distinct].pairs.scaled(static_cast<std::int64_t>(g.heads.size()) * shape_.batch);
    }
    st.workspace_bytes += transposed.bytes * (transposed.get() != nullptr);
    st.workspace_bytes += panels.bytes * (panels.get() != nullptr);
    st.split_rows = split_rows * shape_.batch;
    st.tasks = items - st.split_rows;  // a split row's own item only returns
    st.split_parts = parts * shape_.batch;
    return st;
  }

 private:
  const BlockLayout& block_layout(const HeadGroup& g) const {
    return *layout_.distinct[g.distinct];
  }

  void make_groups() {
    const std::int64_t per_group = std::max<std::int64_t>(1, kMaxLanes / bq_);
    for (std::int64_t kvh = 0; kvh < shape_.kv_heads; ++kvh) {
      std::vector<HeadGroup> by_layout;
      for (std::int64_t h = kvh * shape_.group(); h < (kvh + 1) * shape_.group(); ++h) {
        const int dist =
            layout_.geometry.heads == 1 ? layout_.head_to_distinct[0] : layout_.head_to_distinct[h];
        auto it = std::find_if(by_layout.begin(), by_layout.end(),
                               [&](const HeadGroup& g) { return g.distinct == dist; });
        if (it == by_layout.end()) {
          by_layout.push_back({kvh, dist, {}});
          it = by_layout.end() - 1;
        }
        it->heads.push_back(static_cast<int>(h));
      }
      for (const HeadGroup& g : by_layout)
        for (std::size_t i = 0; i < g.heads.size(); i += per_group) {
          HeadGroup part{g.kv_head, g.distinct, {}};
          const std::size_t end = std::min(g.heads.size(), i + per_group);
          part.heads.assign(g.heads.begin() + i, g.heads.begin() + end);
          groups_.push_back(std::move(part));
        }
    }
  }

  void make_splits(std::int64_t split_tiles) {
    splits_.resize(layout_.distinct.size());
    for (std::size_t di = 0; di < layout_.distinct.size(); ++di) {
      const BlockLayout& bl = *layout_.distinct[di];
      const auto rp = bl.row_ptr();
      SplitPlan& plan = splits_[di];
      if (split_tiles > 0) {
        plan.part_tiles = split_tiles;
      } else {
        const std::int64_t avg =
            (rp.back() + bl.q_blocks() - 1) / std::max<std::int64_t>(1, bl.q_blocks());
        plan.part_tiles = std::max(kMinPartTiles, 4 * avg);
      }
      for (std::int64_t r = 0; r < bl.q_blocks(); ++r) {
        const std::int64_t tiles = rp[r + 1] - rp[r];
        if (plan.is_split(tiles))
          plan.rows.push_back(
              {r, static_cast<int>((tiles + plan.part_tiles - 1) / plan.part_tiles)});
      }
    }
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      const SplitPlan& plan = splits_[groups_[gi].distinct];
      const auto rp = layout_.distinct[groups_[gi].distinct]->row_ptr();
      for (std::size_t si = 0; si < plan.rows.size(); ++si) {
        const SplitRow& sr = plan.rows[si];
        for (int p = 0; p < sr.parts; ++p) {
          const std::int64_t t0 = rp[sr.row] + p * plan.part_tiles;
          const std::int64_t t1 = std::min<std::int64_t>(rp[sr.row + 1], t0 + plan.part_tiles);
          parts_.push_back({static_cast<int>(gi), static_cast<int>(si), p, t0, t1});
        }
      }
    }
    // Index of each (group, split row)'s first part.
    first_part_.resize(groups_.size());
    std::int64_t e = 0;
    for (std::size_t gi = 0; gi < groups_.size(); ++gi) {
      const SplitPlan& plan = splits_[groups_[gi].distinct];
      for (const SplitRow& sr : plan.rows) {
        first_part_[gi].push_back(e);
        e += sr.parts;
      }
    }
  }

  // Rows kRowBlock x rb .. of head group gi, batch b (item it): each row not split (part items
  // run those) and not empty, key-loop blocked (kKeyBlockTiles tile columns at a time).
  void row_item(Workspace& ws, std::int64_t it) {
    const std::int64_t rb = it % row_blocks_;
    const std::int64_t gi = (it / row_blocks_) % static_cast<std::int64_t>(groups_.size());
    const std::int64_t b = it / row_blocks_ / static_cast<std::int64_t>(groups_.size());
    const HeadGroup& g = groups_[gi];
    const BlockLayout& bl = block_layout(g);
    const auto rp = bl.row_ptr();
    const auto cols = bl.col_index();
    const std::int64_t lanes = static_cast<std::int64_t>(g.heads.size()) * bq_;
    const flash::HeadPlan& plan = plans_[g.distinct];
    std::int64_t rows[kRowBlock], next[kRowBlock];
    int n = 0;
    for (std::int64_t r = rb * kRowBlock; r < std::min(q_blocks_, (rb + 1) * kRowBlock); ++r) {
      if (splits_[g.distinct].is_split(rp[r + 1] - rp[r])) continue;  // done by part items
      const bool empty =
          std::all_of(plan.action.begin() + rp[r], plan.action.begin() + rp[r + 1],
                      [](flash::TileAction a) { return a == flash::TileAction::Skip; }) &&
          !(plan.row_diagonal[r] && (!plan.offsets.empty() || !plan.bands.empty()));
      if (empty) {  // everything left to the late items: O = 0, LSE = -inf until they fold
        const Slot z = ws.slot(0, lanes, dm_);
        std::fill(z.m, z.m + lanes, kNegInf);
        finish(z.ot, z.m, z.l, lanes, b, g, r);
        continue;
      }
      begin_row(ws.slot(n, lanes, dm_), b, g, r, lanes);
      next[n] = rp[r];
      rows[n++] = r;
    }
    const std::int64_t k_blocks = layout_.geometry.k_blocks();
    for (std::int64_t c1 = kKeyBlockTiles;; c1 += kKeyBlockTiles) {
      bool more = false;
      for (int k = 0; k < n; ++k) {
        std::int64_t t = next[k];
        while (t < rp[rows[k] + 1] && (cols[t] < c1 || c1 >= k_blocks)) ++t;
        run_tiles(ws, ws.slot(k, lanes, dm_), b, g, rows[k], next[k], t, lanes);
        next[k] = t;
        more = more || t < rp[rows[k] + 1];
      }
      if (!more) break;
    }
    for (int k = 0; k < n; ++k) {
      const Slot sl = ws.slot(k, lanes, dm_);
      if (plan.row_diagonal[rows[k]]) {
        run_diagonals(ws, sl, b, g, plan, rows[k] * bq_, lanes);
        run_bands(ws, sl, b, g, plan.bands, rows[k], lanes);
      }
      kernels::normalize(sl.ot, sl.l, lanes, dv_);
      finish(sl.ot, sl.m, sl.l, lanes, b, g, rows[k]);
    }
  }

  void part_item(Workspace& ws, std::int64_t b, std::int64_t e) {
    const PartRef& pr = parts_[e];
    const HeadGroup& g = groups_[pr.group];
    const std::int64_t r = splits_[g.distinct].rows[pr.split].row;
    const std::int64_t lanes = static_cast<std::int64_t>(g.heads.size()) * bq_;
    const Slot sl = ws.slot(0, lanes, dm_);
    begin_row(sl, b, g, r, lanes);
    run_tiles(ws, sl, b, g, r, pr.t0, pr.t1, lanes);
    if (pr.part == 0 && plans_[g.distinct].row_diagonal[r]) {
      run_diagonals(ws, sl, b, g, plans_[g.distinct], r * bq_, lanes);
      run_bands(ws, sl, b, g, plans_[g.distinct].bands, r, lanes);
    }
    float* out = partial_ + (b * static_cast<std::int64_t>(parts_.size()) + e) * slot_;
    std::copy(ws.ot.get(), ws.ot.get() + dv_ * lanes, out);
    std::copy(ws.m.get(), ws.m.get() + lanes, out + dv_ * lanes);
    std::copy(ws.l.get(), ws.l.get() + lanes, out + dv_ * lanes + lanes);
  }

  // A Pairs tile (key-tile column kc, mask bits) of the row in slot sl: for each query lane,
  // its kept keys one by one (dot product with its own Q row, online softmax in a local
  // (m, l, O)), merged into the slot's state once per lane. Row r of the slot is lane % block_q.
  void run_pairs(Workspace& ws, const Slot& sl, std::int64_t b, const HeadGroup& g, std::int64_t q0,
                 const BlockLayout& bl, const std::uint64_t* bits, std::int64_t kc,
                 std::int64_t lanes) const {
    const int words = bl.mask_row_words();
    const std::int64_t k0 = kc * bk_;
    float* q = ws.ds.get();  // [4][dm]: Q row (scaled), local O, K and V rows
    float* o = q + dm_;
    float* kr = o + dm_;
    float* vr = kr + dm_;
    // The keys are scattered: ask for their K and V rows first, so that the loads overlap.
    if (k_.rows_contiguous() && v_.rows_contiguous())
      for (std::int64_t i = 0; i < bq_ && q0 + i < shape_.nq; ++i)
        for (int w = 0; w < words; ++w)
          for (std::uint64_t x = bits[i * words + w]; x != 0; x &= x - 1) {
            const std::int64_t j = k0 + w * 64 + std::countr_zero(x);
            const char* kp = reinterpret_cast<const char*>(k_.row(b, g.kv_head, j));
            const char* vp = reinterpret_cast<const char*>(v_.row(b, g.kv_head, j));
            for (int c = 0; c < dm_ * 4; c += 64) {
              __builtin_prefetch(kp + c);
              __builtin_prefetch(vp + c);
            }
          }
    for (std::size_t hi = 0; hi < g.heads.size(); ++hi)
      for (std::int64_t i = 0; i < bq_ && q0 + i < shape_.nq; ++i) {
        const std::uint64_t* row = bits + i * words;
        const std::int64_t lane = static_cast<std::int64_t>(hi) * bq_ + i;
        bool any = false;
        const float* qp = q;
        float m = kNegInf, l = 0.0f;
        for (int w = 0; w < words; ++w)
          for (std::uint64_t x = row[w]; x != 0; x &= x - 1) {
            const std::int64_t j = k0 + w * 64 + std::countr_zero(x);
            if (!any) {
              qp = load_row(q_, b, g.heads[hi], q0 + i, scale_, q);
              std::fill(o, o + dv_, 0.0f);
              any = true;
            }
            const float* kp = load_row(k_, b, g.kv_head, j, 1.0f, kr);
            float sc = dot(qp, kp);
            if (modify_)
              sc = modify_score(sc, g.heads[hi], q0 + i + shape_.nk - shape_.nq, j, q0 + i);
            const float* vp = load_row(v_, b, g.kv_head, j, 1.0f, vr);
            if (sc > m) {
              const float a = m == kNegInf ? 0.0f : std::exp(m - sc);
              l *= a;
              for (int x2 = 0; x2 < dv_; ++x2) o[x2] *= a;
              m = sc;
            }
            const float p = std::exp(sc - m);
            l += p;
            for (int x2 = 0; x2 < dv_; ++x2) o[x2] += p * vp[x2];
          }
        if (!any) continue;
        // Merge (m, l, o) into the slot's lane.
        const float mo = sl.m[lane], mm = std::max(mo, m);
        const float a = mo == kNegInf ? 0.0f : std::exp(mo - mm), c = std::exp(m - mm);
        for (int x2 = 0; x2 < dv_; ++x2)
          sl.ot[x2 * lanes + lane] = a * sl.ot[x2 * lanes + lane] + c * o[x2];
        sl.l[lane] = a * sl.l[lane] + c * l;
        sl.m[lane] = mm;
      }
  }

  // Row j of (b, h) times scale: in place when contiguous and scale is 1, else into buf.
  const float* load_row(const ConstTensorView& t, std::int64_t b, std::int64_t h, std::int64_t j,
                        float scale, float* buf) const {
    if (const KVView* n = narrow(t)) {
      flash::kv_row_to_f32(*n, b, h, j, buf);
      return buf;
    }
    const float* src = t.row(b, h, j);
    if (t.stride[3] == 1 && scale == 1.0f) return src;
    for (int p = 0; p < t.shape[3]; ++p) buf[p] = src[p * t.stride[3]] * scale;
    return buf;
  }

  // Dot product of two d-vectors, summed in 16 lanes then across them (a fixed order).
  float dot(const float* a, const float* c) const {
    float acc[16] = {};
    int p = 0;
    for (; p + 16 <= d_; p += 16)
      for (int t = 0; t < 16; ++t) acc[t] += a[p + t] * c[p + t];
    for (int t = 0; p < d_; ++p, ++t) acc[t] += a[p] * c[p];
    float s = 0.0f;
    for (float v : acc) s += v;
    return s;
  }

  // Starts query block r of head group g in slot sl: Q^T packed (times the scale, padding
  // lanes zero), O^T = 0, m = -inf, l = 0.
  void begin_row(const Slot& sl, std::int64_t b, const HeadGroup& g, std::int64_t r,
                 std::int64_t lanes) const {
    const std::int64_t q0 = r * bq_;
    const std::int64_t rows = std::min<std::int64_t>(bq_, shape_.nq - q0);
    float* qt = sl.qt;
    for (std::size_t hi = 0; hi < g.heads.size(); ++hi)  // 16 rows at a time (bq_ is 16k)
      for (std::int64_t v = 0; v < bq_; v += 16)
        pack16(q_, b, g.heads[hi], q0 + v, rows - v, scale_,
               qt + static_cast<std::int64_t>(hi) * bq_ + v, lanes);
    std::fill(sl.ot, sl.ot + dv_ * lanes, 0.0f);
    std::fill(sl.m, sl.m + lanes, kNegInf);
    std::fill(sl.l, sl.l + lanes, 0.0f);
  }

  // Runs kept tiles [t0, t1) of row r of head group g into slot sl, each by its planned path
  // (gathered columns flushed at the end).
  void run_tiles(Workspace& ws, const Slot& sl, std::int64_t b, const HeadGroup& g, std::int64_t r,
                 std::int64_t t0, std::int64_t t1, std::int64_t lanes) {
    if (t0 == t1) return;
    const BlockLayout& bl = block_layout(g);
    const flash::HeadPlan& plan = plans_[g.distinct];
    kernels::TileStep st;
    st.qt = sl.qt;
    st.lanes = lanes;
    st.d = d_;
    st.dv = dv_;
    st.s = ws.s.get();
    st.ot = sl.ot;
    st.m = sl.m;
    st.l = sl.l;
    st.scratch = ws.scratch.get();
    kernels::ScoreLanes lm = lanes_mod_;
    if (modify_) {
      row_lanes(ws, g, r, lanes, lm);
      st.mod = &lm;
    }
    const auto cols = bl.col_index();
    const std::int64_t vecs = lanes / 16;
    int panel = 0;          // gathered keys waiting in the panel
    bool panel_all = true;  // every lane of every gathered key is allowed
    auto flush = [&] {
      if (panel == 0) return;
      st.k = ws.kpanel.get();
      st.k_stride = d_;
      st.v = ws.vpanel.get();
      st.v_stride = dv_;
      st.keys = panel;
      lm.kpos = ws.mkpanel.get();
      lm.bias = bias_ ? ws.mbias_panel.get() : nullptr;
      st.keep = panel_all ? (mask_full_ ? ws.all_ones.get() : nullptr) : ws.panel_keep.get();
      kernels::flash_step(st);
      panel = 0;
      panel_all = true;
    };
    for (std::int64_t t = t0; t < t1; ++t) {
      const flash::TileAction action = plan.action[t];
      if (action == flash::TileAction::Skip) continue;
      const std::int64_t k0 = static_cast<std::int64_t>(cols[t]) * bk_;
      const std::uint64_t* bits = plan.mask_bits(bl, t);
      if (action == flash::TileAction::Pairs) {
        run_pairs(ws, sl, b, g, r * bq_, bl, bits, cols[t], lanes);
        continue;
      }
      if (action == flash::TileAction::Gather) {
        for (int c = plan.c0[t]; c <= plan.c1[t]; ++c) {
          std::uint16_t* keep = ws.panel_keep.get() + panel * vecs;
          const bool all = kernels::column_lanes(bits, bl.mask_row_words(), bq_, c, lanes, keep);
          if (!all && std::all_of(keep, keep + vecs, [](std::uint16_t x) { return x == 0; }))
            continue;
          copy_row(k_, b, g.kv_head, k0 + c, ws.kpanel.get() + panel * d_);
          if (modify_) ws.mkpanel.get()[panel] = static_cast<float>(k0 + c);
          if (bias_)
            row_bias(
                g, r, lanes, 1, [&](int) { return k0 + c; }, ws.mbias_panel.get() + panel * lanes);
          copy_row(v_, b, g.kv_head, k0 + c, ws.vpanel.get() + panel * dv_);
          panel_all = panel_all && all;
          if (++panel == kPanelKeys) flush();
        }
        continue;
      }
      const int c0 = action == flash::TileAction::Run ? plan.c0[t] : 0;
      const int keys = action == flash::TileAction::Run
                           ? plan.c1[t] - plan.c0[t] + 1
                           : static_cast<int>(std::min<std::int64_t>(bk_, shape_.nk - k0));
      st.keys = keys;
      st.k = tile_rows(k_, b, g.kv_head, k0 + c0, keys, ws.kpack.get(), st.k_stride);
      st.v = tile_rows(v_, b, g.kv_head, k0 + c0, keys, ws.vpack.get(), st.v_stride);
      if (modify_) {
        for (int j = 0; j < keys; ++j) ws.mkpos.get()[j] = static_cast<float>(k0 + c0 + j);
        lm.kpos = ws.mkpos.get();
        if (bias_) {
          row_bias(
              g, r, lanes, keys, [&](int j) { return k0 + c0 + j; }, ws.mbias.get());
          lm.bias = ws.mbias.get();
        }
      }
      // An all-ones mask keeps every lane, so the masked kernel's blends return their inputs
      // unchanged: the same arithmetic as the Full path, plus the masking work.
      if (bits != nullptr)
        st.keep = lane_mask(ws, bl, bits, c0, keys, lanes);
      else
        st.keep = mask_full_ ? ws.all_ones.get() : nullptr;
      kernels::flash_step(st);
    }
    flush();
  }

  // The ALiBi slope of query head h (0 without ALiBi).
  float lane_slope(std::int64_t h) const {
    return mod_.alibi_slopes.empty() ? 0.0f : mod_.alibi_slopes[static_cast<std::size_t>(h)];
  }

  // Query positions and slopes of the lanes of row r of head group g (lane hi * block_q + i:
  // query r * block_q + i of head g.heads[hi]) into the workspace, pointed to by lm.
  void row_lanes(Workspace& ws, const HeadGroup& g, std::int64_t r, std::int64_t lanes,
                 kernels::ScoreLanes& lm) const {
    const std::int64_t p0 = r * bq_ + shape_.nk - shape_.nq;
    for (std::int64_t lane = 0; lane < lanes; ++lane) {
      ws.mqpos.get()[lane] = static_cast<float>(p0 + lane % bq_);
      ws.mslope.get()[lane] = lane_slope(g.heads[static_cast<std::size_t>(lane / bq_)]);
    }
    lm.qpos = ws.mqpos.get();
    lm.slope = ws.mslope.get();
  }

  // The bias of the lanes of row r of head group g (lane hi * block_q + i: query r * block_q + i
  // of head g.heads[hi]) against keys key(0), ..., key(keys - 1), into out[j * lanes + lane];
  // lanes past the last query get 0.
  template <class Key>
  void row_bias(const HeadGroup& g, std::int64_t r, std::int64_t lanes, int keys, Key key,
                float* out) const {
    for (std::int64_t lane = 0; lane < lanes; ++lane) {
      const std::int64_t h = g.heads[static_cast<std::size_t>(lane / bq_)];
      const std::int64_t i = r * bq_ + lane % bq_;
      for (int j = 0; j < keys; ++j)
        out[j * lanes + lane] = i < shape_.nq ? mod_.bias.at(h, i, key(j)) : 0.0f;
    }
  }

  // One scaled score of the row-level path, modified (float, scalar): soft-capping, then ALiBi,
  // then the bias (query index i).
  float modify_score(float s, std::int64_t h, std::int64_t qpos, std::int64_t key,
                     std::int64_t i) const {
    if (mod_.softcap) s = *mod_.softcap * std::tanh(s * lanes_mod_.inv_cap);
    if (!mod_.alibi_slopes.empty())
      s -= lane_slope(h) * static_cast<float>(qpos > key ? qpos - key : key - qpos);
    if (bias_) s += mod_.bias.at(h, i, key);
    return s;
  }

  // Learned sinks, once every pair is in O and LSE: each row of head h gains e^(sink_h) in its
  // denominator: LSE' = log(e^LSE + e^sink) (stably), O' = O e^(LSE - LSE'); a row with no
  // allowed key (O = 0, LSE = -inf) gets LSE' = sink.
  void add_sinks() const {
    tbb::parallel_for(std::int64_t{0}, shape_.batch * shape_.q_heads, [&](std::int64_t bh) {
      const std::int64_t b = bh / shape_.q_heads, h = bh % shape_.q_heads;
      const float sink = mod_.sinks[static_cast<std::size_t>(h)];
      for (std::int64_t i = 0; i < shape_.nq; ++i) {
        float& lse = lse_.at(b, h, i, 0);
        if (lse == kNegInf) {
          lse = sink;
          continue;
        }
        const float mm = std::max(lse, sink);
        const float total = mm + std::log(std::exp(lse - mm) + std::exp(sink - mm));
        const float c = std::exp(lse - total);
        float* o = o_.row(b, h, i);
        for (int x = 0; x < dv_; ++x) o[x * o_.stride[3]] *= c;
        lse = total;
      }
    });
  }

  int distinct_of(std::int64_t h) const {
    return layout_.geometry.heads == 1 ? layout_.head_to_distinct[0] : layout_.head_to_distinct[h];
  }

  // One residue-track item: track group k of query head h's plan through the track kernel,
  // then its pairs folded into the finished O and LSE of its queries through the log-sum-exp:
  // with the rows' (O, LSE) and the tracks' unnormalized (O_t, m, l), LSE_t = m + log l,
  // M = max(LSE, LSE_t), w = e^(LSE - M), w_t = e^(LSE_t - M): O = (w O + w_t O_t / l) /
  // (w + w_t), LSE = M + log(w + w_t).
  void track_item(Workspace& ws, std::int64_t b, int h, int k) const {
    const flash::HeadPlan& plan = plans_[distinct_of(h)];
    const flash::TrackGroup& grp = plan.track_groups[k];
    const std::int64_t* v = plan.track.members[grp.tau].data() + grp.first;
    const std::int64_t kvh = h / shape_.group();
    // Alignment slots of this plan's residues among the panels built.
    int slot_of[16];
    for (std::size_t k2 = 0; k2 < plan.track.aligns.size(); ++k2)
      slot_of[k2] = static_cast<int>(
          std::lower_bound(panel_aligns_.begin(), panel_aligns_.end(), plan.track.aligns[k2]) -
          panel_aligns_.begin());
    for (int a = 0; a < grp.count; ++a) {
      const std::int64_t q0 = 16 * v[a], rows = std::min<std::int64_t>(16, shape_.nq - q0);
      pack16(q_, b, h, q0, rows, scale_, ws.tq.get() + a * dm_ * 16, 16);
      std::fill(ws.tot.get() + a * dm_ * 16, ws.tot.get() + a * dm_ * 16 + dv_ * 16, 0.0f);
      std::fill(ws.tm.get() + a * 16, ws.tm.get() + (a + 1) * 16, kNegInf);
      std::fill(ws.tl.get() + a * 16, ws.tl.get() + (a + 1) * 16, 0.0f);
    }
    kernels::TrackStep st;
    st.d = d_;
    st.dv = dv_;
    st.kv_stride = 16;
    st.s = ws.ts.get();
    kernels::ScoreLanes lm = lanes_mod_;
    if (modify_) {
      st.mod = &lm;
      st.slope = lane_slope(h);
      if (bias_) lm.bias = ws.tbias.get();
    }
    flash::for_each_track_block(
        plan.track, grp, shape_.nq, shape_.nk, [&](const flash::TrackBlock& blk) {
          const int a0 = blk.query_block * plan.track.queries;
          st.queries = blk.queries;
          for (int a = 0; a < blk.queries; ++a) {
            st.qt[a] = ws.tq.get() + (a0 + a) * dm_ * 16;
            st.ot[a] = ws.tot.get() + (a0 + a) * dm_ * 16;
            st.m[a] = ws.tm.get() + (a0 + a) * 16;
            st.l[a] = ws.tl.get() + (a0 + a) * 16;
            st.qpos0[a] = static_cast<float>(16 * v[a0 + a] + shape_.nk - shape_.nq);
          }
          st.keys = blk.keys;
          const int slot = slot_of[blk.align];
          const std::int64_t r = plan.track.aligns[blk.align];
          const float* kp = panel_base(b, kvh, slot, 0);
          const float* vp = panel_base(b, kvh, slot, 1);
          for (int c = 0; c < blk.keys; ++c) {
            const std::int64_t i = (blk.key0[c] - r + 16) / 16;
            st.k[c] = kp + i * d_ * 16;
            st.v[c] = vp + i * dv_ * 16;
            st.kpos0[c] = static_cast<float>(blk.key0[c]);
          }
          st.keep = blk.keep;
          if (bias_)  // lane i of query vector a: query 16 v[a0 + a] + i; of key vector c: key0 + i
            for (int a = 0; a < blk.queries; ++a)
              for (int c = 0; c < blk.keys; ++c)
                for (int i = 0; i < 16; ++i)
                  ws.tbias.get()[(a * kernels::kTrackMaxKeys + c) * 16 + i] =
                      (blk.keep[a][c] >> i) & 1u
                          ? mod_.bias.at(h, 16 * v[a0 + a] + i, blk.key0[c] + i)
                          : 0.0f;
          kernels::track_step(st);
        });
    for (int a = 0; a < grp.count; ++a) {
      const std::int64_t q0 = 16 * v[a], rows = std::min<std::int64_t>(16, shape_.nq - q0);
      for (std::int64_t i = 0; i < rows; ++i)
        fold(b, h, q0 + i, ws.tot.get() + a * dm_ * 16 + i, 16, ws.tm.get()[a * 16 + i],
             ws.tl.get()[a * 16 + i]);
    }
  }

  // Folds a late item's pairs of query i (unnormalized O_t[x] = ot[x * ot_stride], max m and
  // sum l) into the finished O and LSE through the log-sum-exp: LSE_t = m + log l, M =
  // max(LSE, LSE_t), w = e^(LSE - M), w_t = e^(LSE_t - M): O = w / (w + w_t) O + w_t / (l (w +
  // w_t)) O_t, LSE = M + log(w + w_t). Nothing changes when m = -inf (no pair of the query in the
  // item).
  void fold(std::int64_t b, std::int64_t h, std::int64_t i, const float* ot, std::int64_t ot_stride,
            float m, float l) const {
    if (m == kNegInf) return;
    const float lse_t = m + std::log(l);
    float& lse = lse_.at(b, h, i, 0);
    float* o = o_.row(b, h, i);
    if (lse == kNegInf) {  // nothing before: O_t / l, without reading O
      const float c = 1.0f / l;
      for (int x = 0; x < dv_; ++x) o[x * o_.stride[3]] = c * ot[x * ot_stride];
      lse = lse_t;
      return;
    }
    const float mm = std::max(lse, lse_t);
    const float w = std::exp(lse - mm);
    const float wt = std::exp(lse_t - mm);
    const float sum = w + wt;
    const float a = w / sum, c = wt / (l * sum);
    for (int x = 0; x < dv_; ++x)
      o[x * o_.stride[3]] = a * o[x * o_.stride[3]] + c * ot[x * ot_stride];
    lse = mm + std::log(sum);
  }

  enum class LateKind { Track, Class };
  struct LateItem {
    int head = 0;
    LateKind kind = LateKind::Track;
    std::int64_t index = 0;  // track group or class item
  };

  // The items of one round, for every batch, in parallel (each writes its own queries).
  template <class Local>
  void run_late(const std::vector<LateItem>& items, Local& local) const {
    const std::int64_t per_batch = static_cast<std::int64_t>(items.size());
    if (per_batch == 0) return;
    tbb::parallel_for(
        tbb::blocked_range<std::int64_t>(0, shape_.batch * per_batch, 1),
        [&](const tbb::blocked_range<std::int64_t>& range) {
          Workspace& ws = local();
          for (std::int64_t it = range.begin(); it != range.end(); ++it) {
            const LateItem& li = items[it % per_batch];
            const flash::HeadPlan& plan = plans_[distinct_of(li.head)];
            const std::int64_t b = it / per_batch;
            if (li.kind == LateKind::Track)
              track_item(ws, b, li.head, static_cast<int>(li.index));
            else
              class_item(ws, b, li.head, plan.classes, li.index);
          }
        },
        tbb::simple_partitioner());
  }

  // Item k of residue-class plan cp (classes.hpp) of query head h: its queries' Q^T gathered
  // from rows s apart, each band step's K and V rows gathered into the panel and run through
  // the tile kernel, masked on the band's edges, then folded into O and LSE.
  void class_item(Workspace& ws, std::int64_t b, int h, const flash::ClassPlan& cp,
                  std::int64_t k) const {
    const flash::ClassItem& item = cp.items[k];
    const std::int64_t lanes = cp.queries, s = cp.step, shift = shape_.nk - shape_.nq;
    const std::int64_t kvh = h / shape_.group();
    auto query = [&](std::int64_t q) { return (item.a0 + q) * s + item.c - shift; };
    // The item's rows are s apart (a cache miss each): ask for the O rows and LSE its fold
    // updates at the end, and the next item's Q rows, while this one computes.
    if (o_.stride[3] == 1)
      for (std::int64_t q = 0; q < lanes; ++q)
        if ((item.lanes >> q) & 1u) {
          const char* p = reinterpret_cast<const char*>(o_.row(b, h, query(q)));
          for (int c = 0; c < d_ * 4; c += 64) __builtin_prefetch(p + c, 1, 3);
          __builtin_prefetch(&lse_.at(b, h, query(q), 0), 1, 3);
        }
    if (k + 1 < static_cast<std::int64_t>(cp.items.size()) && q_.stride[3] == 1) {
      const flash::ClassItem& next = cp.items[k + 1];
      for (std::int64_t q = 0; q < lanes; ++q)
        if ((next.lanes >> q) & 1u) {
          const char* p =
              reinterpret_cast<const char*>(q_.row(b, h, (next.a0 + q) * s + next.c - shift));
          for (int c = 0; c < d_ * 4; c += 64) __builtin_prefetch(p + c, 0, 2);
        }
    }
    for (std::int64_t w = 0; w < lanes / 16; ++w) {
      const float* src[16];
      for (int t = 0; t < 16; ++t) {
        const std::int64_t q = 16 * w + t;
        src[t] = (item.lanes >> q) & 1u ? q_.row(b, h, query(q)) : nullptr;
      }
      transpose_rows(q_, src, scale_, ws.qt.get() + 16 * w, lanes);
    }
    std::fill(ws.ot.get(), ws.ot.get() + dv_ * lanes, 0.0f);
    std::fill(ws.m.get(), ws.m.get() + lanes, kNegInf);
    std::fill(ws.l.get(), ws.l.get() + lanes, 0.0f);
    kernels::TileStep st;
    st.qt = ws.qt.get();
    st.lanes = lanes;
    st.d = d_;
    st.dv = dv_;
    st.s = ws.s.get();
    st.ot = ws.ot.get();
    st.m = ws.m.get();
    st.l = ws.l.get();
    st.scratch = ws.scratch.get();
    kernels::ScoreLanes lm = lanes_mod_;
    if (modify_) {
      const float slope = lane_slope(h);
      for (std::int64_t q = 0; q < lanes; ++q) {
        ws.mqpos.get()[q] = static_cast<float>((item.a0 + q) * s + item.c);
        ws.mslope.get()[q] = slope;
      }
      lm.qpos = ws.mqpos.get();
      lm.slope = ws.mslope.get();
      lm.kpos = ws.mkpos.get();
      st.mod = &lm;
    }
    flash::for_each_class_chunk(cp, item, shape_.nk, [&](const flash::ClassChunk& ch) {
      // Keys of a class are rows s apart: read in place (stride s rows) when rows are
      // contiguous, else gathered into the panel.
      const std::int64_t j0 = ch.cp + ch.b0 * s;
      st.k = tile_rows(k_, b, kvh, j0, ch.keys, ws.kpanel.get(), st.k_stride, s);
      st.v = tile_rows(v_, b, kvh, j0, ch.keys, ws.vpanel.get(), st.v_stride, s);
      st.keys = ch.keys;
      if (modify_)
        for (int j = 0; j < ch.keys; ++j) ws.mkpos.get()[j] = static_cast<float>(j0 + j * s);
      if (bias_) {
        for (std::int64_t q = 0; q < lanes; ++q) {
          const bool on = (item.lanes >> q) & 1u;
          for (int j = 0; j < ch.keys; ++j)
            ws.mbias.get()[j * lanes + q] = on ? mod_.bias.at(h, query(q), j0 + j * s) : 0.0f;
        }
        lm.bias = ws.mbias.get();
      }
      if (ch.full) {
        st.keep = mask_full_ ? ws.all_ones.get() : nullptr;
      } else {
        flash::class_chunk_keep(cp, item, ch, lanes, ws.panel_keep.get());
        st.keep = ws.panel_keep.get();
      }
      kernels::flash_step(st);
    });
    for (std::int64_t q = 0; q < lanes; ++q)
      if ((item.lanes >> q) & 1u)
        fold(b, h, query(q), ws.ot.get() + q, lanes, ws.m.get()[q], ws.l.get()[q]);
  }

  // The dense bands of query-tile row r (cp: residue classes of step 1, classes.hpp) into slot
  // sl: each block of cp.queries queries (at most block_q) of each head runs the band's keys, 64
  // at a time, through the tile kernel, masked on the band's edges, on its lanes' running state
  // (Q^T, O^T, max, sum; copied out of the slot and back unless the block is the whole slot):
  // the same online softmax as further tiles of the row. The plan leaves cp empty when the
  // bands run on single vectors or the tiles.
  void run_bands(Workspace& ws, const Slot& sl, std::int64_t b, const HeadGroup& g,
                 const flash::ClassPlan& cp, std::int64_t r, std::int64_t lanes) const {
    if (cp.empty()) return;
    const std::int64_t nq = cp.queries, shift = shape_.nk - shape_.nq;
    const bool direct = lanes == nq;
    float* qt = direct ? sl.qt : ws.tq.get();
    kernels::TileStep st;
    st.qt = qt;
    st.ot = direct ? sl.ot : ws.tot.get();
    st.m = direct ? sl.m : ws.tm.get();
    st.l = direct ? sl.l : ws.tl.get();
    st.lanes = nq;
    st.d = d_;
    st.dv = dv_;
    st.s = ws.s.get();
    st.scratch = ws.scratch.get();
    kernels::ScoreLanes lm = lanes_mod_;
    // nq (16, 32 or 64) floats of `rows` rows, 16 at a time (inline, not a library call).
    auto copy_lanes = [&](const float* from, std::int64_t from_stride, float* to,
                          std::int64_t to_stride, int rows) {
      for (int p = 0; p < rows; ++p)
        for (std::int64_t w = 0; w < nq; w += 16)
          std::memcpy(to + p * to_stride + w, from + p * from_stride + w, 16 * sizeof(float));
    };
    for (std::size_t hi = 0; hi < g.heads.size(); ++hi)
      for (std::int64_t v = 0; v < bq_ && r * bq_ + v < shape_.nq; v += nq) {
        const std::int64_t q0 = r * bq_ + v, off = static_cast<std::int64_t>(hi) * bq_ + v;
        const std::int64_t valid = std::min(nq, shape_.nq - q0);
        const flash::ClassItem item{
            0, q0 + shift, valid == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << valid) - 1};
        if (!direct) {
          copy_lanes(sl.qt + off, lanes, qt, nq, d_);
          copy_lanes(sl.ot + off, lanes, st.ot, nq, dv_);
          copy_lanes(sl.m + off, 0, st.m, 0, 1);
          copy_lanes(sl.l + off, 0, st.l, 0, 1);
        }
        if (modify_) {
          const float slope = lane_slope(g.heads[hi]);
          for (std::int64_t q = 0; q < nq; ++q) {
            ws.mqpos.get()[q] = static_cast<float>(q0 + shift + q);
            ws.mslope.get()[q] = slope;
          }
          lm.qpos = ws.mqpos.get();
          lm.slope = ws.mslope.get();
          lm.kpos = ws.mkpos.get();
          st.mod = &lm;
        }
        flash::for_each_class_chunk(cp, item, shape_.nk, [&](const flash::ClassChunk& ch) {
          st.k = tile_rows(k_, b, g.kv_head, ch.b0, ch.keys, ws.kpanel.get(), st.k_stride);
          st.v = tile_rows(v_, b, g.kv_head, ch.b0, ch.keys, ws.vpanel.get(), st.v_stride);
          st.keys = ch.keys;
          if (modify_)
            for (int j = 0; j < ch.keys; ++j) ws.mkpos.get()[j] = static_cast<float>(ch.b0 + j);
          if (bias_) {
            const std::int64_t h = g.heads[hi];
            for (std::int64_t q = 0; q < nq; ++q)
              for (int j = 0; j < ch.keys; ++j)
                ws.mbias.get()[j * nq + q] = q < valid ? mod_.bias.at(h, q0 + q, ch.b0 + j) : 0.0f;
            lm.bias = ws.mbias.get();
          }
          if (ch.full) {
            st.keep = mask_full_ ? ws.all_ones.get() : nullptr;
          } else {
            flash::class_chunk_keep(cp, item, ch, nq, ws.panel_keep.get());
            st.keep = ws.panel_keep.get();
          }
          kernels::flash_step(st);
        });
        if (!direct) {
          copy_lanes(st.ot, nq, sl.ot + off, lanes, dv_);
          copy_lanes(st.m, 0, sl.m + off, 0, 1);
          copy_lanes(st.l, 0, sl.l + off, 0, 1);
        }
      }
  }

  // The diagonal path of one item: each 16-lane vector against the plan's offsets that reach a
  // key of the sequence from one of its queries, 64 at a time.
  void run_diagonals(Workspace& ws, const Slot& sl, std::int64_t b, const HeadGroup& g,
                     const flash::HeadPlan& plan, std::int64_t q0, std::int64_t lanes) const {
    const std::int64_t shift = shape_.nk - shape_.nq;
    const std::int64_t head_vecs = bq_ / 16;
    const std::int64_t base = ((b * shape_.kv_heads + g.kv_head) * dm_) * t_stride_ + kTransposePad;
    kernels::DiagonalStep ds;
    ds.lanes = lanes;
    ds.d = d_;
    ds.dv = dv_;
    ds.kt = kt_ + base;
    ds.vt = vt_ + base;
    ds.t_stride = t_stride_;
    ds.key0 = ws.dkey0.get();
    ds.keep = ws.dkeep.get();
    ds.s = ws.ds.get();
    for (std::int64_t w = 0; w < lanes / 16; ++w) {
      const std::int64_t qv = q0 + (w % head_vecs) * 16;
      if (qv >= shape_.nq) continue;
      const std::int64_t rows = std::min<std::int64_t>(16, shape_.nq - qv);
      const std::int64_t p = qv + shift;
      const auto [a, e] = flash::offset_range(plan.offsets, p - (shape_.nk - 1), p + rows - 1);
      ds.qt = sl.qt + w * 16;
      kernels::ScoreLanes lm = lanes_mod_;
      if (modify_) {
        const float slope = lane_slope(g.heads[w / head_vecs]);
        for (int i = 0; i < 16; ++i) {
          ws.dqpos.get()[i] = static_cast<float>(p + i);
          ws.dslope.get()[i] = slope;
        }
        lm.qpos = ws.dqpos.get();
        lm.slope = ws.dslope.get();
        ds.mod = &lm;
      }
      ds.ot = sl.ot + w * 16;
      ds.m = sl.m + w * 16;
      ds.l = sl.l + w * 16;
      for (std::int64_t c = a; c < e; c += kernels::kMaxDiagonalSlots) {
        const int slots =
            static_cast<int>(std::min<std::int64_t>(kernels::kMaxDiagonalSlots, e - c));
        for (int y = 0; y < slots; ++y) {
          const std::int64_t key0 = p - plan.offsets[c + y];
          const std::int64_t lo = std::max<std::int64_t>(0, -key0);
          const std::int64_t hi = std::min<std::int64_t>(rows, shape_.nk - key0);
          ws.dkey0.get()[y] = key0;
          ws.dkeep.get()[y] = static_cast<std::uint16_t>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
          if (bias_)
            for (std::int64_t i = 0; i < 16; ++i)
              ws.dbias.get()[y * 16 + i] =
                  i >= lo && i < hi ? mod_.bias.at(g.heads[w / head_vecs], qv + i, key0 + i) : 0.0f;
        }
        if (bias_) lm.bias = ws.dbias.get();
        ds.slots = slots;
        kernels::diagonal_step(ds);
      }
    }
  }

  // First float of panel 0 of (batch b, K/V head, alignment slot, K = 0 or V = 1).
  float* panel_base(std::int64_t b, std::int64_t kvh, std::int64_t slot, int kv) const {
    const std::int64_t per = flash::panel_count(shape_.nk) * dm_ * 16;
    const std::int64_t aligns = static_cast<std::int64_t>(panel_aligns_.size());
    return panels_ + (((b * shape_.kv_heads + kvh) * aligns + slot) * 2 + kv) * per;
  }

  // K and V of every (batch, K/V head) as 16-key panels [panel][d or d_v][16] for each alignment r:
  // panel i holds keys 16 i + r - 16 + lane, zero outside the sequence.
  void make_panels() const {
    const std::int64_t aligns = static_cast<std::int64_t>(panel_aligns_.size());
    const std::int64_t count = flash::panel_count(shape_.nk);
    tbb::parallel_for(std::int64_t{0}, shape_.batch * shape_.kv_heads * aligns * 2,
                      [&](std::int64_t e) {
                        const int kv = static_cast<int>(e % 2);
                        const std::int64_t slot = (e / 2) % aligns;
                        const std::int64_t bh = e / 2 / aligns;
                        const std::int64_t b = bh / shape_.kv_heads, h = bh % shape_.kv_heads;
                        const ConstTensorView& t = kv == 0 ? k_ : v_;
                        float* dst = panel_base(b, h, slot, kv);
                        const int r = panel_aligns_[slot];
                        for (std::int64_t i = 0; i < count; ++i)
                          pack16(t, b, h, 16 * i + r - 16, 16, 1.0f, dst + i * t.shape[3] * 16, 16);
                      });
  }

  // K and V of every (batch, K/V head) transposed into [d or d_v][pad + nk + pad] (one head every
  // dm rows), padding zero.
  void transpose_kv(float* out) const {
    const std::int64_t heads = shape_.batch * shape_.kv_heads;
    const std::int64_t per = dm_ * t_stride_;
    tbb::parallel_for(std::int64_t{0}, 2 * heads, [&](std::int64_t e) {
      const ConstTensorView& t = e < heads ? k_ : v_;
      const std::int64_t bh = e % heads;
      float* dst = out + e * per;
      for (int p = 0; p < t.shape[3]; ++p) {
        std::fill(dst + p * t_stride_, dst + p * t_stride_ + kTransposePad, 0.0f);
        std::fill(dst + p * t_stride_ + kTransposePad + shape_.nk, dst + (p + 1) * t_stride_, 0.0f);
      }
      for (std::int64_t j0 = 0; j0 < shape_.nk; j0 += 16)
        pack16(t, bh / shape_.kv_heads, bh % shape_.kv_heads, j0, 16, 1.0f,
               dst + kTransposePad + j0, t_stride_);
    });
  }

  // Rows j0 .. j0 + 15 of (b, h) (those in [0, min(j0 + rows, n)), the others zero) transposed
  // into out[p * out_stride + lane], times scale.
  void pack16(const ConstTensorView& t, std::int64_t b, std::int64_t h, std::int64_t j0,
              std::int64_t rows, float scale, float* out, std::int64_t out_stride) const {
    if (const KVView* n = narrow(t))
      return pack16_narrow(*n, b, h, j0, rows, scale, out, out_stride);
    const float* src[16];
    for (int i = 0; i < 16; ++i) {
      const std::int64_t j = j0 + i;
      src[i] = i < rows && j >= 0 && j < t.shape[2] ? t.row(b, h, j) : nullptr;
    }
    transpose_rows(t, src, scale, out, out_stride);
  }

  // 16 rows of t (null: zeros) transposed into out[p * out_stride + lane], times scale.
  void transpose_rows(const ConstTensorView& t, const float* const src[16], float scale, float* out,
                      std::int64_t out_stride) const {
    if (t.stride[3] == 1) {
      kernels::transpose16(src, static_cast<int>(t.shape[3]), scale, out, out_stride);
      return;
    }
    for (int p = 0; p < t.shape[3]; ++p)
      for (int i = 0; i < 16; ++i)
        out[p * out_stride + i] = src[i] != nullptr ? src[i][p * t.stride[3]] * scale : 0.0f;
  }

  void copy_row(const ConstTensorView& t, std::int64_t b, std::int64_t h, std::int64_t j,
                float* dst) const {
    if (const KVView* n = narrow(t)) return flash::kv_row_to_f32(*n, b, h, j, dst);
    const float* src = t.row(b, h, j);
    for (int p = 0; p < t.shape[3]; ++p) dst[p] = src[p * t.stride[3]];
  }

  // Pointer to key rows k0, k0 + step, ..., keys of them, of (b, h) with contiguous elements
  // (step > 1: one residue class's keys): in place when the view's rows are contiguous (row
  // stride `step` rows), else copied into `pack` ([keys][t's head dim]).
  const float* tile_rows(const ConstTensorView& t, std::int64_t b, std::int64_t h, std::int64_t k0,
                         int keys, float* pack, std::int64_t& stride, std::int64_t step = 1) const {
    if (t.rows_contiguous()) {
      stride = step * t.stride[2];
      return t.row(b, h, k0);
    }
    for (int j = 0; j < keys; ++j) copy_row(t, b, h, k0 + j * step, pack + j * t.shape[3]);
    stride = t.shape[3];
    return pack;
  }

  // Narrow K/V (kv_rows.hpp): the KVView behind k_ or v_, or null when t holds float32 rows.
  const KVView* narrow(const ConstTensorView& t) const {
    return &t == &k_ ? kn_ : (&t == &v_ ? vn_ : nullptr);
  }

  // pack16 for narrow K/V: the rows converted to float32, then transposed as float32 rows are.
  void pack16_narrow(const KVView& n, std::int64_t b, std::int64_t h, std::int64_t j0,
                     std::int64_t rows, float scale, float* out, std::int64_t out_stride) const {
    float buf[16 * kMaxHeadDim];
    const float* src[16];
    for (int i = 0; i < 16; ++i) {
      const std::int64_t j = j0 + i;
      src[i] = nullptr;
      if (i >= rows || j < 0 || j >= n.tokens()) continue;
      flash::kv_row_to_f32(n, b, h, j, buf + i * d_);
      src[i] = buf + i * d_;
    }
    kernels::transpose16(src, d_, scale, out, out_stride);
  }

 public:
  // K and V stored narrow: k_ and v_ are then kv_placeholder_view stand-ins, read only here.
  void set_narrow(const KVView* k, const KVView* v) {
    kn_ = k;
    vn_ = v;
  }

 private:
  const std::uint16_t* lane_mask(Workspace& ws, const BlockLayout& bl, const std::uint64_t* bits,
                                 int col0, int keys, std::int64_t lanes) const {
    for (int c = 0; c < 2; ++c)
      if (ws.keep_bits[c] == bits && ws.keep_col0[c] == col0 && ws.keep_keys[c] == keys &&
          ws.keep_lanes[c] == lanes)
        return ws.keep[c].get();
    const int c = ws.keep_next;
    ws.keep_next ^= 1;
    kernels::transpose_mask(bits, bl.mask_row_words(), bq_, col0, keys, lanes, ws.keep[c].get());
    ws.keep_bits[c] = bits;
    ws.keep_col0[c] = col0;
    ws.keep_keys[c] = keys;
    ws.keep_lanes[c] = lanes;
    return ws.keep[c].get();
  }

  // Writes O = O^T (already divided by l) and LSE = m + log(l) for the valid lanes; a lane with
  // m = -inf (no allowed key) gives zeros and -inf.
  void finish(const float* ot, const float* m, const float* l, std::int64_t lanes, std::int64_t b,
              const HeadGroup& g, std::int64_t r) const {
    const std::int64_t q0 = r * bq_;
    const std::int64_t rows = std::min<std::int64_t>(bq_, shape_.nq - q0);
    for (std::size_t hi = 0; hi < g.heads.size(); ++hi)
      for (std::int64_t i = 0; i < rows; ++i) {
        const std::int64_t lane = static_cast<std::int64_t>(hi) * bq_ + i;
        float* dst = o_.row(b, g.heads[hi], q0 + i);
        float& lse = lse_.at(b, g.heads[hi], q0 + i, 0);
        if (m[lane] == kNegInf) {
          for (int x = 0; x < dv_; ++x) dst[x * o_.stride[3]] = 0.0f;
          lse = kNegInf;
          continue;
        }
        for (int x = 0; x < dv_; ++x) dst[x * o_.stride[3]] = ot[x * lanes + lane];
        lse = m[lane] + std::log(l[lane]);
      }
  }

  // Merges the parts of split row si of group gi in part order: M = max m_p, weights
  // e^(m_p - M), O = sum w_p O_p / sum w_p l_p, LSE = M + log(sum w_p l_p).
  void merge(std::int64_t b, int gi, int si) const {
    const HeadGroup& g = groups_[gi];
    const SplitRow& sr = splits_[g.distinct].rows[si];
    const std::int64_t lanes = static_cast<std::int64_t>(g.heads.size()) * bq_;
    const float* first =
        partial_ + (b * static_cast<std::int64_t>(parts_.size()) + first_part_[gi][si]) * slot_;
    const std::int64_t q0 = sr.row * bq_;
    const std::int64_t rows = std::min<std::int64_t>(bq_, shape_.nq - q0);
    for (std::size_t hi = 0; hi < g.heads.size(); ++hi)
      for (std::int64_t i = 0; i < rows; ++i) {
        const std::int64_t lane = static_cast<std::int64_t>(hi) * bq_ + i;
        float mmax = kNegInf;
        for (int p = 0; p < sr.parts; ++p)
          mmax = std::max(mmax, first[p * slot_ + dv_ * lanes + lane]);
        float* dst = o_.row(b, g.heads[hi], q0 + i);
        float& lse = lse_.at(b, g.heads[hi], q0 + i, 0);
        if (mmax == kNegInf) {
          for (int x = 0; x < dv_; ++x) dst[x * o_.stride[3]] = 0.0f;
          lse = kNegInf;
          continue;
        }
        float lsum = 0.0f;
        for (int x = 0; x < dv_; ++x) dst[x * o_.stride[3]] = 0.0f;
        for (int p = 0; p < sr.parts; ++p) {
          const float* part = first + p * slot_;
          const float mp = part[dv_ * lanes + lane];
          if (mp == kNegInf) continue;
          const float w = std::exp(mp - mmax);
          lsum += w * part[dv_ * lanes + lanes + lane];
          for (int x = 0; x < dv_; ++x) dst[x * o_.stride[3]] += w * part[x * lanes + lane];
        }
        for (int x = 0; x < dv_; ++x) dst[x * o_.stride[3]] /= lsum;
        lse = mmax + std::log(lsum);
      }
  }

  ConstTensorView q_, k_, v_;
  const KVView* kn_ = nullptr;  // narrow K and V (set_narrow), or null
  const KVView* vn_ = nullptr;
  const Layout& layout_;
  TensorView o_, lse_;
  AttentionShape shape_;
  int d_ = 0;   // head dim of q and k
  int dv_ = 0;  // head dim of v and o
  int dm_ = 0;  // max(d_, dv_): per-row and per-head buffer strides
  float scale_ = 1.0f;
  bool mask_full_ = false;
  ScoreMod mod_;
  bool modify_ = false;            // ALiBi, soft-capping or a bias on
  bool bias_ = false;              // a bias on
  kernels::ScoreLanes lanes_mod_;  // their constants (per-lane arrays set per step)
  std::int64_t bq_ = 0, bk_ = 0, q_blocks_ = 0, row_blocks_ = 0, lanes_ = 0;
  std::vector<HeadGroup> groups_;
  std::vector<SplitPlan> splits_;       // per distinct layout
  std::vector<flash::HeadPlan> plans_;  // per distinct layout
  // Transposed K and V for the diagonal path: [B][Hkv][d][kTransposePad + nk + kTransposePad]
  // each (null when no row uses it).
  const float* kt_ = nullptr;
  const float* vt_ = nullptr;
  std::int64_t t_stride_ = 0;
  // The residue tracks' 16-key panels [B][Hkv][alignment][K, V][panel][d][16] (null when no
  // plan has tracks) and their alignments.
  float* panels_ = nullptr;
  std::vector<int> panel_aligns_;
  std::vector<PartRef> parts_;                         // parts of one batch, all groups
  std::vector<std::vector<std::int64_t>> first_part_;  // [group][split row] -> index in parts_
  float* partial_ = nullptr;
  std::int64_t slot_ = 0;
};

void check_options(const AttentionOptions& options, const AttentionShape& s) {
  if (options.threads < 0)
    throw UsageError(
        fmt::format("threads = {}: use 0 (all cores) or a positive count", options.threads));
  if (options.split_tiles < 0)
    throw UsageError(fmt::format("split_tiles = {}: use 0 (automatic) or a positive tile count",
                                 options.split_tiles));
  if (options.scale && !std::isfinite(*options.scale))
    throw UsageError(fmt::format("scale = {}: it must be finite", *options.scale));
  check_score_mod(options.mod, s.q_heads, s.nq, s.nk);
}

}  // namespace

AttentionStats attention(const ConstTensorView& q, const ConstTensorView& k,
                         const ConstTensorView& v, const Layout& layout, const TensorView& o,
                         const TensorView& lse, const AttentionOptions& options) {
  const AttentionShape s = check_attention_inputs(q, k, v, layout);
  check_output(o, {s.batch, s.q_heads, s.nq, s.dim_v}, "o");
  check_output(lse, {s.batch, s.q_heads, s.nq, 1}, "lse");
  check_options(options, s);
  Executor ex(q, k, v, layout, o, lse, options, s);
  return ex.run(options.threads);
}

AttentionStats attention(const ConstTensorView& q, const KVView& k, const KVView& v,
                         const Layout& layout, const TensorView& o, const TensorView& lse,
                         const AttentionOptions& options) {
  if (k.dtype == KVDtype::F32 && v.dtype == KVDtype::F32) {
    const ConstTensorView kf{
        static_cast<const float*>(k.data), k.shape, {k.stride[0], k.stride[1], k.stride[2], 1}};
    const ConstTensorView vf{
        static_cast<const float*>(v.data), v.shape, {v.stride[0], v.stride[1], v.stride[2], 1}};
    return attention(q, kf, vf, layout, o, lse, options);
  }
  flash::check_kv_view(k, "k");
  flash::check_kv_view(v, "v");
  const ConstTensorView kp = flash::kv_placeholder_view(k), vp = flash::kv_placeholder_view(v);
  const AttentionShape s = check_attention_inputs(q, kp, vp, layout);
  check_output(o, {s.batch, s.q_heads, s.nq, s.dim_v}, "o");
  check_output(lse, {s.batch, s.q_heads, s.nq, 1}, "lse");
  check_options(options, s);
  Executor ex(q, kp, vp, layout, o, lse, options, s);
  ex.set_narrow(&k, &v);
  return ex.run(options.threads);
}

AttentionResult attention(const ConstTensorView& q, const ConstTensorView& k,
                          const ConstTensorView& v, const Layout& layout,
                          const AttentionOptions& options) {
  const AttentionShape s = check_attention_inputs(q, k, v, layout);
  AttentionResult res;
  res.o = Tensor(s.batch, s.q_heads, s.nq, s.dim_v);
  res.lse = Tensor(s.batch, s.q_heads, s.nq, 1);
  res.stats = attention(q, k, v, layout, res.o.view(), res.lse.view(), options);
  return res;
}

}  // namespace spattn
