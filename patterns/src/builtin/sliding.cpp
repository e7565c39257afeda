// sliding(w): causal, the last w keys including the query's own position.
#include "leaf.hpp"
#include "spattn/patterns/band.hpp"

namespace spattn::builtin {
namespace {

class Sliding final : public Band {
 public:
  explicit Sliding(std::int64_t w) : w_(w) {}
  std::int64_t lo(std::int64_t p) const override { return p - w_ + 1; }
  std::int64_t hi(std::int64_t p) const override { return p; }
  void diagonal_cover(const Geometry& g, int, DiagonalCover& out) const override {
    out.assign(1, make_run(g, 0, w_ - 1, 1));
  }
  std::string spec() const override { return fmt::format("sliding({})", w_); }

 private:
  std::int64_t w_;
};

}  // namespace

void register_sliding(Registry& r) {
  r.add({"sliding",
         {int_param("w", 1, "number of keys each query sees, its own position included")},
         "causal sliding window of w keys",
         "p(i) - w < j <= p(i)",
         "Hugging Face masking_utils sliding_window, llama.cpp n_swa, Mistral/Gemma "
         "sliding_window configs (w keys including self); equals window(w - 1, 0)",
         "sliding(4096)",
         [](const Args& a) { return std::make_shared<Sliding>(a.get_int("w")); }});
}

}  // namespace spattn::builtin
