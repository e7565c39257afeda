// oracle_topk and oracle_topp: exact per query (block = 0) or per query block (block = B, by the
// attention mass of each key block). Quadratic on purpose: they are the recall ceiling.
#include <cmath>

#include "common.hpp"

namespace spattn::select_detail {
namespace {

struct OracleParams {
  bool topk = true;
  std::int64_t k = 0;
  double p = 1;
  bool causal = true;
  std::int64_t block = 0;
};

// Scores scale * q_i . k_j for j < n.
void scores(const HeadData& in, std::int64_t i, std::int64_t n, std::vector<double>& a) {
  a.resize(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < n; ++j) a[j] = in.scale * dot(in.qrow(i), in.krow(j), in.d);
}

// e_j = exp(a_j - max) in place; returns their sum (in index order).
double exp_shifted(std::vector<double>& a) {
  double m = -INFINITY;
  for (double x : a) m = std::max(m, x);
  double total = 0;
  for (double& x : a) {
    x = std::exp(x - m);
    total += x;
  }
  return total;
}

// Indices of the smallest prefix (larger value first, then lower index) whose sum reaches
// p * total; with ties_kept, every index whose value equals the last one taken is kept too.
std::vector<std::int64_t> top_mass(const std::vector<double>& e, double total, double p,
                                   bool ties_kept) {
  const auto n = static_cast<std::int64_t>(e.size());
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  for (std::int64_t j = 0; j < n; ++j) order[j] = j;
  std::sort(order.begin(), order.end(), [&e](std::int64_t a, std::int64_t b) {
    return e[a] > e[b] || (e[a] == e[b] && a < b);
  });
  double run = 0;
  std::int64_t t = n - 1;
  for (std::int64_t x = 0; x < n; ++x) {
    run += e[order[x]];
    if (run >= p * total) {
      t = x;
      break;
    }
  }
  std::vector<std::int64_t> keep;
  if (n == 0) return keep;
  if (ties_kept) {
    const double thr = e[order[t]];
    for (std::int64_t j = 0; j < n; ++j)
      if (e[j] >= thr) keep.push_back(j);
  } else {
    keep.assign(order.begin(), order.begin() + t + 1);
    std::sort(keep.begin(), keep.end());
  }
  return keep;
}

SelectedHead token_oracle(const OracleParams& o, const HeadData& in) {
  SelectedHead s;
  s.causal = o.causal;
  per_query_groups(s, in, [&](std::int64_t i, std::vector<KeyRange>& out) {
    const std::int64_t n = o.causal ? in.causal_keys(in.pos(i)) : in.nk;
    std::vector<double> a;
    scores(in, i, n, a);
    std::vector<std::int64_t> keep;
    if (o.topk) {
      keep = top_indices(a.data(), n, o.k);
    } else {
      const double total = exp_shifted(a);
      keep = top_mass(a, total, o.p, true);
    }
    out = index_ranges(keep, 1, in.nk);
  });
  return s;
}

SelectedHead block_oracle(const OracleParams& o, const HeadData& in) {
  const std::int64_t B = o.block;
  const std::int64_t nkb = (in.nk + B - 1) / B;
  const std::int64_t g0 = floor_div(in.pos(0), B), g1 = floor_div(in.pos(in.nq - 1), B);
  std::vector<std::vector<KeyRange>> groups(static_cast<std::size_t>(g1 - g0 + 1));
  tbb::parallel_for(std::int64_t{0}, g1 - g0 + 1, [&](std::int64_t gi) {
    const std::int64_t I = g0 + gi;
    const std::int64_t i0 = std::max<std::int64_t>(0, I * B - in.offset);
    const std::int64_t i1 = std::min(in.nq, (I + 1) * B - in.offset);
    std::vector<double> mass(static_cast<std::size_t>(nkb), 0.0), a;
    std::int64_t ncand = 0;  // candidate key blocks: those any row of the block can reach
    for (std::int64_t i = i0; i < i1; ++i) {
      const std::int64_t n = o.causal ? in.causal_keys(in.pos(i)) : in.nk;
      if (n == 0) continue;
      ncand = std::max(ncand, (n + B - 1) / B);
      scores(in, i, n, a);
      const double total = exp_shifted(a);
      for (std::int64_t j = 0; j < n; ++j) mass[j / B] += a[j] / total;
    }
    mass.resize(static_cast<std::size_t>(ncand));
    std::vector<std::int64_t> keep;
    if (o.topk) {
      keep = top_indices(mass.data(), ncand, o.k);
    } else {
      double total = 0;
      for (double m : mass) total += m;
      keep = top_mass(mass, total, o.p, false);
    }
    groups[static_cast<std::size_t>(gi)] = index_ranges(keep, B, in.nk);
  });
  SelectedHead s;
  s.causal = o.causal;
  set_block_groups(s, B, g0, groups, in.nk);
  return s;
}

}  // namespace

SelectedHead select_oracle(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  OracleParams o;
  o.topk = sel.name() == "oracle_topk";
  if (o.topk)
    o.k = sel.args().get_int("k");
  else
    o.p = sel.args().get_real("p");
  o.causal = sel.args().get_int("causal") != 0;
  o.block = sel.args().get_int("block");
  const double pairs = static_cast<double>(in.nq) * static_cast<double>(in.nk) /
                       (o.causal && in.nq == in.nk ? 2.0 : 1.0);
  cost.flops += 2.0 * pairs * static_cast<double>(in.d);
  cost.bytes += 4.0 * static_cast<double>((in.nq + in.nk) * in.d);
  return o.block > 0 ? block_oracle(o, in) : token_oracle(o, in);
}

}  // namespace spattn::select_detail
