// The block selectors: block_topk (MInference block-sparse), moba (MoBA) and quest (Quest).
#include <limits>

#include "common.hpp"
#include "spattn/attention/select/quest_bound.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::select_detail {
namespace {

// Row sums of rows [r0, r1) of m ([rows, d]) divided by `div`, in double.
std::vector<double> pooled(const float* m, std::int64_t r0, std::int64_t r1, std::int64_t d,
                           double div) {
  std::vector<double> s(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t x = 0; x < d; ++x) s[x] += m[r * d + x];
  for (double& x : s) x /= div;
  return s;
}

}  // namespace

SelectedHead select_block_topk(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  const std::int64_t B = sel.args().get_int("block"), k = sel.args().get_int("k");
  const std::int64_t nkb = (in.nk + B - 1) / B;
  const std::int64_t g0 = floor_div(in.pos(0), B), g1 = floor_div(in.pos(in.nq - 1), B);
  // Kbar_J = (sum of the block's keys) / B: a short last block counts its pads as zeros.
  std::vector<std::vector<double>> kbar(static_cast<std::size_t>(nkb));
  tbb::parallel_for(std::int64_t{0}, nkb, [&](std::int64_t J) {
    kbar[J] = pooled(in.kbase, J * B, std::min(in.nk, (J + 1) * B), in.d, static_cast<double>(B));
  });
  std::vector<std::vector<KeyRange>> groups(static_cast<std::size_t>(g1 - g0 + 1));
  tbb::parallel_for(std::int64_t{0}, g1 - g0 + 1, [&](std::int64_t gi) {
    const std::int64_t I = g0 + gi;
    const std::int64_t ncand = std::min(I + 1, nkb);
    if (ncand <= 0) return;
    const std::int64_t i0 = std::max<std::int64_t>(0, I * B - in.offset);
    const std::int64_t i1 = std::min(in.nq, (I + 1) * B - in.offset);
    const std::vector<double> qbar = pooled(in.qbase, i0, i1, in.d, static_cast<double>(B));
    std::vector<double> score(static_cast<std::size_t>(ncand));
    for (std::int64_t J = 0; J < ncand; ++J) {
      double s = 0;
      for (std::int64_t x = 0; x < in.d; ++x) s += qbar[x] * kbar[J][x];
      score[J] = s;
    }
    groups[gi] = index_ranges(top_indices(score.data(), ncand, k), B, in.nk);
  });
  const double qb = static_cast<double>(g1 - g0 + 1), kb = static_cast<double>(nkb);
  cost.flops += static_cast<double>((in.nq + in.nk) * in.d) + qb * kb * static_cast<double>(in.d);
  cost.bytes += 4.0 * static_cast<double>((in.nq + in.nk) * in.d);
  SelectedHead s;
  set_block_groups(s, B, g0, groups, in.nk);
  return s;
}

SelectedHead select_moba(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  const std::int64_t C = sel.args().get_int("chunk"), topk = sel.args().get_int("topk");
  const std::int64_t nb = (in.nk + C - 1) / C;
  // Kbar_b = mean of the chunk's real keys.
  std::vector<std::vector<double>> kbar(static_cast<std::size_t>(nb));
  tbb::parallel_for(std::int64_t{0}, nb, [&](std::int64_t b) {
    const std::int64_t e = std::min(in.nk, (b + 1) * C);
    kbar[b] = pooled(in.kbase, b * C, e, in.d, static_cast<double>(e - b * C));
  });
  SelectedHead s;
  per_query_groups(s, in, [&](std::int64_t i, std::vector<KeyRange>& out) {
    const std::int64_t p = in.pos(i);
    if (p < 0) return;
    const std::int64_t cur = p / C;  // chunks b < cur lie entirely before p
    std::vector<double> gate(static_cast<std::size_t>(cur));
    for (std::int64_t b = 0; b < cur; ++b) gate[b] = dot(kbar[b].data(), in.qrow(i), in.d);
    std::vector<std::int64_t> keep = top_indices(gate.data(), cur, topk - 1);
    keep.push_back(cur);
    out = index_ranges(keep, C, in.nk);
  });
  cost.flops += static_cast<double>(in.nk * in.d) +
                static_cast<double>(in.nq) * static_cast<double>(nb) * static_cast<double>(in.d);
  cost.bytes += 4.0 * static_cast<double>((in.nq + in.nk) * in.d);
  return s;
}

SelectedHead select_quest(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  const std::int64_t P = sel.args().get_int("page");
  const std::int64_t pages = sel.args().get_int("budget") / P;  // >= 1 (checked when parsed)
  const std::int64_t np = (in.nk + P - 1) / P;
  // Per page and channel: the min and max over its keys, once per call.
  std::vector<float> mx(static_cast<std::size_t>(np * in.d)), mn(mx.size());
  tbb::parallel_for(std::int64_t{0}, np, [&](std::int64_t b) {
    quest_page_min_max(in.krow(b * P), std::min(in.nk, (b + 1) * P) - b * P, in.d, in.d,
                       mn.data() + b * in.d, mx.data() + b * in.d);
  });
  SelectedHead s;
  per_query_groups(s, in, [&](std::int64_t i, std::vector<KeyRange>& out) {
    const std::int64_t p = in.pos(i);
    if (p < 0) return;
    const std::int64_t cur = p / P;  // the page holding p; pages b < cur lie before p
    std::vector<double> bound(static_cast<std::size_t>(cur));
    for (std::int64_t b = 0; b < cur; ++b)
      bound[b] = quest_page_bound(in.qrow(i), 1, mn.data() + b * in.d, mx.data() + b * in.d, in.d);
    std::vector<std::int64_t> keep = top_indices(bound.data(), cur, pages - 1);
    keep.push_back(cur);
    out = index_ranges(keep, P, in.nk);
  });
  cost.flops += 2.0 * static_cast<double>(in.nk * in.d) +
                4.0 * static_cast<double>(in.nq) * static_cast<double>(np * in.d);
  cost.bytes += 4.0 * static_cast<double>(in.nk * in.d + in.nq * in.d + 2 * np * in.d);
  return s;
}

}  // namespace spattn::select_detail
