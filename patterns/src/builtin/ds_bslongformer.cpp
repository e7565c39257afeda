// ds_bslongformer(...): DeepSpeed's BSLongformerSparsityConfig (block-sparse Longformer).
//
// With w = num_sliding_window_blocks / 2, block row r keeps max(0, r - w) .. min(r + w, nb - 1);
// each global_block_indices[k] (or range [global_block_indices[k], global_block_end_indices[k])
// clipped to the sequence) below nb is kept by every row and its rows keep every block;
// unidirectional then drops every block above the diagonal (DeepSpeed's torch.tril), leaving
// a window of w + 1 blocks.
#include "deepspeed.hpp"

namespace spattn::builtin {
namespace {

class DsBSLongformer final : public ds::DsPattern {
 public:
  DsBSLongformer(ds::Common c, std::int64_t window, std::vector<std::int64_t> starts,
                 std::optional<std::vector<std::int64_t>> ends, bool uni)
      : DsPattern("ds_bslongformer", c),
        window_(window),
        starts_(std::move(starts)),
        ends_(std::move(ends)),
        uni_(uni) {}

  void row_blocks(int, std::int64_t nb, std::int64_t r, std::vector<KeyRange>& out) const override {
    const std::int64_t w = window_ / 2;
    out.push_back({std::max<std::int64_t>(0, r - w), std::min(r + w + 1, nb)});
    for (std::size_t k = 0; k < starts_.size(); ++k) {
      const std::int64_t s = starts_[k];
      if (s >= nb) continue;
      const std::int64_t e = ends_ ? std::min((*ends_)[k], nb) : s + 1;
      if (r >= s && r < e) {
        out.push_back({0, nb});
        break;
      }
      out.push_back({s, e});
    }
    if (uni_)
      for (KeyRange& k : out) k.end = std::min(k.end, r + 1);
  }

  std::string spec() const override {
    std::string s = spec_head();
    if (window_ != 3) s += fmt::format(", num_sliding_window_blocks={}", window_);
    if (starts_ != std::vector<std::int64_t>{0})
      s += fmt::format(", global_block_indices={}", to_string(ParamValue{starts_}));
    if (ends_) s += fmt::format(", global_block_end_indices={}", to_string(ParamValue{*ends_}));
    if (uni_) s += ", attention=\"unidirectional\"";
    return s + ")";
  }

 private:
  std::int64_t window_;
  std::vector<std::int64_t> starts_;
  std::optional<std::vector<std::int64_t>> ends_;
  bool uni_;
};

PatternPtr make_bslongformer(const Args& a) {
  const ds::GlobalBlocks global = ds::parse_global_blocks("ds_bslongformer", a);
  const std::vector<std::int64_t>& starts = global.starts;
  const std::optional<std::vector<std::int64_t>>& ends = global.ends;
  const bool uni = ds::parse_unidirectional("ds_bslongformer", a.get_string("attention"));
  return std::make_shared<DsBSLongformer>(
      ds::common_from(a), a.get_int("num_sliding_window_blocks"), starts, ends, uni);
}

}  // namespace

void register_ds_bslongformer(Registry& r) {
  r.add({"ds_bslongformer",
         {ds::block_param(), ds::num_heads_param(),
          ds::flag_param("different_layout_per_head",
                         "accepted for DeepSpeed compatibility (the layout is the same on every "
                         "head)"),
          int_param("num_sliding_window_blocks", 0,
                    "sliding window in blocks; reaches w = num_sliding_window_blocks / 2 blocks "
                    "each way",
                    3, false, std::int64_t{1} << 40),
          ds::int_list_param("global_block_indices", {0}, true,
                             "global blocks (or starts of global ranges)"),
          ds::int_list_param("global_block_end_indices", {}, false,
                             "exclusive ends of the global ranges (default: none, single blocks)"),
          ds::attention_param("bidirectional")},
         "DeepSpeed BSLongformerSparsityConfig: block sliding window plus global blocks/ranges",
         "w = num_sliding_window_blocks / 2: cells with |rb - kb| <= w, or kb or rb in a global "
         "range below nb; unidirectional keeps only kb <= rb",
         "DeepSpeed deepspeed/ops/sparse_attention/sparsity_config.py, "
         "BSLongformerSparsityConfig (attention other than the two values and negative indices "
         "are rejected; a window wider than the sequence, which DeepSpeed refuses, reaches as "
         "far as there are blocks)",
         "ds_bslongformer(block=64, num_sliding_window_blocks=5, global_block_indices=[0])",
         make_bslongformer});
}

}  // namespace spattn::builtin
