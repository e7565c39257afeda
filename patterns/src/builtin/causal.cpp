// causal: j <= p(i).
#include "leaf.hpp"
#include "spattn/patterns/band.hpp"

namespace spattn::builtin {
namespace {

class Causal final : public Band {
 public:
  std::int64_t lo(std::int64_t) const override { return kFarLeft; }
  std::int64_t hi(std::int64_t p) const override { return p; }
  void diagonal_cover(const Geometry& g, int, DiagonalCover& out) const override {
    out.assign(1, make_run(g, 0, max_offset(g), 1));
  }
  std::string spec() const override { return "causal"; }
};

}  // namespace

void register_causal(Registry& r) {
  r.add({"causal",
         {},
         "each query attends to its own position and every earlier key",
         "j <= p(i)",
         "causal LM mask; with nq < nk aligned bottom-right as FlashAttention >= 2.1 "
         "(causal=True) and xFormers LowerTriangularFromBottomRightMask",
         "causal",
         [](const Args&) { return std::make_shared<Causal>(); }});
}

}  // namespace spattn::builtin
