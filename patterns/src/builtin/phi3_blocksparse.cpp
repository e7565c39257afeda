// phi3_blocksparse(local_blocks, vert_stride, ...): vLLM's local + vertical-stride block-sparse
// attention (Phi-3-small).
#include "leaf.hpp"
#include "spattn/patterns/local_columns.hpp"

namespace spattn::builtin {
namespace {

constexpr std::int64_t kDefaultBlockSize = 64;

class Phi3BlockSparse final : public CausalLocalColumns {
 public:
  // step < 0: head_sliding_step derived from the geometry's head count, as vLLM does.
  Phi3BlockSparse(std::int64_t local_blocks, std::int64_t vert_stride, std::int64_t block_size,
                  bool homo_head, std::int64_t step)
      : local_(local_blocks), stride_(vert_stride), b_(block_size), homo_(homo_head), step_(step) {}
  // Key blocks kb with qb - kb < local_blocks, qb = floor(p / block_size).
  std::int64_t local_lo(std::int64_t p) const override {
    return (floor_div(p, b_) - local_ + 1) * b_;
  }
  // Vertical key blocks kb with (kb + h * step + 1) mod vert_stride == 0.
  ColumnSet columns(const Geometry& g, int head) const override {
    const std::int64_t residue = floor_mod(-1 - offset(g, head), stride_);
    return {stride_ * b_, residue * b_, b_};
  }
  std::string spec() const override {
    std::string s = fmt::format("phi3_blocksparse({}, {}", local_, stride_);
    if (b_ != kDefaultBlockSize) s += fmt::format(", block_size={}", b_);
    if (homo_) s += ", homo_head=1";
    if (step_ >= 0) s += fmt::format(", head_sliding_step={}", step_);
    return s + ")";
  }
  bool depends_on_head() const override { return !homo_; }
  // With an explicit step, heads whose offsets agree modulo vert_stride share one layout; a
  // derived step depends on the head count, which head_spec does not see.
  std::string head_spec(int head) const override {
    if (homo_) return spec();
    if (step_ >= 0) return fmt::format("{}@{}", spec(), floor_mod(head * step_, stride_));
    return fmt::format("{}@{}", spec(), head);
  }

 private:
  // vllm/attention/ops/blocksparse_attention/utils.py get_head_sliding_step:
  // 0 if homo_head else max(1, int(vert_stride / n_heads)).
  std::int64_t offset(const Geometry& g, int head) const {
    if (homo_) return 0;
    const std::int64_t step = step_ >= 0 ? step_ : std::max<std::int64_t>(1, stride_ / g.heads);
    return head * step;
  }
  std::int64_t local_, stride_, b_;
  bool homo_;
  std::int64_t step_;
};

}  // namespace

void register_phi3_blocksparse(Registry& r) {
  r.add({"phi3_blocksparse",
         {int_param("local_blocks", 1, "local key blocks per query block, its own included",
                    std::nullopt, true, std::int64_t{1} << 20),
          int_param("vert_stride", 1, "every vert_stride-th key block is attended (vertical)",
                    std::nullopt, true, std::int64_t{1} << 20),
          int_param("block_size", 1, "block size in tokens", kDefaultBlockSize, false,
                    std::int64_t{1} << 20),
          bool_param("homo_head", "every head uses the same vertical blocks"),
          int_param("head_sliding_step", 0,
                    "shift of the vertical blocks per head (default: max(1, vert_stride / "
                    "heads), as vLLM's get_head_sliding_step)",
                    std::nullopt, false, std::int64_t{1} << 20)},
         "Phi-3-small block-sparse attention: local key blocks plus every vert_stride-th key "
         "block, shifted per head, causal at token level",
         "qb = floor(p(i) / B), kb = floor(j / B): j <= p(i) and (qb - kb < local_blocks or "
         "(kb + h * step + 1) mod vert_stride == 0); step = 0 if homo_head else "
         "head_sliding_step (default max(1, floor(vert_stride / heads))), h = head",
         "vLLM vllm/attention/ops/blocksparse_attention/utils.py get_sparse_attn_mask "
         "(_get_sparse_attn_mask_homo_head when homo_head) with return_dense: the block mask "
         "times the token-level causal tril, queries bottom-right aligned; used by "
         "interface.py LocalStridedBlockSparseAttn (Phi-3-small), heads indexed before "
         "active_head_range slicing",
         "phi3_blocksparse(16, 8)",
         [](const Args& a) -> PatternPtr {
           const bool homo = a.get_int("homo_head") != 0;
           if (homo && a.has("head_sliding_step"))
             throw UsageError(
                 "phi3_blocksparse: head_sliding_step has no effect with homo_head=1 (every "
                 "head then uses step 0); give one or the other");
           return std::make_shared<Phi3BlockSparse>(
               a.get_int("local_blocks"), a.get_int("vert_stride"), a.get_int("block_size"), homo,
               a.has("head_sliding_step") ? a.get_int("head_sliding_step") : -1);
         }});
}

}  // namespace spattn::builtin
