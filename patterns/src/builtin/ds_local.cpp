// ds_local(block=16, num_sliding_window_blocks=3, attention="unidirectional"): DeepSpeed's
// LocalSlidingWindowSparsityConfig. With w = num_sliding_window_blocks / 2, block row r keeps
// key blocks max(0, r - w) .. r ("unidirectional": w + 1 blocks, not a window of
// num_sliding_window_blocks) or max(0, r - w) .. min(r + w, nb - 1) ("bidirectional").
#include "deepspeed.hpp"

namespace spattn::builtin {
namespace {

class DsLocal final : public ds::DsPattern {
 public:
  DsLocal(ds::Common c, std::int64_t window, bool uni)
      : DsPattern("ds_local", c), window_(window), uni_(uni) {}
  void row_blocks(int, std::int64_t nb, std::int64_t r, std::vector<KeyRange>& out) const override {
    const std::int64_t w = window_ / 2;
    out.push_back({std::max<std::int64_t>(0, r - w), uni_ ? r + 1 : std::min(r + w + 1, nb)});
  }
  std::string spec() const override {
    std::string s = spec_head();
    if (window_ != 3) s += fmt::format(", num_sliding_window_blocks={}", window_);
    if (!uni_) s += ", attention=\"bidirectional\"";
    return s + ")";
  }

 private:
  std::int64_t window_;
  bool uni_;
};

}  // namespace

void register_ds_local(Registry& r) {
  r.add({"ds_local",
         {ds::block_param(), ds::num_heads_param(),
          int_param("num_sliding_window_blocks", 0,
                    "window size in blocks; the window reaches w = num_sliding_window_blocks / 2 "
                    "blocks back (and forward when bidirectional)",
                    3, false, std::int64_t{1} << 40),
          ds::attention_param("unidirectional")},
         "DeepSpeed LocalSlidingWindowSparsityConfig: a block-level sliding window",
         "w = num_sliding_window_blocks / 2 (floor), rb = floor(i / block), kb = floor(j / block): "
         "rb - w <= kb <= rb (unidirectional) or |rb - kb| <= w (bidirectional); whole cells",
         "DeepSpeed deepspeed/ops/sparse_attention/sparsity_config.py, "
         "LocalSlidingWindowSparsityConfig (no different_layout_per_head; attention other than "
         "the two values is rejected, where DeepSpeed treats it as unidirectional; a window wider "
         "than the sequence, which DeepSpeed refuses, reaches as far as there are blocks)",
         "ds_local(block=64, num_sliding_window_blocks=5)",
         [](const Args& a) {
           return std::make_shared<DsLocal>(
               ds::common_from(a), a.get_int("num_sliding_window_blocks"),
               ds::parse_unidirectional("ds_local", a.get_string("attention")));
         }});
}

}  // namespace spattn::builtin
