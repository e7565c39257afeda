// nsa_select (NSA's selection and window branches): blocks chosen by the compression branch's
// attention, plus the sliding window. The compressed branch itself attends compressed tokens,
// not keys, so it is no part of the mask; gates are the caller's.
#include <cmath>
#include <limits>

#include "common.hpp"

namespace spattn::select_detail {

SelectedHead select_nsa(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  const Args& a = sel.args();
  const std::int64_t l = a.get_int("l"), ds = a.get_int("stride"), lb = a.get_int("block");
  const std::int64_t n = a.get_int("n"), w = a.get_int("window");
  // Compressed tokens c: the mean of keys [c ds, c ds + l).
  const std::int64_t nc = in.nk >= l ? (in.nk - l) / ds + 1 : 0;
  std::vector<std::vector<double>> kc(static_cast<std::size_t>(nc));
  tbb::parallel_for(std::int64_t{0}, nc, [&](std::int64_t c) {
    kc[c].assign(static_cast<std::size_t>(in.d), 0.0);
    for (std::int64_t j = c * ds; j < c * ds + l; ++j)
      for (std::int64_t x = 0; x < in.d; ++x) kc[c][x] += in.krow(j)[x];
    for (double& x : kc[c]) x /= static_cast<double>(l);
  });
  const std::int64_t A = l / ds, Bq = lb / ds;  // compressed tokens per l, per selection block
  SelectedHead s;
  per_query_groups(s, in, [&](std::int64_t i, std::vector<KeyRange>& out) {
    const std::int64_t t = in.pos(i);
    if (t < 0) return;
    // Compression-branch probabilities over the visible compressed tokens (c ds + l - 1 <= t).
    const std::int64_t nv = t >= l - 1 ? std::min(nc, (t - l + 1) / ds + 1) : 0;
    std::vector<double> p(static_cast<std::size_t>(nv));
    double m = -std::numeric_limits<double>::infinity(), total = 0;
    for (std::int64_t c = 0; c < nv; ++c) {
      p[c] = in.scale * dot(kc[c].data(), in.qrow(i), in.d);
      m = std::max(m, p[c]);
    }
    for (double& x : p) total += (x = std::exp(x - m));
    for (double& x : p) x /= total;
    // Block scores over the blocks at or before t; block 0 and the two local blocks forced.
    const std::int64_t nb = t / lb + 1;
    std::vector<double> score(static_cast<std::size_t>(nb), 0.0);
    for (std::int64_t j = 0; j < nb; ++j) {
      for (std::int64_t x = 0; x < A; ++x)
        for (std::int64_t y = 0; y < Bq; ++y) {
          const std::int64_t c = j * Bq + x + y - (A - 1);
          if (c >= 0 && c < nv) score[j] += p[c];
        }
    }
    constexpr double inf = std::numeric_limits<double>::infinity();
    score[0] = inf;
    score[nb - 1] = inf;
    if (nb >= 2) score[nb - 2] = inf;
    std::vector<KeyRange> r = index_ranges(top_indices(score.data(), nb, n), lb, in.nk);
    r.push_back({std::max<std::int64_t>(0, t - w + 1), t + 1});  // the window
    out = std::move(r);
  });
  cost.flops +=
      2.0 * static_cast<double>(in.nq) * static_cast<double>(nc) * static_cast<double>(in.d) +
      static_cast<double>(nc * l * in.d);
  cost.bytes += 4.0 * static_cast<double>((in.nq + in.nk) * in.d);
  return s;
}

}  // namespace spattn::select_detail
