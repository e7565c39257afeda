#include "spattn/patterns/block_layout.hpp"

#include <fmt/format.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <map>
#include <unordered_map>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/memory.hpp"
#include "spattn/patterns/layout.hpp"

namespace spattn {

LayoutCounts& LayoutCounts::operator+=(const LayoutCounts& o) {
  allowed_pairs += o.allowed_pairs;
  computed_pairs += o.computed_pairs;
  kept_tiles += o.kept_tiles;
  full_tiles += o.full_tiles;
  partial_tiles += o.partial_tiles;
  bytes += o.bytes;
  return *this;
}

Tile BlockLayout::tile(std::int64_t r, std::int64_t c) const {
  return Tile{r * block_q_, std::min(nq_, (r + 1) * block_q_), c * block_k_,
              std::min(nk_, (c + 1) * block_k_)};
}

bool BlockLayout::allows(std::int64_t i, std::int64_t j) const {
  if (i < 0 || i >= nq_ || j < 0 || j >= nk_) return false;
  const std::int64_t r = i / block_q_, c = j / block_k_;
  const auto begin = col_index_.begin() + row_ptr_[r], end = col_index_.begin() + row_ptr_[r + 1];
  const auto it = std::lower_bound(begin, end, static_cast<std::int32_t>(c));
  if (it == end || *it != c) return false;
  const std::int32_t m = mask_index_[it - col_index_.begin()];
  if (m < 0) return true;
  const std::int64_t row = i - r * block_q_, col = j - c * block_k_;
  return (mask(m)[row * mask_row_words_ + (col >> 6)] >> (col & 63)) & 1u;
}

// Distinct tile masks of mask_words words each, found by content hash: tiles with equal masks
// (the diagonal tiles of a window, the stripes of a stride) share one copy.
class MaskPool {
 public:
  void init(std::int64_t mask_words) { words_ = mask_words; }
  std::int32_t size() const { return static_cast<std::int32_t>(hashes_.size()); }
  const std::uint64_t* mask(std::int32_t m) const { return data_.data() + m * words_; }
  // Index of the mask equal to `bits` (words_ words), adding it if new.
  std::int32_t intern(const std::uint64_t* bits) {
    std::uint64_t h = 0x9e3779b97f4a7c15ull;
    for (std::int64_t k = 0; k < words_; ++k) h = (h ^ bits[k]) * 0xff51afd7ed558ccdull + k;
    auto [lo, hi] = index_.equal_range(h);
    for (auto it = lo; it != hi; ++it)
      if (std::equal(bits, bits + words_, mask(it->second))) return it->second;
    if (hashes_.size() >= static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
      throw BudgetError("a layout has more than 2^31-1 distinct partial tile masks");
    const std::int32_t m = size();
    data_.insert(data_.end(), bits, bits + words_);
    hashes_.push_back(h);
    index_.emplace(h, m);
    return m;
  }
  std::int64_t words() const { return words_; }
  std::vector<std::uint64_t> release() { return std::move(data_); }

 private:
  std::int64_t words_ = 0;
  std::vector<std::uint64_t> data_;
  std::vector<std::uint64_t> hashes_;
  std::unordered_multimap<std::uint64_t, std::int32_t> index_;
};

// Builds one head's layout: rows are processed in fixed chunks (in parallel), each chunk's
// tiles are appended in row order, and chunks are concatenated in order, so the result does not
// depend on how oneTBB schedules the chunks.
class BlockLayoutBuilder {
 public:
  BlockLayoutBuilder(const Pattern& p, const Geometry& g, int head, const BuildOptions& opt)
      : p_(p), g_(g), head_(head), opt_(opt), bounded_(p.bounds_keys()) {
    L_.nq_ = g.nq;
    L_.nk_ = g.nk;
    L_.block_q_ = g.block_q;
    L_.block_k_ = g.block_k;
    L_.mask_row_words_ = words_per_row(g.block_k);
  }

