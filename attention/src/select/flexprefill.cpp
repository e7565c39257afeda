// flexprefill (FlexPrefill): per head a vertical-slash or a query-aware block pattern, chosen by
// the Jensen-Shannon distance between the last queries' pooled attention and a block-mean
// estimate; budgets from the attention mass gamma.
#include <cmath>
#include <limits>

#include "common.hpp"

namespace spattn::select_detail {
namespace {

// Largest prefix (descending order) whose running sum stays <= gamma, plus one.
std::int64_t cover(const std::vector<double>& x, double gamma) {
  std::vector<double> v = x;
  std::sort(v.begin(), v.end(), std::greater<>());
  double run = 0;
  std::int64_t n = 0;
  for (double y : v) {
    run += y;
    if (run <= gamma)
      ++n;
    else
      break;
  }
  return n + 1;
}

double kl(const std::vector<double>& p, const std::vector<double>& m) {
  double s = 0;
  for (std::size_t k = 0; k < p.size(); ++k)
    if (p[k] > 0) s += p[k] * std::log(p[k] / m[k]);
  return s;
}

}  // namespace

SelectedHead select_flexprefill(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  const Args& a = sel.args();
  const double gamma = a.get_real("gamma"), tau = a.get_real("tau");
  const std::int64_t B = a.get_int("block"), min_budget = a.get_int("min_budget");
  const std::int64_t nb = (in.nk + B - 1) / B;  // key blocks (positions 0..nk-1)
  const std::int64_t min_blocks = (min_budget + B - 1) / B;
  const std::int64_t g0 = floor_div(in.pos(0), B), g1 = floor_div(in.pos(in.nq - 1), B);
  SelectedHead s;
  s.group_rows = B;
  s.origin = 0;
  s.first_group = g0;
  // Dense (causal) fallback for short inputs.
  if (in.nq <= std::max(2 * B, min_blocks * B)) {
    for (std::int64_t I = g0; I <= g1; ++I) s.add_group({{0, in.nk}}, in.nk);
    return s;
  }
  // 2-3: the last B queries' softmax; vertical and slash averages.
  const std::int64_t L = std::min(B, in.nq);
  LastQueryMass mass = last_query_mass(in, L, static_cast<double>(L));  // means of P
  std::vector<double>& vert = mass.vert;
  std::vector<double>& slash = mass.slash;
  std::vector<double> qmean(static_cast<std::size_t>(in.d), 0.0);
  for (std::int64_t r = in.nq - L; r < in.nq; ++r)
    for (std::int64_t x = 0; x < in.d; ++x) qmean[x] += in.scale * in.qrow(r)[x];
  for (double& x : qmean) x /= static_cast<double>(L);
  // 4: budgets (the literal 128 of the reference), at least min_budget worth of blocks.
  const std::int64_t n_vert0 = std::max(cover(vert, gamma) / 128 + 1, min_blocks);
  const std::int64_t n_slash0 = std::max(cover(slash, gamma) / 128 + 1, min_blocks);
  // 5: pooled to blocks (slash by block offset floor(o / B)).
  std::vector<double> vb(static_cast<std::size_t>(nb), 0.0), sb(vb.size(), 0.0);
  for (std::int64_t j = 0; j < in.nk; ++j) vb[j / B] += vert[j];
  for (std::int64_t o = 0; o < in.nk; ++o) sb[o / B] += slash[o];
  // 6: the block-mean estimate and its distance to the pooled vertical.
  std::vector<std::vector<double>> kbar(static_cast<std::size_t>(nb));
  for (std::int64_t J = 0; J < nb; ++J) {
    const std::int64_t e = std::min(in.nk, (J + 1) * B);
    kbar[J].assign(static_cast<std::size_t>(in.d), 0.0);
    for (std::int64_t j = J * B; j < e; ++j)
      for (std::int64_t x = 0; x < in.d; ++x) kbar[J][x] += in.krow(j)[x];
    for (double& x : kbar[J]) x /= static_cast<double>(e - J * B);
  }
  std::vector<double> est(static_cast<std::size_t>(nb));
  double mx = -std::numeric_limits<double>::infinity();
  for (std::int64_t J = 0; J < nb; ++J) {
    double v = 0;
    for (std::int64_t x = 0; x < in.d; ++x) v += qmean[x] * kbar[J][x];
    est[J] = v;
    mx = std::max(mx, v);
  }
  double et = 0;
  for (double& v : est) {
    v = std::exp(v - mx);
    et += v;
  }
  for (double& v : est) v /= et;
  std::vector<double> mid(static_cast<std::size_t>(nb));
  for (std::int64_t J = 0; J < nb; ++J) mid[J] = (est[J] + vb[J]) / 2;
  const double js = (kl(est, mid) + kl(vb, mid)) / 2;
  const bool query_aware = std::sqrt(std::max(js, 0.0)) < tau;
  const std::int64_t n_vert = query_aware ? min_blocks : n_vert0;
  const std::int64_t n_slash = query_aware ? min_blocks : n_slash0;
  // 7-8: block 0 and block offset 0 always; the top blocks of each.
  constexpr double inf = std::numeric_limits<double>::infinity();
  vb[0] = inf;
  sb[0] = inf;
  const std::vector<std::int64_t> vsel = top_indices(vb.data(), nb, n_vert);
  const std::vector<std::int64_t> ssel = top_indices(sb.data(), nb, n_slash);
  std::vector<std::vector<std::int64_t>> rows(static_cast<std::size_t>(g1 - g0 + 1));
  for (std::int64_t I = std::max<std::int64_t>(g0, 0); I <= g1; ++I) {
    auto& row = rows[I - g0];
    for (std::int64_t v : vsel)
      if (v <= I) row.push_back(v);
    for (std::int64_t o : ssel)
      if (I - o >= 0) row.push_back(I - o);
  }
  // 9: query-aware heads add the globally largest block probabilities up to gamma x rows.
  if (query_aware) {
    struct Cell {
      double v;
      std::int64_t I, J;
    };
    std::vector<Cell> cells;
    std::int64_t present = 0;
    for (std::int64_t I = std::max<std::int64_t>(g0, 0); I <= g1; ++I) {
      const std::int64_t i0 = std::max<std::int64_t>(0, I * B - in.offset);
      const std::int64_t i1 = std::min(in.nq, (I + 1) * B - in.offset);
      std::vector<double> qb(static_cast<std::size_t>(in.d), 0.0);
      for (std::int64_t i = i0; i < i1; ++i)
        for (std::int64_t x = 0; x < in.d; ++x) qb[x] += in.qrow(i)[x];
      for (double& x : qb) x /= static_cast<double>(i1 - i0);
      const std::int64_t nj = std::min(I + 1, nb);
      std::vector<double> row(static_cast<std::size_t>(nj));
      double m = -inf;
      for (std::int64_t J = 0; J < nj; ++J) {
        double v = 0;
        for (std::int64_t x = 0; x < in.d; ++x) v += qb[x] * kbar[J][x];
        row[J] = in.scale * v;
        m = std::max(m, row[J]);
      }
      double t = 0;
      for (double& v : row) {
        v = std::exp(v - m);
        t += v;
      }
      for (std::int64_t J = 0; J < nj; ++J) cells.push_back({row[J] / t, I, J});
      ++present;
    }
    std::sort(cells.begin(), cells.end(), [](const Cell& x, const Cell& y) {
      return x.v > y.v || (x.v == y.v && (x.I < y.I || (x.I == y.I && x.J < y.J)));
    });
    double run = 0;
    for (const Cell& c : cells) {
      run += c.v;
      if (!(run <= gamma * static_cast<double>(present))) break;
      rows[c.I - g0].push_back(c.J);
    }
  }
  for (auto& row : rows) {
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    s.add_group(index_ranges(row, B, in.nk), in.nk);
  }
  cost.flops += 2.0 * static_cast<double>(L * in.nk * in.d) +
                2.0 * static_cast<double>(nb) * static_cast<double>(in.d) *
                    (query_aware ? static_cast<double>(g1 - g0 + 1) : 1.0);
  cost.bytes += 4.0 * static_cast<double>((L + in.nk) * in.d);
  return s;
}

}  // namespace spattn::select_detail
