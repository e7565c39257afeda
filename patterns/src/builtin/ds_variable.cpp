// ds_variable(...): DeepSpeed's VariableSparsityConfig.
//
// - local: windows of local_window_blocks[0], [1], ... blocks from block 0, then windows of the
//   last size until the end; a row keeps its window (bidirectional) or its window up to itself
//   (unidirectional).
// - global: each global_block_indices[k] (or each range [global_block_indices[k],
//   global_block_end_indices[k]) clipped to the sequence) below nb is kept by every row
//   (bidirectional) or by rows >= its start (unidirectional); with horizontal_global_attention
//   (bidirectional only) its rows keep all blocks.
// - random: min(num_random_blocks, nb) distinct blocks per row drawn from the whole row, for either
//   attention (as DeepSpeed does), from spattn's seeded counter hash of (seed, head, row); the
//   head is 0 unless different_layout_per_head.
#include <algorithm>

#include "deepspeed.hpp"

namespace spattn::builtin {
namespace {

class DsVariable final : public ds::DsPattern {
 public:
  DsVariable(ds::Common c, std::int64_t random, std::vector<std::int64_t> windows,
             std::vector<std::int64_t> starts, std::optional<std::vector<std::int64_t>> ends,
             bool uni, bool horizontal, std::int64_t seed)
      : DsPattern("ds_variable", c),
        random_(random),
        windows_(std::move(windows)),
        starts_(std::move(starts)),
        ends_(std::move(ends)),
        uni_(uni),
        horizontal_(horizontal),
        seed_(seed) {
    std::int64_t s = 0;
    for (std::int64_t w : windows_) {
      window_starts_.push_back(s);
      s += w;
    }
    listed_ = s;
  }

  std::int64_t layout_class(int h) const override { return c_.per_head && random_ > 0 ? h : 0; }
  bool depends_on_head() const override { return c_.per_head && random_ > 0; }

  void row_blocks(int h, std::int64_t nb, std::int64_t r,
                  std::vector<KeyRange>& out) const override {
    // Local window of row r.
    std::int64_t ws, size;
    if (r < listed_) {
      const auto k = static_cast<std::size_t>(
          std::upper_bound(window_starts_.begin(), window_starts_.end(), r) -
          window_starts_.begin() - 1);
      ws = window_starts_[k];
      size = windows_[k];
    } else {
      size = windows_.back();
      ws = listed_ + (r - listed_) / size * size;
    }
    out.push_back({ws, uni_ ? r + 1 : std::min(ws + size, nb)});
    // Global blocks.
    for (std::size_t k = 0; k < starts_.size(); ++k) {
      const std::int64_t s = starts_[k];
      if (s >= nb) continue;
      const std::int64_t e = ends_ ? std::min((*ends_)[k], nb) : s + 1;
      if (horizontal_ && r >= s && r < e) {
        out.push_back({0, nb});
        return;
      }
      if (!uni_ || r >= s) out.push_back({s, e});
    }
    ds::random_blocks(static_cast<std::uint64_t>(seed_), layout_class(h), r, nb, random_, out);
  }

  std::string spec() const override {
    std::string s = spec_head();
    if (random_ != 0) s += fmt::format(", num_random_blocks={}", random_);
    if (windows_ != std::vector<std::int64_t>{4})
      s += fmt::format(", local_window_blocks={}", to_string(ParamValue{windows_}));
    if (starts_ != std::vector<std::int64_t>{0})
      s += fmt::format(", global_block_indices={}", to_string(ParamValue{starts_}));
    if (ends_) s += fmt::format(", global_block_end_indices={}", to_string(ParamValue{*ends_}));
    if (uni_) s += ", attention=\"unidirectional\"";
    if (horizontal_) s += ", horizontal_global_attention=1";
    if (seed_ != 0) s += fmt::format(", seed={}", seed_);
    return s + ")";
  }

 private:
  std::int64_t random_;
  std::vector<std::int64_t> windows_, starts_;
  std::optional<std::vector<std::int64_t>> ends_;
  bool uni_, horizontal_;
  std::int64_t seed_;
  std::vector<std::int64_t> window_starts_;
  std::int64_t listed_ = 0;
};

PatternPtr make_variable(const Args& a) {
  const ds::Common c = ds::common_from(a);
  const std::vector<std::int64_t>& windows = a.get_list("local_window_blocks");
  if (windows.empty())
    throw UsageError("ds_variable: local_window_blocks is empty: give at least one window size");
  if (windows.back() == 0)
    throw UsageError(fmt::format(
        "ds_variable: the last entry of local_window_blocks = {} is 0; it repeats until the end "
        "of the sequence and must be >= 1",
        to_string(ParamValue{windows})));
  const ds::GlobalBlocks global = ds::parse_global_blocks("ds_variable", a);
  const std::vector<std::int64_t>& starts = global.starts;
  const std::optional<std::vector<std::int64_t>>& ends = global.ends;
  const bool uni = ds::parse_unidirectional("ds_variable", a.get_string("attention"));
  const bool horizontal = a.get_int("horizontal_global_attention") != 0;
  if (uni && horizontal)
    throw UsageError(
        "ds_variable: horizontal_global_attention=1 needs attention=\"bidirectional\" (DeepSpeed "
        "supports horizontal global attention only for bidirectional attention)");
  return std::make_shared<DsVariable>(c, a.get_int("num_random_blocks"), windows, starts, ends, uni,
                                      horizontal, a.get_int("seed"));
}

}  // namespace

void register_ds_variable(Registry& r) {
  r.add({"ds_variable",
         {ds::block_param(), ds::num_heads_param(),
          ds::flag_param("different_layout_per_head", "heads draw their own random blocks"),
          int_param("num_random_blocks", 0, "random blocks per block row (from the whole row)", 0,
                    false, 1 << 20),
          ds::int_list_param("local_window_blocks", {4}, true,
                             "sizes of the first local windows in blocks; the last repeats"),
          ds::int_list_param("global_block_indices", {0}, true,
                             "global blocks (or starts of global ranges)"),
          ds::int_list_param("global_block_end_indices", {}, false,
                             "exclusive ends of the global ranges (default: none, single blocks)"),
          ds::attention_param("bidirectional"),
          ds::flag_param("horizontal_global_attention",
                         "global blocks also attend to every block (bidirectional only)"),
          ds::seed_param()},
         "DeepSpeed VariableSparsityConfig: variable local windows, global blocks/ranges, random "
         "blocks",
         "cells: same local window (and kb <= rb if unidirectional), or kb in a global range "
         "below nb (rb >= its start if unidirectional), or rb in a global range with "
         "horizontal_global_attention, or kb one of the row's min(num_random_blocks, nb) random "
         "blocks",
         "DeepSpeed deepspeed/ops/sparse_attention/sparsity_config.py, VariableSparsityConfig "
         "(random blocks from spattn's seeded hash; negative indices are rejected; more random "
         "blocks than the row has, which DeepSpeed refuses, take every block)",
         "ds_variable(block=64, local_window_blocks=[2, 4], global_block_indices=[0, 8])",
         make_variable});
}

}  // namespace spattn::builtin