  BlockLayout build() {
    check_scan_limits();
    const std::int64_t q_blocks = g_.q_blocks();
    estimate_memory(q_blocks);
    const std::int64_t n_chunks = (q_blocks + kRowsPerChunk - 1) / kRowsPerChunk;
    // One chunk alone may not outgrow the budget (a single huge row, which the sample skips when
    // there are few rows): it stops at once instead of at its end.
    const auto tile_cap = static_cast<std::size_t>(opt_.max_layout_bytes) / kPeakBytesPerTile;
    std::vector<Chunk> chunks(static_cast<std::size_t>(n_chunks));
    auto run = [&] {
      tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, n_chunks, 1),
                        [&](const tbb::blocked_range<std::int64_t>& rg) {
                          Scratch scratch(L_.mask_words());
                          for (std::int64_t c = rg.begin(); c != rg.end(); ++c) {
                            Chunk& ch = chunks[static_cast<std::size_t>(c)];
                            ch.pool.init(L_.mask_words());
                            const std::int64_t r_end = std::min(q_blocks, (c + 1) * kRowsPerChunk);
                            for (std::int64_t r = c * kRowsPerChunk; r < r_end; ++r)
                              if (!build_row(r, ch, scratch, tile_cap)) over_budget(ch.bytes());
                            charge(ch);
                          }
                        });
    };
    if (opt_.threads > 0) {
      tbb::task_arena arena(opt_.threads);
      arena.execute(run);
    } else {
      run();
    }
    concatenate(chunks, q_blocks);
    return std::move(L_);
  }

 private:
  static constexpr std::int64_t kRowsPerChunk = 32;
  // Peak memory per kept tile: column index and mask index (8 bytes) held once in the chunk being
  // built and once in the final arrays while the chunks are concatenated.
  static constexpr std::size_t kPeakBytesPerTile = 16;

  struct Chunk {
    std::vector<std::int64_t> row_len;
    std::vector<std::int32_t> cols;
    std::vector<std::int32_t> masks_local;  // -1 full, else index into `pool`
    MaskPool pool;
    LayoutCounts counts;
    std::int64_t bytes() const {
      // While building, a kept tile takes 8 bytes in its chunk and 8 more in the final arrays.
      return static_cast<std::int64_t>(cols.size() * kPeakBytesPerTile + row_len.size() * 8) +
             pool.size() * static_cast<std::int64_t>(pool.words()) * 8;
    }
  };
  // Memory per row of tiles whatever it keeps: its row_ptr and row_len entries and its share of
  // a chunk's bookkeeping.
  static constexpr double kBytesPerRow =
      16.0 + static_cast<double>(sizeof(Chunk)) / static_cast<double>(kRowsPerChunk);
  struct Scratch {
    explicit Scratch(std::int64_t mask_words) : packed(static_cast<std::size_t>(mask_words)) {}
    std::vector<KeyRange> ranges, full;
    TileMask mask;
    std::vector<std::uint64_t> packed;
  };

  void check_scan_limits() const {
    if (!p_.analytic_tiles() && !bounded_) {
      const double pairs = static_cast<double>(g_.nq) * static_cast<double>(g_.nk);
      if (pairs > static_cast<double>(opt_.max_scan_pairs))
        throw BudgetError(fmt::format(
            "pattern '{}' has no fast paths (it implements only allows), so building its layout "
            "scans all {:.3g} pairs at {}; the scan limit is {} pairs (BuildOptions::"
            "max_scan_pairs). Implement key_ranges/classify/fill_tile or use a smaller size",
            p_.scanned_part(), pairs, g_.describe(), opt_.max_scan_pairs));
    }
    if (!bounded_) {
      const double tiles = static_cast<double>(g_.q_blocks()) * static_cast<double>(g_.k_blocks());
      if (tiles > static_cast<double>(opt_.max_scan_pairs))
        throw BudgetError(fmt::format(
            "pattern '{}' does not bound its key ranges, so building its layout classifies all "
            "{:.3g} tiles at {}; the limit is {} (BuildOptions::max_scan_pairs)",
            p_.scanned_part(), tiles, g_.describe(), opt_.max_scan_pairs));
    }
  }

