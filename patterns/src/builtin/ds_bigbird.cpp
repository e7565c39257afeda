// ds_bigbird(...): DeepSpeed's BigBirdSparsityConfig.
//
// With w = num_sliding_window_blocks / 2 and G = num_global_blocks, block row r keeps
// max(0, r - w) .. min(r + w, nb - 1), blocks 0 .. min(G, nb) - 1, every block if r < G, and
// min(num_random_blocks, C) random blocks drawn from the C blocks 0 .. nb - 1 (bidirectional)
// or 0 .. r (unidirectional); unidirectional then drops every block above the diagonal
// (DeepSpeed's torch.tril over the whole layout). Counts beyond the blocks there are cover all
// of them (DeepSpeed raises instead). Random blocks come from spattn's seeded counter hash of
// (seed, head, row); the head is 0 unless different_layout_per_head.
#include "deepspeed.hpp"

namespace spattn::builtin {
namespace {

class DsBigBird final : public ds::DsPattern {
 public:
  DsBigBird(ds::Common c, std::int64_t random, std::int64_t window, std::int64_t global, bool uni,
            std::int64_t seed)
      : DsPattern("ds_bigbird", c),
        random_(random),
        window_(window),
        global_(global),
        uni_(uni),
        seed_(seed) {}

  std::int64_t layout_class(int h) const override { return c_.per_head && random_ > 0 ? h : 0; }
  bool depends_on_head() const override { return c_.per_head && random_ > 0; }

  void row_blocks(int h, std::int64_t nb, std::int64_t r,
                  std::vector<KeyRange>& out) const override {
    const std::int64_t w = window_ / 2;
    out.push_back({std::max<std::int64_t>(0, r - w), std::min(r + w + 1, nb)});
    if (r < global_) out.push_back({0, nb});
    out.push_back({0, global_});
    ds::random_blocks(static_cast<std::uint64_t>(seed_), layout_class(h), r, uni_ ? r + 1 : nb,
                      random_, out);
    if (uni_)
      for (KeyRange& k : out) k.end = std::min(k.end, r + 1);
  }

  std::string spec() const override {
    std::string s = spec_head();
    if (random_ != 1) s += fmt::format(", num_random_blocks={}", random_);
    if (window_ != 3) s += fmt::format(", num_sliding_window_blocks={}", window_);
    if (global_ != 1) s += fmt::format(", num_global_blocks={}", global_);
    if (uni_) s += ", attention=\"unidirectional\"";
    if (seed_ != 0) s += fmt::format(", seed={}", seed_);
    return s + ")";
  }

 private:
  std::int64_t random_, window_, global_;
  bool uni_;
  std::int64_t seed_;
};

PatternPtr make_bigbird(const Args& a) {
  const std::int64_t random = a.get_int("num_random_blocks");
  const bool uni = ds::parse_unidirectional("ds_bigbird", a.get_string("attention"));
  return std::make_shared<DsBigBird>(ds::common_from(a), random,
                                     a.get_int("num_sliding_window_blocks"),
                                     a.get_int("num_global_blocks"), uni, a.get_int("seed"));
}

}  // namespace

void register_ds_bigbird(Registry& r) {
  r.add({"ds_bigbird",
         {ds::block_param(), ds::num_heads_param(),
          ds::flag_param("different_layout_per_head", "heads draw their own random blocks"),
          int_param("num_random_blocks", 0, "random blocks per block row", 1, false, 1 << 20),
          int_param("num_sliding_window_blocks", 0,
                    "sliding window in blocks; reaches w = num_sliding_window_blocks / 2 blocks "
                    "each way",
                    3, false, std::int64_t{1} << 40),
          int_param("num_global_blocks", 0, "leading global blocks (rows and columns)", 1, false,
                    std::int64_t{1} << 40),
          ds::attention_param("bidirectional"), ds::seed_param()},
         "DeepSpeed BigBirdSparsityConfig: block sliding window, leading global blocks, random "
         "blocks",
         "w = num_sliding_window_blocks / 2: cells with |rb - kb| <= w, or kb < G, or rb < G, or "
         "kb one of the row's min(num_random_blocks, C) random blocks (C = nb, or rb + 1 if "
         "unidirectional); unidirectional keeps only kb <= rb",
         "DeepSpeed deepspeed/ops/sparse_attention/sparsity_config.py, BigBirdSparsityConfig "
         "(random blocks from spattn's seeded hash; counts beyond the sequence's blocks, which "
         "DeepSpeed refuses, cover every block)",
         "ds_bigbird(block=64, num_random_blocks=2, num_sliding_window_blocks=3)",
         make_bigbird});
}

}  // namespace spattn::builtin
