// longformer_dilated(w, d | dilation=[...]): the original Longformer's dilated sliding window.
#include <map>

#include "leaf.hpp"
#include "spattn/patterns/combinators.hpp"
#include "spattn/patterns/delegate.hpp"

namespace spattn::builtin {
namespace {

constexpr std::int64_t kMaxReachFactor = std::int64_t{1} << 31;

class LongformerDilated final : public Delegate {
 public:
  LongformerDilated(std::string spec, PatternPtr inner, std::size_t heads)
      : Delegate(std::move(spec), std::move(inner)), heads_(heads) {}
  void check(const Geometry& g) const override {
    if (heads_ > 0 && heads_ != static_cast<std::size_t>(g.heads))
      throw UsageError(
          fmt::format("{}: dilation lists {} values, one per head, but the geometry has {} heads",
                      spec().substr(0, 80), heads_, g.heads));
    Delegate::check(g);
  }

 private:
  std::size_t heads_;  // length of the per-head dilation list (0: one d for all heads)
};

// dilated(w, d), causal when autoregressive.
std::string window_tree(std::int64_t w, std::int64_t d, bool autoregressive) {
  const std::string window = fmt::format("dilated({}, {})", w, d);
  return autoregressive ? window + " & causal" : window;
}

}  // namespace

void register_longformer_dilated(Registry& r) {
  r.add({"longformer_dilated",
         {int_param("w", 1, "window: keys on each side of the query (attention_window)",
                    std::nullopt, true, kMaxReachFactor),
          int_param("d", 1, "dilation for every head (attention_dilation; default 1)", std::nullopt,
                    false, kMaxReachFactor),
          list_param("dilation", 1, kMaxReachFactor,
                     "per-head dilation, one value per head, instead of d", false),
          bool_param("autoregressive", "keys at or before the query only")},
         "original Longformer dilated sliding window: w keys each side at dilation d (per head)",
         "|p(i) - j| <= w*d and (p(i) - j) mod d == 0 (d = dilation[head]); autoregressive: "
         "also j <= p(i)",
         "allenai/longformer longformer/diagonaled_mm_tvm.py diagonaled_mm(t1, t2, w, d, ..., "
         "autoregressive): key i + d * (k - w) for k in 0..2w (0..w when autoregressive), d an "
         "int or one value per head; w is one-sided (LongformerConfig: 'number of attention "
         "locations on each side'); equals dilated(w, d), per head",
         "longformer_dilated(256, d=2)",
         [](const Args& a) -> PatternPtr {
           const std::int64_t w = a.get_int("w");
           const bool ar = a.get_int("autoregressive") != 0;
           const std::string tail = ar ? ", autoregressive=1)" : ")";
           if (a.has("d") && a.has("dilation"))
             throw UsageError(
                 "longformer_dilated: give d (one dilation for all heads) or dilation=[...] "
                 "(one per head), not both");
           if (!a.has("dilation")) {
             const std::int64_t d = a.has("d") ? a.get_int("d") : 1;
             const std::string spec =
                 d == 1 ? fmt::format("longformer_dilated({}{}", w, tail)
                        : fmt::format("longformer_dilated({}, d={}{}", w, d, tail);
             return std::make_shared<LongformerDilated>(spec, compose(window_tree(w, d, ar)), 0);
           }
           const std::vector<std::int64_t>& dl = a.get_list("dilation");
           if (dl.empty())
             throw UsageError(
                 "longformer_dilated: dilation=[] lists no heads; give one value "
                 "per head");
           if (dl.size() > static_cast<std::size_t>(kMaxHeads))
             throw UsageError(
                 fmt::format("longformer_dilated: dilation lists {} heads; at most {} are allowed",
                             dl.size(), kMaxHeads));
           const std::string spec =
               fmt::format("longformer_dilated({}, dilation=[{}]{}", w, fmt::join(dl, ", "), tail);
           // Heads with equal dilation form one group of a per-head pattern.
           std::map<std::int64_t, std::vector<std::pair<int, int>>> heads;
           for (std::size_t h = 0; h < dl.size(); ++h)
             heads[dl[h]].emplace_back(static_cast<int>(h), static_cast<int>(h));
           std::vector<HeadGroup> groups;
           for (auto& [d, ranges] : heads)
             groups.push_back({std::move(ranges), compose(window_tree(w, d, ar))});
           return std::make_shared<LongformerDilated>(spec, make_per_head(std::move(groups)),
                                                      dl.size());
         }});
}

}  // namespace spattn::builtin
