// The execution plan of one head layout (plan.hpp).
#include "plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <iterator>
#include <numeric>

#include "spattn/patterns/error.hpp"

namespace spattn {

PathPairs& PathPairs::operator+=(const PathPairs& o) {
  whole += o.whole;
  run += o.run;
  gather += o.gather;
  diagonal += o.diagonal;
  skipped_tiles += o.skipped_tiles;
  diagonal_rows += o.diagonal_rows;
  return *this;
}

PathPairs PathPairs::scaled(std::int64_t copies) const {
  auto mul = [&](std::int64_t x) {
    std::int64_t r = 0;
    if (__builtin_mul_overflow(x, copies, &r))
      throw UsageError(fmt::format("a path's pair count ({} x {}) overflows 64 bits", x, copies));
    return r;
  };
  PathPairs p;
  p.whole = mul(whole);
  p.run = mul(run);
  p.gather = mul(gather);
  p.diagonal = mul(diagonal);
  p.skipped_tiles = mul(skipped_tiles);
  p.diagonal_rows = mul(diagonal_rows);
  return p;
}

namespace flash {
namespace {

// Key columns that some row of a mask keeps.
struct Usage {
  std::int64_t used = 0;  // columns
  int c0 = 0, c1 = -1;    // first and last, inclusive
  std::int64_t bits = 0;  // allowed pairs
};

Usage mask_usage(const std::uint64_t* m, int row_words, int rows) {
  Usage u;
  for (int w = 0; w < row_words; ++w) {
    std::uint64_t any = 0;
    for (int r = 0; r < rows; ++r) {
      any |= m[r * row_words + w];
      u.bits += std::popcount(m[r * row_words + w]);
    }
    if (any == 0) continue;
    u.used += std::popcount(any);
    if (u.c1 < 0) u.c0 = w * 64 + std::countr_zero(any);
    u.c1 = w * 64 + 63 - std::countl_zero(any);
  }
  return u;
}

struct Choice {
  TileAction action = TileAction::Whole;
  std::int64_t pairs = 0;  // computed
  double cost = 0;
  int c0 = 0, c1 = 0;
};

Choice choose(const Usage* u, std::int64_t rows, std::int64_t cols, ExecutionPath path) {
  Choice c;
  c.pairs = rows * cols;
  c.cost = static_cast<double>(c.pairs);
  c.c1 = static_cast<int>(cols) - 1;
  if (u == nullptr || path == ExecutionPath::Tiles) return c;  // Full tile, or v1's path
  const std::int64_t span = u->c1 - u->c0 + 1;
  Choice run{TileAction::Run, rows * span, static_cast<double>(rows * span), u->c0, u->c1};
  Choice gather{TileAction::Gather, rows * u->used,
                kGatherWeight * static_cast<double>(rows * u->used), u->c0, u->c1};
  if (path == ExecutionPath::Gather) return gather;
  Choice best = span == cols ? c : run;
  if (path != ExecutionPath::Runs && gather.cost < best.cost) best = gather;
  const Choice pairs{TileAction::Pairs, u->bits, kPairWeight * static_cast<double>(u->bits), u->c0,
                     u->c1};
  if (path == ExecutionPath::Auto && pairs.cost < best.cost) best = pairs;
  return best;
}

class Planner {
 public:
  // dense_bands: short dense cover runs (step 1) may run on the diagonal path.
  Planner(const BlockLayout& bl, const DiagonalCover& cover, ExecutionPath path, bool dense_bands)
      : bl_(bl), path_(path), shift_(bl.nk() - bl.nq()), words_(bl.mask_row_words()) {
    const bool diagonals_allowed = path == ExecutionPath::Auto ||
                                   path == ExecutionPath::Diagonals ||
                                   path == ExecutionPath::Classes;
    if (diagonals_allowed) {
      DiagonalCover usable, sparse;
      for (const DiagonalRun& r : cover) {
        if (r.empty()) continue;
        if (r.step > 1) {
          sparse.push_back(r);
          step_gcd_ = std::gcd(step_gcd_, r.step);
        }
        if (r.step > 1) {
          usable.push_back(r);
        } else if (r.size() <= kMaxDenseDiagonalRun) {
          has_dense_bands_ = true;
          if (dense_bands) usable.push_back(r);
        }
      }
      offsets_ = cover_offsets(usable);
      sparse_ = cover_offsets(sparse);
      std::set_difference(offsets_.begin(), offsets_.end(), sparse_.begin(), sparse_.end(),
                          std::back_inserter(dense_));
      // One dense run of W offsets can run as a band of 16-query blocks inside the rows, which
      // evaluate 15 + W keys per query for W.
      const auto w = static_cast<std::int64_t>(dense_.size());
      if (path != ExecutionPath::Diagonals && w > 0 && dense_.back() - dense_.front() + 1 == w)
        dense_weight_ = std::min(
            kDiagonalWeight, kBandCost[2] * static_cast<double>(15 + w) / static_cast<double>(w));
      if (!sparse_.empty()) {
        track_ = make_track_plan(sparse_, step_gcd_, shift_);
        // Too many key alignments for the tracks' panels.
        if (track_.aligns.size() > kMaxTrackAlignments) track_ = TrackPlan{};
        if (path != ExecutionPath::Diagonals && step_gcd_ * kMinClassLength <= bl.nq())
          classes_ = make_class_bands(sparse_, step_gcd_);
        if (track_.empty() && classes_.empty()) {  // every diagonal on single vectors
          dense_ = offsets_;
          sparse_.clear();
        }
      }
    }
    usage_.resize(bl.distinct_masks());
    known_.assign(bl.distinct_masks(), 0);
    scratch_.resize(bl.mask_words());
  }

