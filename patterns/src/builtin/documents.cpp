// documents(lengths=[...]): i and j in the same document of a packed sequence.
#include <algorithm>
#include <numeric>

#include "leaf.hpp"
#include "spattn/patterns/band.hpp"

namespace spattn::builtin {
namespace {

class Documents final : public Band {
 public:
  explicit Documents(std::vector<std::int64_t> lengths) : lengths_(std::move(lengths)) {
    starts_.reserve(lengths_.size() + 1);
    starts_.push_back(0);
    for (std::int64_t len : lengths_) starts_.push_back(starts_.back() + len);
  }
  // Document of position p: index d with starts_[d] <= p < starts_[d + 1], or -1.
  std::int64_t doc(std::int64_t p) const {
    if (p < 0 || p >= starts_.back()) return -1;
    return std::upper_bound(starts_.begin(), starts_.end(), p) - starts_.begin() - 1;
  }
  // Positions before the first document see nothing (lo = 0 > hi = -1), which keeps lo and hi
  // non-decreasing in p.
  std::int64_t lo(std::int64_t p) const override {
    const std::int64_t d = doc(p);
    return d < 0 ? (p < 0 ? 0 : starts_.back()) : starts_[d];
  }
  std::int64_t hi(std::int64_t p) const override {
    const std::int64_t d = doc(p);
    return d < 0 ? (p < 0 ? -1 : starts_.back() - 1) : starts_[d + 1] - 1;
  }
  std::string spec() const override {
    return fmt::format("documents(lengths=[{}])", fmt::join(lengths_, ", "));
  }
  void check(const Geometry& g) const override {
    if (starts_.back() != g.nk)
      throw UsageError(fmt::format(
          "documents: the lengths add up to {} tokens but nk = {}; the documents must cover "
          "the keys exactly",
          starts_.back(), g.nk));
  }

 private:
  std::vector<std::int64_t> lengths_, starts_;
};

}  // namespace

void register_documents(Registry& r) {
  r.add(
      {"documents",
       {list_param("lengths", 1, kMaxTokens,
                   "token count of each packed document, in order; they must add up to nk", true)},
       "packed documents: attention only within a document (block-diagonal, varlen)",
       "doc(p(i)) == doc(j), documents laid end to end from position 0",
       "FlashAttention varlen (cu_seqlens) / xFormers BlockDiagonalMask; compose with causal",
       "documents(lengths=[100, 412, 512]) & causal",
       [](const Args& a) {
         const auto& l = a.get_list("lengths");
         if (l.empty()) throw UsageError("documents: lengths must list at least one document");
         std::int64_t total = 0;
         for (std::int64_t x : l) {
           total += x;
           if (total > kMaxTokens)
             throw UsageError(
                 fmt::format("documents: lengths add up to more than {} tokens", kMaxTokens));
         }
         return std::make_shared<Documents>(l);
       }});
}

}  // namespace spattn::builtin
