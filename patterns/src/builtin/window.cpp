// window(left, right): p(i) - left <= j <= p(i) + right (FlashAttention window_size, inclusive).
#include "leaf.hpp"
#include "spattn/patterns/band.hpp"

namespace spattn::builtin {
namespace {

class Window final : public Band {
 public:
  Window(std::int64_t left, std::int64_t right) : left_(left), right_(right) {}
  std::int64_t lo(std::int64_t p) const override { return p - left_; }
  std::int64_t hi(std::int64_t p) const override { return p + right_; }
  void diagonal_cover(const Geometry& g, int, DiagonalCover& out) const override {
    out.assign(1, make_run(g, -right_, left_, 1));
  }
  std::string spec() const override { return fmt::format("window({}, {})", left_, right_); }

 private:
  std::int64_t left_, right_;
};

}  // namespace

void register_window(Registry& r) {
  r.add({"window",
         {int_param("left", 0, "keys allowed before the query's position"),
          int_param("right", 0, "keys allowed after it (default: equal to left)", std::nullopt,
                    false)},
         "two-sided local window; window(w) is window(w, w)",
         "p(i) - left <= j <= p(i) + right",
         "FlashAttention window_size=(left, right), both inclusive; window(w, 0) is causal "
         "with w keys before the query, w + 1 keys in all",
         "window(128, 0)",
         [](const Args& a) {
           const std::int64_t left = a.get_int("left");
           return std::make_shared<Window>(left, a.has("right") ? a.get_int("right") : left);
         }});
}

}  // namespace spattn::builtin