  HeadPlan run() {
    const std::int64_t tiles = bl_.row_ptr().back();
    plan_.action.resize(tiles);
    plan_.c0.resize(tiles);
    plan_.c1.resize(tiles);
    plan_.mask.resize(tiles);
    plan_.row_diagonal.assign(bl_.q_blocks(), 0);
    for (std::int64_t r = 0; r < bl_.q_blocks(); ++r) plan_row(r);
    if (plan_.uses_diagonals()) {
      plan_.offsets = std::move(dense_);
      plan_dense();
      if (!sparse_.empty()) plan_sparse();
    }
    return std::move(plan_);
  }

  // The kernel of the sparse diagonals, the cheapest by pairs evaluated times kernel cost (or
  // the one `path` forces): residue classes, residue tracks, or single vectors.
  bool has_dense_bands() const { return has_dense_bands_; }

  // Items of `base` with 64, 32 and 16 queries (at most max_queries): the one of lowest cost
  // below `best` whose pairs hold at least kMinClassEfficiency `kept` pairs (any, when
  // `forced`) into `out`.
  bool choose_classes(const ClassPlan& base, std::int64_t kept, bool forced, int max_queries,
                      const double (&rate)[3], double& best, std::int64_t& pairs,
                      ClassPlan& out) const {
    constexpr int kQueries[3] = {64, 32, 16};
    bool chosen = false;
    for (int k = 0; k < 3; ++k) {
      if (kQueries[k] > max_queries) continue;
      ClassPlan cp = base;
      set_class_items(cp, kQueries[k], plan_.row_diagonal, bl_.block_q(), bl_.nq(), bl_.nk(),
                      shift_);
      const double cost = rate[k] * static_cast<double>(cp.pairs);
      const bool tight =
          static_cast<double>(kept) >= kMinClassEfficiency * static_cast<double>(cp.pairs);
      if ((forced && !chosen) || (tight && cost < best)) {
        chosen = true;
        best = cost;
        pairs = cp.pairs;
        out = std::move(cp);
      }
    }
    return chosen;
  }

  // The kernel of the short dense bands: single vectors, or, when their offsets are one run,
  // residue classes of step 1 (the band in plain coordinates, by the tile kernel), run inside
  // the rows, so of at most block_q queries.
  void plan_dense() {
    double best = kSingleVectorCost * static_cast<double>(dense_pairs_);
    std::int64_t pairs = dense_pairs_;
    if (path_ != ExecutionPath::Diagonals && !plan_.offsets.empty()) {
      const ClassPlan base = make_class_bands(plan_.offsets, 1);
      if (!base.empty() &&
          choose_classes(base, dense_pairs_, path_ == ExecutionPath::Classes,
                         static_cast<int>(bl_.block_q()), kBandCost, best, pairs, plan_.bands))
        plan_.offsets.clear();
    }
    plan_.pairs.diagonal += pairs;
    plan_.cost += best;
  }

