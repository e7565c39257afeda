// longformer(window, global=[...]): Hugging Face Longformer's sliding window plus global tokens.
#include <algorithm>

#include "leaf.hpp"
#include "spattn/patterns/combinators.hpp"
#include "spattn/patterns/delegate.hpp"

namespace spattn::builtin {
namespace {

class Longformer final : public Delegate {
 public:
  Longformer(std::int64_t window, std::vector<std::int64_t> tokens)
      : Delegate(spec_of(window, tokens), inner_of(window, tokens)), tokens_(std::move(tokens)) {}
  void check(const Geometry& g) const override {
    if (!tokens_.empty() && tokens_.back() >= g.nk)
      throw UsageError(
          fmt::format("{}: global token {} is out of range: tokens are positions 0..{} (nk = {})",
                      spec().substr(0, 60), tokens_.back(), g.nk - 1, g.nk));
    Delegate::check(g);
  }

 private:
  static std::string spec_of(std::int64_t w, const std::vector<std::int64_t>& t) {
    if (t.empty()) return fmt::format("longformer({})", w);
    return fmt::format("longformer({}, global=[{}])", w, fmt::join(t, ", "));
  }
  // Built from the registry's factories rather than a spec string, which a long token list
  // could push past the spec length limit.
  static PatternPtr inner_of(std::int64_t w, const std::vector<std::int64_t>& t) {
    PatternPtr window = compose(fmt::format("window({})", w / 2));
    if (t.empty()) return window;
    Args args;
    args.set("tokens", t);
    return make_union({window, Registry::global().find("global")->make(args)});
  }
  std::vector<std::int64_t> tokens_;  // sorted, distinct
};

}  // namespace

void register_longformer(Registry& r) {
  r.add(
      {"longformer",
       {int_param("window", 2, "total window w (attention_window), even: w/2 keys each side"),
        list_param("global", 0, kMaxTokens - 1,
                   "positions with global attention (global_attention_mask), default none", false)},
       "Longformer sliding window of w + 1 keys centred on the query, plus global tokens",
       "|p(i) - j| <= w/2, or p(i) in G, or j in G (G = the global list)",
       "Hugging Face transformers models/longformer/modeling_longformer.py "
       "LongformerSelfAttention: one_sided_attn_window_size = attention_window // 2 (even, "
       "positive), global tokens attend to all and are attended by all; equals window(w/2) | "
       "global(tokens=G)",
       "longformer(512, global=[0])",
       [](const Args& a) -> PatternPtr {
         const std::int64_t w = a.get_int("window");
         if (w % 2 != 0)
           throw UsageError(fmt::format(
               "longformer: window = {} must be even (Hugging Face attention_window: w/2 keys "
               "each side, w + 1 in all); use {} or {}",
               w, w - 1, w + 1));
         std::vector<std::int64_t> t =
             a.has("global") ? a.get_list("global") : std::vector<std::int64_t>{};
         std::sort(t.begin(), t.end());
         for (std::size_t k = 1; k < t.size(); ++k)
           if (t[k] == t[k - 1])
             throw UsageError(fmt::format("longformer: global token {} is listed twice", t[k]));
         return std::make_shared<Longformer>(w, std::move(t));
       }});
}

}  // namespace spattn::builtin
