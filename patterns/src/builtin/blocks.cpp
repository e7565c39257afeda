// blocks(file=PATH, block=b): an explicit block layout from a .npy of shape
// [heads or 1, q_blocks, k_blocks], or [q_blocks, k_blocks] for one layout on every head; pair
// (i, j) is allowed when cell [h, i/b, j/b] is nonzero.
#include <algorithm>

#include "leaf.hpp"
#include "spattn/patterns/io/npy.hpp"

namespace spattn::builtin {
namespace {

class Blocks final : public Leaf {
 public:
  Blocks(std::string file, std::int64_t b) : file_(std::move(file)), b_(b) {
    const NpyArray a = read_npy(file_);
    shape_ = a.shape;
    if (shape_.size() != 2 && shape_.size() != 3)
      throw UsageError(fmt::format(
          "blocks: {} has shape {} (rank {}); expected [q_blocks, k_blocks] (one layout for every "
          "head) or [heads or 1, q_blocks, k_blocks]",
          file_, shape_text(), shape_.size()));
    heads_ = shape_.size() == 3 ? shape_[0] : 1;
    qb_ = shape_[shape_.size() - 2];
    kb_ = shape_.back();
    if (heads_ < 1 || qb_ < 1 || kb_ < 1)
      throw UsageError(
          fmt::format("blocks: {} has an empty dimension in shape {}", file_, shape_text()));
    // CSR of kept key blocks per (head, query block row).
    row_ptr_.reserve(static_cast<std::size_t>(heads_ * qb_ + 1));
    row_ptr_.push_back(0);
    for (std::int64_t hr = 0; hr < heads_ * qb_; ++hr) {
      for (std::int64_t c = 0; c < kb_; ++c)
        if (a.at(hr * kb_ + c) != 0) cols_.push_back(c);
      row_ptr_.push_back(static_cast<std::int64_t>(cols_.size()));
    }
  }
  bool allows(const Geometry&, int h, std::int64_t i, std::int64_t j) const override {
    const auto [b, e] = row(h, i / b_);
    return std::binary_search(b, e, j / b_);
  }
  std::string spec() const override {
    return fmt::format("blocks(file={}, block={})", to_string(ParamValue{file_}), b_);
  }
  bool depends_on_head() const override { return heads_ > 1; }
  void check(const Geometry& g) const override {
    const std::int64_t want_q = (g.nq + b_ - 1) / b_, want_k = (g.nk + b_ - 1) / b_;
    if (qb_ != want_q || kb_ != want_k || (heads_ != 1 && heads_ != g.heads))
      throw UsageError(fmt::format(
          "blocks: {} has shape {}, but nq = {}, nk = {}, heads = {} with block = {} need [{}, "
          "{}] or [1 or {}, {}, {}]",
          file_, shape_text(), g.nq, g.nk, g.heads, b_, want_q, want_k, g.heads, want_q, want_k));
  }
  bool key_ranges(const Geometry&, int h, std::int64_t q0, std::int64_t q1,
                  std::vector<KeyRange>& out) const override {
    out.clear();
    for (std::int64_t r = q0 / b_; r <= (q1 - 1) / b_; ++r) {
      const auto [b, e] = row(h, r);
      for (auto it = b; it != e; ++it) out.push_back({*it * b_, *it * b_ + b_});
    }
    return true;
  }
  TileClass classify(const Geometry&, int h, const Tile& t) const override {
    const std::int64_t c0 = t.k_begin / b_, c1 = (t.k_end - 1) / b_;
    bool any = false, all = true;
    for (std::int64_t r = t.q_begin / b_; r <= (t.q_end - 1) / b_; ++r) {
      const auto [b, e] = row(h, r);
      const auto n = std::upper_bound(b, e, c1) - std::lower_bound(b, e, c0);
      any = any || n > 0;
      all = all && n == c1 - c0 + 1;
    }
    return !any ? TileClass::Empty : all ? TileClass::Full : TileClass::Partial;
  }
  void fill_tile(const Geometry&, int h, const Tile& t, TileMask& m) const override {
    const std::int64_t c0 = t.k_begin / b_, c1 = (t.k_end - 1) / b_;
    for (std::int64_t r = 0; r < t.rows(); ++r) {
      const auto [b, e] = row(h, (t.q_begin + r) / b_);
      for (auto it = std::lower_bound(b, e, c0); it != e && *it <= c1; ++it)
        m.set_range(r, *it * b_ - t.k_begin, *it * b_ + b_ - t.k_begin);
    }
  }

 private:
  using It = std::vector<std::int64_t>::const_iterator;
  std::string shape_text() const { return fmt::format("[{}]", fmt::join(shape_, ", ")); }
  std::pair<It, It> row(int h, std::int64_t r) const {
    const std::int64_t hr = (heads_ == 1 ? 0 : h) * qb_ + r;
    return {cols_.begin() + row_ptr_[hr], cols_.begin() + row_ptr_[hr + 1]};
  }
  std::string file_;
  std::int64_t b_, heads_ = 0, qb_ = 0, kb_ = 0;
  std::vector<std::int64_t> shape_;  // as in the file
  std::vector<std::int64_t> row_ptr_, cols_;
};

}  // namespace

void register_blocks(Registry& r) {
  r.add({"blocks",
         {string_param("file",
                       ".npy path, any integer/bool/float dtype, shape [q_blocks, k_blocks] or "
                       "[heads or 1, q_blocks, k_blocks]"),
          int_param("block", 1, "block size b in tokens the file's cells stand for", 64, false,
                    1 << 20)},
         "an explicit block layout loaded from a .npy file",
         "cell [h, floor(i/b), floor(j/b)] != 0 (rows by query index i; a 2-D file is cell "
         "[floor(i/b), floor(j/b)] on every head)",
         "DeepSpeed/Triton block-sparse layouts ([heads, q_blocks, k_blocks]); the block .npy "
         "that 'spattn mask --level block' writes",
         "blocks(file=\"layout.npy\", block=64)",
         [](const Args& a) {
           return std::make_shared<Blocks>(a.get_string("file"), a.get_int("block"));
         }});
}

}  // namespace spattn::builtin