  void plan_sparse() {
    enum class Kernel { Single, Tracks, Classes } kernel = Kernel::Single;
    double best = kSingleVectorCost * static_cast<double>(sparse_pairs_);
    std::int64_t pairs = sparse_pairs_;
    TrackPlan track = std::move(track_);
    std::vector<TrackGroup> groups;
    if (!track.empty()) {
      set_track_members(track, plan_.row_diagonal, bl_.block_q(), bl_.nq());
      groups = track_groups(track);
      // What the track kernel evaluates: 16 lanes per vector pair of a block.
      std::int64_t n = 0;
      for (const TrackGroup& grp : groups)
        for_each_track_block(track, grp, bl_.nq(), bl_.nk(), [&](const TrackBlock& blk) {
          n += std::int64_t{16} * blk.queries * blk.keys;
        });
      if (path_ == ExecutionPath::Diagonals || kTrackCost * static_cast<double>(n) < best) {
        kernel = Kernel::Tracks;
        best = kTrackCost * static_cast<double>(n);
        pairs = n;
      }
    }
    ClassPlan classes;
    if (!classes_.empty() &&
        choose_classes(classes_, sparse_pairs_, path_ == ExecutionPath::Classes, 64, kClassCost,
                       best, pairs, classes))
      kernel = Kernel::Classes;
    plan_.pairs.diagonal += pairs;
    plan_.cost += best;
    if (kernel == Kernel::Tracks) {
      plan_.track = std::move(track);
      plan_.track_groups = std::move(groups);
    } else if (kernel == Kernel::Classes) {
      plan_.classes = std::move(classes);
    } else {
      std::vector<std::int64_t> all;
      std::merge(plan_.offsets.begin(), plan_.offsets.end(), sparse_.begin(), sparse_.end(),
                 std::back_inserter(all));
      plan_.offsets = std::move(all);
    }
  }

 private:
  const Usage& usage(std::int32_t m) {
    if (!known_[m]) {
      usage_[m] = mask_usage(bl_.mask(m), words_, bl_.block_q());
      known_[m] = 1;
    }
    return usage_[m];
  }

  // Valid query lanes times offsets of `offsets` reaching a key, over the row's 16-lane vectors.
  std::int64_t diagonal_pairs(std::int64_t r, const std::vector<std::int64_t>& offsets) const {
    std::int64_t pairs = 0;
    const std::int64_t q_end = std::min(bl_.nq(), (r + 1) * bl_.block_q());
    for (std::int64_t q0 = r * bl_.block_q(); q0 < q_end; q0 += 16) {
      const std::int64_t rows = std::min<std::int64_t>(16, q_end - q0);
      const std::int64_t p = q0 + shift_;
      const auto [a, b] = offset_range(offsets, p - (bl_.nk() - 1), p + rows - 1);
      pairs += rows * (b - a);
    }
    return pairs;
  }

  // Pairs of tile `t` on the usable diagonals.
  std::int64_t covered(const Tile& t, std::int64_t a, std::int64_t b) const {
    const std::int64_t p0 = t.q_begin + shift_, p1 = t.q_end - 1 + shift_;
    std::int64_t n = 0;
    for (std::int64_t k = a; k < b; ++k) {
      const std::int64_t o = offsets_[k];
      n += std::max<std::int64_t>(0,
                                  std::min(p1, t.k_end - 1 + o) - std::max(p0, t.k_begin + o) + 1);
    }
    return n;
  }

  struct Pending {
    Choice choice;
    std::int32_t mask = -1;
    std::int64_t residual = -1;  // index into pending_masks_
  };

