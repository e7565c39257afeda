#include "spattn/attention/select/select.hpp"

#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <chrono>
#include <cmath>
#include <mutex>

#include "common.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

using select_detail::HeadData;

SelectedHead select_head(const Selector& s, const HeadData& in, SelectionCost& cost) {
  const std::string& n = s.name();
  if (n == "oracle_topk" || n == "oracle_topp") return select_detail::select_oracle(s, in, cost);
  if (n == "vertical_slash") return select_detail::select_vertical_slash(s, in, cost);
  if (n == "block_topk") return select_detail::select_block_topk(s, in, cost);
  if (n == "moba") return select_detail::select_moba(s, in, cost);
  if (n == "quest") return select_detail::select_quest(s, in, cost);
  if (n == "nsa_select") return select_detail::select_nsa(s, in, cost);
  if (n == "flexprefill") return select_detail::select_flexprefill(s, in, cost);
  if (n == "xattention") return select_detail::select_xattention(s, in, cost);
  throw UsageError(fmt::format("selector '{}' has no scoring in this build", n));
}

void check_finite_view(const ConstTensorView& t, std::int64_t b, const char* what) {
  for (std::int64_t h = 0; h < t.heads(); ++h)
    for (std::int64_t n = 0; n < t.tokens(); ++n) {
      const float* r = t.row(b, h, n);
      bool finite = true;
      for (std::int64_t x = 0; x < t.dim(); ++x) finite &= std::isfinite(r[x * t.stride[3]]);
      if (finite) continue;
      for (std::int64_t x = 0; x < t.dim(); ++x)
        if (!std::isfinite(t.at(b, h, n, x)))
          throw UsageError(fmt::format(
              "cannot select on {} [{}, {}, {}, {}] = {}: selectors need finite Q and K", what, b,
              h, n, x, t.at(b, h, n, x)));
    }
}

class TensorResolver final : public SelectorResolver {
 public:
  TensorResolver(const ConstTensorView& q, const ConstTensorView& k, std::int64_t b)
      : q_(q), k_(k), b_(b) {}
  PatternPtr resolve(const Selector& s, const std::vector<bool>& heads) const override {
    std::vector<std::shared_ptr<const SelectedHead>> out(heads.size());
    std::vector<SelectionCost> costs(heads.size());
    tbb::parallel_for(std::size_t{0}, heads.size(), [&](std::size_t h) {
      if (!heads[h]) return;
      const HeadData in = select_detail::head_data(q_, k_, b_, static_cast<int>(h));
      out[h] = std::make_shared<SelectedHead>(select_head(s, in, costs[h]));
    });
    for (const SelectionCost& c : costs) cost += c;  // in head order
    return std::make_shared<SelectedPattern>(s.spec(), std::move(out));
  }
  mutable SelectionCost cost;

 private:
  ConstTensorView q_, k_;
  std::int64_t b_;
};

}  // namespace

PatternPtr select_batch(const PatternPtr& pattern, const ConstTensorView& q,
                        const ConstTensorView& k, std::int64_t b, const Geometry& g,
                        SelectionCost* cost, int threads) {
  if (!pattern->needs_inputs()) return pattern;
  if (q.tokens() != g.nq || k.tokens() != g.nk || q.heads() != g.heads || k.heads() < 1 ||
      q.heads() % k.heads() != 0 || q.dim() != k.dim() || b < 0 || b >= q.batch() ||
      k.batch() != q.batch())
    throw UsageError(fmt::format("selection: q {} and k {} do not match the geometry {} (batch {})",
                                 q.shape_string(), k.shape_string(), g.describe(), b));
  check_finite_view(q, b, "q");
  check_finite_view(k, b, "k");
  TensorResolver r(q, k, b);
  PatternPtr out;
  auto run = [&] { out = resolve_selectors(pattern, r, g.heads); };
  if (threads > 0) {
    tbb::task_arena arena(threads);
    arena.execute(run);
  } else {
    run();
  }
  if (cost != nullptr) *cost += r.cost;
  return out;
}

SelectedLayouts select_layouts(const PatternPtr& pattern, const ConstTensorView& q,
                               const ConstTensorView& k, const Geometry& g,
                               const BuildOptions& options) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  SelectedLayouts out;
  const std::int64_t batches = pattern->needs_inputs() ? q.batch() : 1;
  for (std::int64_t b = 0; b < batches; ++b) {
    out.patterns.push_back(select_batch(pattern, q, k, b, g, &out.cost, options.threads));
    out.layouts.push_back(build_layout(*out.patterns.back(), g, options));
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

}  // namespace spattn
