// ds_dense(block=16): DeepSpeed's DenseSparsityConfig: every block kept.
#include "deepspeed.hpp"

namespace spattn::builtin {
namespace {

class DsDense final : public ds::DsPattern {
 public:
  explicit DsDense(ds::Common c) : DsPattern("ds_dense", c) {}
  void row_blocks(int, std::int64_t nb, std::int64_t, std::vector<KeyRange>& out) const override {
    out.push_back({0, nb});
  }
  std::string spec() const override { return spec_head() + ")"; }
};

}  // namespace

void register_ds_dense(Registry& r) {
  r.add({"ds_dense",
         {ds::block_param(), ds::num_heads_param(),
          ds::flag_param("different_layout_per_head",
                         "accepted for DeepSpeed compatibility; "
                         "no effect")},
         "DeepSpeed DenseSparsityConfig: every block kept (a dense layout)",
         "every pair (i, j); nq = nk must be a multiple of block",
         "DeepSpeed deepspeed/ops/sparse_attention/sparsity_config.py, DenseSparsityConfig",
         "ds_dense(block=16)",
         [](const Args& a) { return std::make_shared<DsDense>(ds::common_from(a)); }});
}

}  // namespace spattn::builtin