  void plan_row(std::int64_t r) {
    const auto rp = bl_.row_ptr();
    const auto cols = bl_.col_index();
    const auto masks = bl_.mask_index();
    base_.clear();
    double cost_tiles = 0;
    for (std::int64_t t = rp[r]; t < rp[r + 1]; ++t) {
      const Tile tile = bl_.tile(r, cols[t]);
      Pending p;
      p.mask = masks[t];
      p.choice =
          choose(masks[t] >= 0 ? &usage(masks[t]) : nullptr, tile.rows(), tile.cols(), path_);
      cost_tiles += p.choice.cost;
      base_.push_back(p);
    }
    bool diagonal = false;
    std::int64_t dpairs = 0, spairs = 0;  // dense-band and sparse diagonal pairs of the row
    if (!offsets_.empty()) {
      dpairs = diagonal_pairs(r, dense_);
      spairs = diagonal_pairs(r, sparse_);
    }
    if (dpairs + spairs > 0) {
      // The tracks' exact count depends on the neighbouring rows; their pairs estimate it.
      double cost =
          dense_weight_ * static_cast<double>(dpairs) + kTrackWeight * static_cast<double>(spairs);
      with_.clear();
      pending_masks_.clear();
      for (std::int64_t t = rp[r]; t < rp[r + 1]; ++t) {
        const Tile tile = bl_.tile(r, cols[t]);
        const std::int64_t p0 = tile.q_begin + shift_, p1 = tile.q_end - 1 + shift_;
        const auto [a, b] = offset_range(offsets_, p0 - (tile.k_end - 1), p1 - tile.k_begin);
        Pending p = base_[t - rp[r]];
        if (a < b) {
          const std::int64_t allowed = masks[t] >= 0 ? usage(masks[t]).bits : tile.area();
          if (covered(tile, a, b) == allowed) {
            p.choice = Choice{TileAction::Skip, 0, 0, 0, 0};
          } else {
            const Usage u = residual_usage(tile, masks[t], a, b);
            p.choice = choose(&u, tile.rows(), tile.cols(),
                              path_ == ExecutionPath::Diagonals ? ExecutionPath::Auto : path_);
            // A residual tile always carries its own mask, even when run whole.
            p.residual = static_cast<std::int64_t>(pending_masks_.size() / scratch_.size());
            pending_masks_.insert(pending_masks_.end(), scratch_.begin(), scratch_.end());
          }
        }
        cost += p.choice.cost;
        with_.push_back(p);
      }
      diagonal =
          path_ == ExecutionPath::Diagonals || path_ == ExecutionPath::Classes || cost < cost_tiles;
    }
    if (diagonal) {
      plan_.row_diagonal[r] = 1;
      dense_pairs_ += dpairs;
      sparse_pairs_ += spairs;
      ++plan_.pairs.diagonal_rows;
      const std::int64_t first = static_cast<std::int64_t>(plan_.residual.size()) /
                                 std::max<std::int64_t>(1, bl_.mask_words());
      plan_.residual.insert(plan_.residual.end(), pending_masks_.begin(), pending_masks_.end());
      for (Pending& p : with_)
        if (p.residual >= 0) p.mask = static_cast<std::int32_t>(-2 - (first + p.residual));
      commit(r, with_);
    } else {
      commit(r, base_);
    }
  }

  // The residual of a tile (its mask, or all pairs, minus the usable diagonals [a, b)) into
  // scratch_, and its usage.
  Usage residual_usage(const Tile& t, std::int32_t m, std::int64_t a, std::int64_t b) {
    const int rows = static_cast<int>(t.rows()), cols = static_cast<int>(t.cols());
    if (m >= 0) {
      std::copy(bl_.mask(m), bl_.mask(m) + bl_.mask_words(), scratch_.begin());
    } else {
      std::fill(scratch_.begin(), scratch_.end(), 0);
      for (int r = 0; r < rows; ++r)
        for (int w = 0; w * 64 < cols; ++w) {
          const int n = std::min(64, cols - w * 64);
          scratch_[r * words_ + w] = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
        }
    }
    for (std::int64_t k = a; k < b; ++k)
      for (int r = 0; r < rows; ++r) {
        const std::int64_t c = t.q_begin + r + shift_ - offsets_[k] - t.k_begin;
        if (c >= 0 && c < cols) scratch_[r * words_ + c / 64] &= ~(std::uint64_t{1} << (c % 64));
      }
    return mask_usage(scratch_.data(), words_, rows);
  }

