// xattention (XAttention): antidiagonal scores on a stride-S grid, block masses, and per query
// block the smallest prefix of blocks (block 0 and the diagonal first) reaching the threshold.
#include <cmath>
#include <limits>

#include "common.hpp"

namespace spattn::select_detail {

SelectedHead select_xattention(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  const double tau = sel.args().get_real("threshold");
  const std::int64_t S = sel.args().get_int("stride"), B = sel.args().get_int("block");
  const std::int64_t R = B / S;  // strided rows (and columns) per block
  const std::int64_t nts = (in.nk + S - 1) / S, nkb = (in.nk + B - 1) / B;
  const std::int64_t p0 = in.pos(0), p1 = in.pos(in.nq - 1);
  const std::int64_t g0 = floor_div(p0, B), g1 = floor_div(p1, B);
  // Query at position x (a zero vector when no query sits there).
  auto qpos = [&](std::int64_t x) -> const float* {
    return x >= p0 && x <= p1 ? in.qrow(x - in.offset) : nullptr;
  };
  std::vector<std::vector<KeyRange>> groups(static_cast<std::size_t>(g1 - g0 + 1));
  tbb::parallel_for(std::int64_t{0}, g1 - g0 + 1, [&](std::int64_t gi) {
    const std::int64_t I = g0 + gi;
    std::vector<double> X(static_cast<std::size_t>(nkb), 0.0), a;
    const std::int64_t u0 = std::max(I * R, floor_div(p0, S)),
                       u1 = std::min((I + 1) * R, floor_div(p1, S) + 1);
    for (std::int64_t u = u0; u < u1; ++u) {
      const std::int64_t nt = std::min(u + 1, nts);  // strided causal: t <= u
      if (nt <= 0) continue;
      a.assign(static_cast<std::size_t>(nt), 0.0);
      double m = -std::numeric_limits<double>::infinity();
      for (std::int64_t t = 0; t < nt; ++t) {
        double s = 0;
        for (std::int64_t c = 0; c < S; ++c) {
          const float* q = qpos(u * S + S - 1 - c);
          const std::int64_t j = t * S + c;
          if (q != nullptr && j < in.nk) s += dot(q, in.krow(j), in.d);
        }
        a[t] = s * in.scale / static_cast<double>(S);
        m = std::max(m, a[t]);
      }
      double total = 0;
      for (double& x : a) {
        x = std::exp(x - m);
        total += x;
      }
      for (std::int64_t t = 0; t < nt; ++t) X[t / R] += a[t] / total;
    }
    const std::int64_t last = std::min(I, nkb - 1);
    if (last < 0) return;
    double total = 0;
    for (double x : X) total += x;
    const double req = tau * total;
    // Forced block 0 and the diagonal, then the rest by mass (descending, lower index first).
    std::vector<std::int64_t> order{0};
    if (last > 0) order.push_back(last);
    std::vector<std::int64_t> rest;
    for (std::int64_t J = 1; J < last; ++J) rest.push_back(J);
    std::sort(rest.begin(), rest.end(), [&X](std::int64_t x, std::int64_t y) {
      return X[x] > X[y] || (X[x] == X[y] && x < y);
    });
    order.insert(order.end(), rest.begin(), rest.end());
    std::vector<std::int64_t> keep;
    const std::size_t forced = last > 0 ? 2 : 1;
    double before = 0;
    for (std::size_t x = 0; x < order.size(); ++x) {
      if (x >= forced && !(before < req)) break;
      keep.push_back(order[x]);
      before += X[order[x]];
    }
    std::sort(keep.begin(), keep.end());
    groups[gi] = index_ranges(keep, B, in.nk);
  });
  const double rows = static_cast<double>(p1 - p0 + 1) / static_cast<double>(S);
  cost.flops += rows * static_cast<double>(nts) * static_cast<double>(S * in.d) *
                (in.nq == in.nk ? 1.0 : 2.0);
  cost.bytes += 4.0 * static_cast<double>((in.nq + in.nk) * in.d);
  SelectedHead s;
  set_block_groups(s, B, g0, groups, in.nk);
  return s;
}

}  // namespace spattn::select_detail
