#include "spattn/patterns/block_layout.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "spattn/patterns/error.hpp"
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
  static BlockLayout build(const Pattern& p, const Geometry& g, int head, const BuildOptions& opt) {
    const bool bounded = p.bounds_keys();
    const bool analytic = p.analytic_tiles();
    if (!analytic && !bounded) {
      const double pairs = static_cast<double>(g.nq) * static_cast<double>(g.nk);
      if (pairs > static_cast<double>(opt.max_scan_pairs))
        throw BudgetError(fmt::format(
            "pattern '{}' has no fast paths (it implements only allows), so building its layout "
            "scans all {:.3g} pairs at {}; the scan limit is {} pairs (BuildOptions::"
            "max_scan_pairs). Implement key_ranges/classify/fill_tile or use a smaller size",
            p.scanned_part(), pairs, g.describe(), opt.max_scan_pairs));
    }
    if (!bounded) {
      const double tiles = static_cast<double>(g.q_blocks()) * static_cast<double>(g.k_blocks());
      if (tiles > static_cast<double>(opt.max_scan_pairs))
        throw BudgetError(fmt::format(
            "pattern '{}' does not bound its key ranges, so building its layout classifies all "
            "{:.3g} tiles at {}; the limit is {} (BuildOptions::max_scan_pairs)",
            p.scanned_part(), tiles, g.describe(), opt.max_scan_pairs));
    }

    BlockLayout L;
    L.nq_ = g.nq;
    L.nk_ = g.nk;
    L.block_q_ = g.block_q;
    L.block_k_ = g.block_k;
    L.mask_row_words_ = words_per_row(g.block_k);
    const std::int64_t q_blocks = g.q_blocks();
    const std::int64_t mask_words = L.mask_words();

    struct Chunk {
      std::vector<std::int64_t> row_len;
      std::vector<std::int32_t> cols;
      std::vector<std::int32_t> masks_local;  // -1 full, else index into `pool`
      MaskPool pool;
      LayoutCounts counts;
    };
    constexpr std::int64_t kRowsPerChunk = 32;
    const std::int64_t n_chunks = (q_blocks + kRowsPerChunk - 1) / kRowsPerChunk;
    std::vector<Chunk> chunks(static_cast<std::size_t>(n_chunks));
    for (Chunk& ch : chunks) ch.pool.init(mask_words);

    auto process = [&](std::int64_t chunk_id) {
      Chunk& ch = chunks[static_cast<std::size_t>(chunk_id)];
      std::vector<KeyRange> ranges;
      TileMask mask;
      std::vector<std::uint64_t> packed(static_cast<std::size_t>(mask_words));
      const std::int64_t r_end = std::min(q_blocks, (chunk_id + 1) * kRowsPerChunk);
      ch.cols.reserve(static_cast<std::size_t>(kRowsPerChunk) * 8);
      ch.masks_local.reserve(static_cast<std::size_t>(kRowsPerChunk) * 8);
      for (std::int64_t r = chunk_id * kRowsPerChunk; r < r_end; ++r) {
        const std::int64_t q0 = r * g.block_q, q1 = std::min(g.nq, q0 + g.block_q);
        ranges.clear();
        if (bounded && p.key_ranges(g, head, q0, q1, ranges))
          normalize_ranges(ranges, g.nk);
        else
          ranges.assign(1, KeyRange{0, g.nk});
        std::int64_t row_len = 0, next_block = 0;
        for (const KeyRange& kr : ranges) {
          const std::int64_t b1 = (kr.end - 1) / g.block_k;
          for (std::int64_t c = std::max(next_block, kr.begin / g.block_k); c <= b1; ++c) {
            const Tile t = L.tile(r, c);
            TileClass cls = p.classify(g, head, t);
            if (cls == TileClass::Empty) continue;
            if (cls == TileClass::Partial) {
              mask.reset(t.rows(), t.cols(), L.mask_row_words_);
              p.fill_tile(g, head, t, mask);
              const std::int64_t pc = mask.popcount();
              if (pc == 0) continue;
              if (pc == t.area()) {
                cls = TileClass::Full;
              } else {
                const std::uint64_t* bits = mask.words().data();
                if (t.rows() < g.block_q) {  // ragged last row of tiles: pad to block_q rows
                  std::fill(packed.begin(), packed.end(), 0);
                  std::copy(mask.words().begin(), mask.words().end(), packed.begin());
                  bits = packed.data();
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
          }
          next_block = std::max(next_block, b1 + 1);
        }
        ch.row_len.push_back(row_len);
      }
    };

    auto run = [&] {
      tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, n_chunks, 1),
                        [&](const tbb::blocked_range<std::int64_t>& rg) {
                          for (std::int64_t c = rg.begin(); c != rg.end(); ++c) process(c);
                        });
    };
    if (opt.threads > 0) {
      tbb::task_arena arena(opt.threads);
      arena.execute(run);
    } else {
      run();
    }

    // Concatenate chunks in order; masks equal across chunks are stored once.
    std::int64_t total_tiles = 0;
    for (const Chunk& ch : chunks) {
      total_tiles += static_cast<std::int64_t>(ch.cols.size());
      L.counts_ += ch.counts;
    }
    L.row_ptr_.assign(1, 0);
    L.row_ptr_.reserve(static_cast<std::size_t>(q_blocks + 1));
    L.col_index_.reserve(static_cast<std::size_t>(total_tiles));
    L.mask_index_.reserve(static_cast<std::size_t>(total_tiles));
    MaskPool global;
    global.init(mask_words);
    std::vector<std::int32_t> remap;
    for (Chunk& ch : chunks) {
      for (std::int64_t len : ch.row_len) L.row_ptr_.push_back(L.row_ptr_.back() + len);
      L.col_index_.insert(L.col_index_.end(), ch.cols.begin(), ch.cols.end());
      remap.resize(static_cast<std::size_t>(ch.pool.size()));
      for (std::int32_t m = 0; m < ch.pool.size(); ++m) remap[m] = global.intern(ch.pool.mask(m));
      for (std::int32_t m : ch.masks_local) L.mask_index_.push_back(m < 0 ? -1 : remap[m]);
      ch = Chunk{};
    }
    L.masks_ = global.release();
    L.counts_.kept_tiles = total_tiles;
    L.counts_.bytes = static_cast<std::int64_t>(
        L.row_ptr_.size() * sizeof(std::int64_t) + L.col_index_.size() * sizeof(std::int32_t) +
        L.mask_index_.size() * sizeof(std::int32_t) + L.masks_.size() * sizeof(std::uint64_t));
    return L;
  }
};

BlockLayout build_block_layout(const Pattern& pattern, const Geometry& g, int head,
                               const BuildOptions& opt) {
  g.validate();
  if (head < 0 || head >= g.heads)
    throw UsageError(fmt::format("head {} is out of range: allowed 0..{}", head, g.heads - 1));
  pattern.check(g);
  return BlockLayoutBuilder::build(pattern, g, head, opt);
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
  for (int h : first_head)
    out.distinct.push_back(
        std::make_shared<const BlockLayout>(BlockLayoutBuilder::build(pattern, g, h, opt)));
  out.build_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace spattn