  void commit(std::int64_t r, const std::vector<Pending>& row) {
    const auto rp = bl_.row_ptr();
    for (std::size_t k = 0; k < row.size(); ++k) {
      const std::int64_t t = rp[r] + static_cast<std::int64_t>(k);
      const Pending& p = row[k];
      plan_.action[t] = p.choice.action;
      plan_.c0[t] = static_cast<std::uint8_t>(p.choice.c0);
      plan_.c1[t] = static_cast<std::uint8_t>(p.choice.c1);
      plan_.mask[t] = p.mask;
      plan_.cost += p.choice.cost * tile_cost(bl_.block_k());
      switch (p.choice.action) {
        case TileAction::Skip:
          ++plan_.pairs.skipped_tiles;
          break;
        case TileAction::Whole:
          plan_.pairs.whole += p.choice.pairs;
          break;
        case TileAction::Run:
          plan_.pairs.run += p.choice.pairs;
          break;
        case TileAction::Gather:
        case TileAction::Pairs:
          plan_.pairs.gather += p.choice.pairs;
          break;
      }
    }
  }

  const BlockLayout& bl_;
  ExecutionPath path_;
  std::int64_t shift_;  // position of query i is i + shift_
  int words_;
  std::vector<std::int64_t> offsets_;  // every usable diagonal: the tiles lose these pairs
  std::vector<std::int64_t> sparse_;   // from runs with step > 1: residue tracks
  std::vector<std::int64_t> dense_;    // the others (short dense bands): vector path
  std::int64_t step_gcd_ = 0;
  double dense_weight_ = kDiagonalWeight;  // per pair of dense_, for choosing a row's path
  TrackPlan track_;    // of sparse_ (members set once the rows are planned), or empty
  ClassPlan classes_;  // the bands of sparse_ (items set once the rows are planned), or empty
  std::int64_t sparse_pairs_ = 0;  // sparse_'s pairs over the rows that run diagonals
  std::int64_t dense_pairs_ = 0;   // dense_'s
  bool has_dense_bands_ = false;   // the cover has short dense runs (usable or not)
  std::vector<Usage> usage_;
  std::vector<std::uint8_t> known_;
  std::vector<std::uint64_t> scratch_;
  std::vector<Pending> base_, with_;
  std::vector<std::uint64_t> pending_masks_;
  HeadPlan plan_;
};

}  // namespace

std::pair<std::int64_t, std::int64_t> offset_range(const std::vector<std::int64_t>& offsets,
                                                   std::int64_t lo, std::int64_t hi) {
  const auto a = std::lower_bound(offsets.begin(), offsets.end(), lo);
  const auto b = std::upper_bound(a, offsets.end(), hi);
  return {a - offsets.begin(), b - offsets.begin()};
}

DiagonalBuffers diagonal_buffers(const std::vector<HeadPlan>& plans) {
  DiagonalBuffers out;
  for (const HeadPlan& p : plans) {
    if (!p.uses_diagonals()) continue;
    out.transposed = out.transposed || !p.offsets.empty();
    if (!p.track_groups.empty())
      out.aligns.insert(out.aligns.end(), p.track.aligns.begin(), p.track.aligns.end());
  }
  std::sort(out.aligns.begin(), out.aligns.end());
  out.aligns.erase(std::unique(out.aligns.begin(), out.aligns.end()), out.aligns.end());
  return out;
}

HeadPlan make_head_plan(const BlockLayout& bl, const DiagonalCover& cover, ExecutionPath path) {
  Planner with(bl, cover, path, true);
  HeadPlan a = with.run();
  if (path != ExecutionPath::Auto || !with.has_dense_bands()) return a;
  // Short dense bands (a local window next to strided diagonals) may be cheaper on the tiles,
  // if that keeps the efficiency (allowed / evaluated pairs) at kMinPlanEfficiency.
  HeadPlan b = Planner(bl, cover, path, false).run();
  const double allowed = static_cast<double>(bl.counts().allowed_pairs);
  const bool b_tight = allowed >= kMinPlanEfficiency * static_cast<double>(b.pairs.total());
  return b_tight && b.cost < a.cost ? std::move(b) : std::move(a);
}

std::vector<HeadPlan> make_layout_plans(const Layout& layout, ExecutionPath path) {
  std::vector<HeadPlan> plans;
  for (std::size_t u = 0; u < layout.distinct.size(); ++u)
    plans.push_back(
        make_head_plan(*layout.distinct[u],
                       u < layout.diagonals.size() ? layout.diagonals[u] : DiagonalCover{}, path));
  return plans;
}

}  // namespace flash
}  // namespace spattn
