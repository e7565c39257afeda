// ds_fixed(...): DeepSpeed's FixedSparsityConfig (Sparse Transformer "fixed", customized).
//
// With L = num_local_blocks, G = num_global_blocks, nb blocks and E = nb - nb % L:
// - local: block rows are cut into windows of L blocks (the last one may be short); a row keeps
//   the blocks of its window (bidirectional) or those of its window up to itself
//   (unidirectional).
// - global: head class c (h % num_different_global_patterns when different_layout_per_head, else
//   0) uses offset f = L - (1 + c) * G; for every full window starting at w (w + L <= E), key
//   blocks w + f .. w + f + G - 1 are global. When the last window is short (E < nb), one more
//   group of G global blocks starts at min(E + f, nb - G), clipped to the sequence (with fewer
//   than G blocks every block is global, where DeepSpeed's negative slice start would wrap
//   around). A global group [s, s + G) is kept by every row (bidirectional) or by rows >= s
//   (unidirectional: rows s .. s + G - 2 then keep blocks above the diagonal, as DeepSpeed
//   does).
// - horizontal_global_attention (bidirectional only): the rows of every global group keep all
//   blocks.
#include "deepspeed.hpp"

namespace spattn::builtin {
namespace {

class DsFixed final : public ds::DsPattern {
 public:
  DsFixed(ds::Common c, std::int64_t local, std::int64_t global, bool uni, bool horizontal,
          std::int64_t patterns)
      : DsPattern("ds_fixed", c),
        L_(local),
        G_(global),
        uni_(uni),
        horizontal_(horizontal),
        patterns_(patterns) {}

  std::int64_t layout_class(int h) const override { return c_.per_head ? h % patterns_ : 0; }
  bool depends_on_head() const override { return c_.per_head && patterns_ > 1; }

  void row_blocks(int h, std::int64_t nb, std::int64_t r,
                  std::vector<KeyRange>& out) const override {
    const std::int64_t f = L_ - (1 + layout_class(h)) * G_;
    const std::int64_t E = nb - nb % L_;
    const std::int64_t ws = r / L_ * L_;
    out.push_back({ws, uni_ ? r + 1 : std::min(ws + L_, nb)});
    // The extra group of a short last window.
    const bool last = E < nb;
    const std::int64_t last_start = last ? std::min(E + f, nb - G_) : 0;
    if (horizontal_) {
      const bool in_group = r < E && r % L_ >= f && r % L_ < f + G_;
      const bool in_last = last && r >= last_start && r < last_start + G_;
      if (in_group || in_last) {
        out.push_back({0, nb});
        return;
      }
    }
    for (std::int64_t s = f; s < E; s += L_) {
      if (uni_ && s > r) break;
      out.push_back({s, s + G_});
    }
    if (last && (!uni_ || r >= last_start)) out.push_back({last_start, last_start + G_});
  }

  std::string spec() const override {
    std::string s = spec_head();
    if (L_ != 4) s += fmt::format(", num_local_blocks={}", L_);
    if (G_ != 1) s += fmt::format(", num_global_blocks={}", G_);
    if (uni_) s += ", attention=\"unidirectional\"";
    if (horizontal_) s += ", horizontal_global_attention=1";
    if (patterns_ != 1) s += fmt::format(", num_different_global_patterns={}", patterns_);
    return s + ")";
  }

 private:
  std::int64_t L_, G_;
  bool uni_, horizontal_;
  std::int64_t patterns_;
};

PatternPtr make_fixed(const Args& a) {
  const ds::Common c = ds::common_from(a);
  const std::int64_t L = a.get_int("num_local_blocks"), G = a.get_int("num_global_blocks");
  const std::int64_t P = a.get_int("num_different_global_patterns");
  const bool horizontal = a.get_int("horizontal_global_attention") != 0;
  if (L % G != 0)
    throw UsageError(fmt::format(
        "ds_fixed: num_local_blocks = {} must be divisible by num_global_blocks = {}", L, G));
  const bool uni = ds::parse_unidirectional("ds_fixed", a.get_string("attention"));
  if (uni && horizontal)
    throw UsageError(
        "ds_fixed: horizontal_global_attention=1 needs attention=\"bidirectional\" (DeepSpeed "
        "supports horizontal global attention only for bidirectional attention)");
  if (P > 1 && !c.per_head)
    throw UsageError(fmt::format(
        "ds_fixed: num_different_global_patterns = {} needs different_layout_per_head=1 (a "
        "single layout for all heads has one global pattern)",
        P));
  if (P > L / G)
    throw UsageError(
        fmt::format("ds_fixed: num_different_global_patterns = {} exceeds num_local_blocks / "
                    "num_global_blocks = {} / {} = {}",
                    P, L, G, L / G));
  return std::make_shared<DsFixed>(c, L, G, uni, horizontal, P);
}

}  // namespace

void register_ds_fixed(Registry& r) {
  r.add(
      {"ds_fixed",
       {ds::block_param(), ds::num_heads_param(),
        ds::flag_param("different_layout_per_head",
                       "heads get their own layouts (needed for num_different_global_patterns)"),
        int_param("num_local_blocks", 1, "blocks per local window L", 4, false,
                  std::int64_t{1} << 40),
        int_param("num_global_blocks", 1,
                  "global blocks G per window (the window's representatives); L % G == 0", 1, false,
                  std::int64_t{1} << 40),
        ds::attention_param("bidirectional"),
        ds::flag_param("horizontal_global_attention",
                       "global blocks also attend to every block (bidirectional only)"),
        int_param("num_different_global_patterns", 1,
                  "distinct global offsets across heads (<= L / G; > 1 needs "
                  "different_layout_per_head=1)",
                  1, false, std::int64_t{1} << 40)},
       "DeepSpeed FixedSparsityConfig: local windows of L blocks plus G global blocks per "
       "window",
       "cells: same L-block window (and kb <= rb if unidirectional), or kb in a global group "
       "[w + f, w + f + G) of a full window w (f = L - (1 + h % P) * G; rows >= the group's "
       "start if unidirectional), or the extra group at min(E + f, nb - G) (clipped at 0) after a "
       "short last window; with horizontal_global_attention global rows keep every cell",
       "DeepSpeed deepspeed/ops/sparse_attention/sparsity_config.py, FixedSparsityConfig "
       "(whole block x block cells, quirks included)",
       "ds_fixed(block=64, num_local_blocks=4, num_global_blocks=1)",
       make_fixed});
}

}  // namespace spattn::builtin