  // Refuses up front a layout whose estimated size exceeds the budget: the per-row bookkeeping
  // plus the kept tiles of 16 evenly spaced rows extrapolated to all rows. The sample itself
  // stops as soon as what it has kept already implies an estimate over the budget, so a huge
  // row (causal at 2^40 tokens) costs neither its memory nor its time.
  void estimate_memory(std::int64_t q_blocks) {
    constexpr std::int64_t kSamples = 16;
    const double budget = static_cast<double>(opt_.max_layout_bytes);
    const double row_bytes = static_cast<double>(q_blocks) * kBytesPerRow;
    auto refuse = [&](double estimate, double per_row, std::int64_t rows, bool at_least) {
      throw BudgetError(fmt::format(
          "building the layout of '{}' at {} would take {}about {:.3g} GiB ({:.3g} kept tiles per "
          "row of tiles, estimated from {} rows, and {:.3g} GiB for {} rows of tiles); the layout "
          "memory budget is {:.3g} GiB (BuildOptions::max_layout_bytes). Use a larger block size "
          "or a smaller n",
          p_.spec().substr(0, 80), g_.describe(), at_least ? "at least " : "", estimate / (1 << 30),
          per_row, rows, row_bytes / (1 << 30), q_blocks, budget / (1 << 30)));
    };
    if (row_bytes > budget) refuse(row_bytes, 0, 0, true);
    if (q_blocks <= 4 * kSamples) return;  // small: the running check suffices
    // Kept tiles of the sample beyond which the estimate is over the budget whatever follows.
    const double tiles_left = (budget - row_bytes) / kPeakBytesPerTile;
    const auto cap = static_cast<std::size_t>(
        std::min(tiles_left * kSamples / static_cast<double>(q_blocks), 1e15));
    Chunk sample;
    sample.pool.init(L_.mask_words());
    Scratch scratch(L_.mask_words());
    for (std::int64_t k = 0; k < kSamples; ++k) {
      if (!build_row(k * (q_blocks - 1) / (kSamples - 1), sample, scratch, cap)) {
        const double per_row = static_cast<double>(sample.cols.size()) / kSamples;
        refuse(per_row * static_cast<double>(q_blocks) * kPeakBytesPerTile + row_bytes, per_row,
               k + 1, true);
      }
    }
    const double per_row = static_cast<double>(sample.cols.size()) / kSamples;
    const double estimate = per_row * static_cast<double>(q_blocks) * kPeakBytesPerTile + row_bytes;
    if (estimate > budget) refuse(estimate, per_row, kSamples, false);
  }

  // Running check: the kept tiles built so far must fit the budget.
  void charge(const Chunk& ch) {
    const std::int64_t total = used_.fetch_add(ch.bytes()) + ch.bytes();
    if (total > opt_.max_layout_bytes) over_budget(total);
  }
  [[noreturn]] void over_budget(std::int64_t total) const {
    throw BudgetError(fmt::format(
        "the layout of '{}' at {} exceeded the layout memory budget of {:.3g} GiB after "
        "{:.3g} GiB (BuildOptions::max_layout_bytes). Use a larger block size or a smaller n",
        p_.spec().substr(0, 80), g_.describe(),
        static_cast<double>(opt_.max_layout_bytes) / (1 << 30),
        static_cast<double>(total) / (1 << 30)));
  }

  // Appends query-block row r's kept tiles to `ch`. Returns false, the row unfinished, once `ch`
  // holds more than `max_tiles` kept tiles.
  bool build_row(std::int64_t r, Chunk& ch, Scratch& s,
                 std::size_t max_tiles = std::numeric_limits<std::size_t>::max()) const {
    const std::int64_t q0 = r * g_.block_q, q1 = std::min(g_.nq, q0 + g_.block_q);
    s.ranges.clear();
    if (bounded_ && p_.key_ranges(g_, head_, q0, q1, s.ranges))
      normalize_ranges(s.ranges, g_.nk);
    else
      s.ranges.assign(1, KeyRange{0, g_.nk});
    p_.full_key_ranges(g_, head_, q0, q1, s.full);
    normalize_ranges(s.full, g_.nk);
    std::size_t f = 0;  // first full range that may contain the current tile
    std::int64_t row_len = 0, next_block = 0;
    for (const KeyRange& kr : s.ranges) {
      const std::int64_t b1 = (kr.end - 1) / g_.block_k;
      for (std::int64_t c = std::max(next_block, kr.begin / g_.block_k); c <= b1; ++c) {
        const Tile t = L_.tile(r, c);
        while (f < s.full.size() && s.full[f].end < t.k_end) ++f;
        TileClass cls = f < s.full.size() && s.full[f].begin <= t.k_begin
                            ? TileClass::Full
                            : p_.classify(g_, head_, t);
        if (cls == TileClass::Empty) continue;
        if (cls == TileClass::Partial) {
          s.mask.reset(t.rows(), t.cols(), L_.mask_row_words_);
          p_.fill_tile(g_, head_, t, s.mask);
          const std::int64_t pc = s.mask.popcount();
          if (pc == 0) continue;
          if (pc == t.area()) {
            cls = TileClass::Full;
          } else {
            const std::uint64_t* bits = s.mask.words().data();
            if (t.rows() < g_.block_q) {  // ragged last row of tiles: pad to block_q rows
              std::fill(s.packed.begin(), s.packed.end(), 0);
              std::copy(s.mask.words().begin(), s.mask.words().end(), s.packed.begin());
              bits = s.packed.data();
            }
            ch.masks_local.push_back(ch.pool.intern(bits));
            ++ch.counts.partial_tiles;
            ch.counts.allowed_pairs += pc;
          }
        }
        if (cls == TileClass::Full) {
          ch.masks_local.push_back(-1);
          ++ch.counts.full_tiles;
          ch.counts.allowed_pairs += t.area();
        }
        ch.cols.push_back(static_cast<std::int32_t>(c));
        ch.counts.computed_pairs += t.area();
        ++row_len;
        if (ch.cols.size() > max_tiles) return false;
      }
      next_block = std::max(next_block, b1 + 1);
    }
    ch.row_len.push_back(row_len);
    return true;
  }

  // Concatenates chunks in order; masks equal across chunks are stored once.
  void concatenate(std::vector<Chunk>& chunks, std::int64_t q_blocks) {
    std::int64_t total_tiles = 0;
    for (const Chunk& ch : chunks) {
      total_tiles += static_cast<std::int64_t>(ch.cols.size());
      L_.counts_ += ch.counts;
    }
    L_.row_ptr_.assign(1, 0);
    L_.row_ptr_.reserve(static_cast<std::size_t>(q_blocks + 1));
    L_.col_index_.reserve(static_cast<std::size_t>(total_tiles));
    L_.mask_index_.reserve(static_cast<std::size_t>(total_tiles));
    MaskPool global;
    global.init(L_.mask_words());
    std::vector<std::int32_t> remap;
    for (Chunk& ch : chunks) {
      for (std::int64_t len : ch.row_len) L_.row_ptr_.push_back(L_.row_ptr_.back() + len);
      L_.col_index_.insert(L_.col_index_.end(), ch.cols.begin(), ch.cols.end());
      remap.resize(static_cast<std::size_t>(ch.pool.size()));
      for (std::int32_t m = 0; m < ch.pool.size(); ++m) remap[m] = global.intern(ch.pool.mask(m));
      for (std::int32_t m : ch.masks_local) L_.mask_index_.push_back(m < 0 ? -1 : remap[m]);
      ch = Chunk{};
    }
    L_.masks_ = global.release();
    L_.counts_.kept_tiles = total_tiles;
    L_.counts_.bytes = static_cast<std::int64_t>(
        L_.row_ptr_.size() * sizeof(std::int64_t) + L_.col_index_.size() * sizeof(std::int32_t) +
        L_.mask_index_.size() * sizeof(std::int32_t) + L_.masks_.size() * sizeof(std::uint64_t));
  }

  const Pattern& p_;
  const Geometry& g_;
  const int head_;
  const BuildOptions& opt_;
  const bool bounded_;
  BlockLayout L_;
  std::atomic<std::int64_t> used_{0};
};

BlockLayout build_block_layout(const Pattern& pattern, const Geometry& g, int head,
                               const BuildOptions& opt) {
  g.validate();
  if (head < 0 || head >= g.heads)
    throw UsageError(fmt::format("head {} is out of range: allowed 0..{}", head, g.heads - 1));
  pattern.check(g);
  return BlockLayoutBuilder(pattern, g, head, opt).build();
}

std::int64_t BuildOptions::default_layout_budget() {
  return default_memory_budget();
}

LayoutCounts Layout::counts() const {
  LayoutCounts total;
  for (int h = 0; h < geometry.heads; ++h) {
    LayoutCounts c = head(h).counts();
    c.bytes = 0;
    total += c;
  }
  for (const auto& d : distinct) total.bytes += d->counts().bytes;
  return total;
}

Layout build_layout(const Pattern& pattern, const Geometry& g, const BuildOptions& opt) {
  const auto start = std::chrono::steady_clock::now();
  g.validate();
  pattern.check(g);
  Layout out;
  out.geometry = g;
  out.spec = pattern.spec();
  out.scanned_part = pattern.scanned_part();
  out.scanned = !out.scanned_part.empty();
  std::map<std::string, int> seen;
  std::vector<int> first_head;
  for (int h = 0; h < g.heads; ++h) {
    auto [it, inserted] = seen.emplace(pattern.head_spec(h), static_cast<int>(first_head.size()));
    if (inserted) first_head.push_back(h);
    out.head_to_distinct.push_back(it->second);
  }
  // The budget covers all distinct layouts together: each one gets what the earlier ones left.
  BuildOptions head_opt = opt;
  for (int h : first_head) {
    out.distinct.push_back(
        std::make_shared<const BlockLayout>(BlockLayoutBuilder(pattern, g, h, head_opt).build()));
    head_opt.max_layout_bytes -= out.distinct.back()->counts().bytes;
    pattern.diagonal_cover(g, h, out.diagonals.emplace_back());
  }
  out.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace spattn
