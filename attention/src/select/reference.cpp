// The brute-force selection rules (reference.hpp): plain loops, whole sorts, dense masks.
#include "spattn/attention/select/reference.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Ctx {
  const ConstTensorView& q;
  const ConstTensorView& k;
  std::int64_t b;
  int h, kh;
  std::int64_t nq, nk, d;
  double scale;
  std::int64_t pos(std::int64_t i) const { return i + nk - nq; }
  double dot(std::int64_t i, std::int64_t j) const {
    double s = 0;
    for (std::int64_t x = 0; x < d; ++x)
      s += static_cast<double>(q.at(b, h, i, x)) * static_cast<double>(k.at(b, kh, j, x));
    return s;
  }
  // Keys a causal selector may choose for query i: j <= p(i).
  std::int64_t causal_n(std::int64_t i) const {
    return std::max<std::int64_t>(0, std::min(nk, pos(i) + 1));
  }
};

// Indices 0..n-1 ordered by value descending, then index ascending.
std::vector<std::int64_t> ranked(const std::vector<double>& v) {
  std::vector<std::int64_t> idx(v.size());
  for (std::size_t j = 0; j < v.size(); ++j) idx[j] = static_cast<std::int64_t>(j);
  std::sort(idx.begin(), idx.end(), [&v](std::int64_t a, std::int64_t b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  return idx;
}

// Row softmax of scaled scores over keys [0, n): the shifted exponentials and their sum.
double row_exp(const Ctx& c, std::int64_t i, std::int64_t n, std::vector<double>& e) {
  e.assign(static_cast<std::size_t>(n), 0.0);
  double m = -kInf;
  for (std::int64_t j = 0; j < n; ++j) {
    e[j] = c.scale * c.dot(i, j);
    m = std::max(m, e[j]);
  }
  double total = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    e[j] = std::exp(e[j] - m);
    total += e[j];
  }
  return total;
}

// First position of `order` at which the running sum of v reaches p * total (the last when
// rounding never gets there).
std::size_t mass_cut(const std::vector<double>& v, const std::vector<std::int64_t>& order,
                     double total, double p) {
  double run = 0;
  for (std::size_t t = 0; t < order.size(); ++t) {
    run += v[order[t]];
    if (run >= p * total) return t;
  }
  return order.empty() ? 0 : order.size() - 1;
}

void oracle(const Ctx& c, const Args& a, bool topk, std::vector<std::uint8_t>& m) {
  const bool causal = a.get_int("causal") != 0;
  const std::int64_t B = a.get_int("block");
  std::vector<double> e;
  if (B == 0) {
    for (std::int64_t i = 0; i < c.nq; ++i) {
      const std::int64_t n = causal ? c.causal_n(i) : c.nk;
      if (n == 0) continue;
      if (topk) {
        std::vector<double> s(static_cast<std::size_t>(n));
        for (std::int64_t j = 0; j < n; ++j) s[j] = c.scale * c.dot(i, j);
        const std::vector<std::int64_t> order = ranked(s);
        const std::int64_t keep = std::min<std::int64_t>(a.get_int("k"), n);
        for (std::int64_t t = 0; t < keep; ++t) m[i * c.nk + order[t]] = 1;
      } else {
        const double total = row_exp(c, i, n, e);
        const std::vector<std::int64_t> order = ranked(e);
        const double thr = e[order[mass_cut(e, order, total, a.get_real("p"))]];
        for (std::int64_t j = 0; j < n; ++j)
          if (e[j] >= thr) m[i * c.nk + j] = 1;
      }
    }
    return;
  }
  // Blocks of B positions; each query block's key-block masses.
  const std::int64_t nkb = (c.nk + B - 1) / B;
  for (std::int64_t i0 = 0; i0 < c.nq;) {
    const std::int64_t I = floor_div(c.pos(i0), B);
    std::int64_t i1 = i0;
    while (i1 < c.nq && floor_div(c.pos(i1), B) == I) ++i1;
    std::vector<double> mass(static_cast<std::size_t>(nkb), 0.0);
    std::int64_t ncand = 0;
    for (std::int64_t i = i0; i < i1; ++i) {
      const std::int64_t n = causal ? c.causal_n(i) : c.nk;
      if (n == 0) continue;
      ncand = std::max(ncand, (n + B - 1) / B);
      const double total = row_exp(c, i, n, e);
      for (std::int64_t j = 0; j < n; ++j) mass[j / B] += e[j] / total;
    }
    mass.resize(static_cast<std::size_t>(ncand));
    const std::vector<std::int64_t> order = ranked(mass);
    std::size_t keep = 0;
    if (topk) {
      keep = static_cast<std::size_t>(std::min<std::int64_t>(a.get_int("k"), ncand));
    } else if (ncand > 0) {
      double total = 0;
      for (double x : mass) total += x;
      keep = mass_cut(mass, order, total, a.get_real("p")) + 1;
    }
    std::vector<bool> kept(static_cast<std::size_t>(nkb), false);
    for (std::size_t t = 0; t < keep; ++t) kept[order[t]] = true;
    for (std::int64_t i = i0; i < i1; ++i)
      for (std::int64_t j = 0; j < c.nk; ++j)
        if (kept[j / B] && (!causal || j <= c.pos(i))) m[i * c.nk + j] = 1;
    i0 = i1;
  }
}

// MInference's convert_vertical_slash_indexes for one block of 64 query rows (causal), with
// positions: the chunk starts and the columns.
void pit64_block(std::int64_t start_m, std::int64_t offset, const std::vector<std::int64_t>& V,
                 const std::vector<std::int64_t>& S_desc, std::vector<std::int64_t>& chunks,
                 std::vector<std::int64_t>& columns) {
  constexpr std::int64_t M = 64, N = 64;
  const std::int64_t end_m = start_m + M;
  const std::size_t vw = V.size(), sw = S_desc.size();
  auto save = [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t x = lo; x < hi; x += N) chunks.push_back(x);
  };
  std::size_t vc = 0, sc = 0;
  std::int64_t vi = V[vc++];
  std::int64_t si = S_desc[sc++];
  while (si >= end_m + offset && sc < sw) si = S_desc[sc++];
  const bool has_slash = !(si > end_m + offset);
  si = std::max(offset + end_m - si, M);
  std::int64_t range_start = si - M, range_end = si;
  if (!has_slash) {
    range_start = offset + end_m;
    range_end = offset + end_m + N;
  }
  bool slash_finished = false;
  while (true) {
    if (vi < range_end) {
      if (vi < range_start) columns.push_back(vi);
      vi = vc < vw ? V[vc++] : end_m + N + offset;
    } else {
      if (sc < sw) {
        si = std::max(offset + end_m - S_desc[sc++], M);
      } else {
        if (vc == vw || vi > range_start) {
          save(range_start, range_end);
          break;
        }
        range_start = offset + end_m;
        range_end = offset + end_m + N;
        slash_finished = true;
      }
      if (!slash_finished) {
        if (si > range_end + M) {
          save(range_start, range_end);
          range_start = si - M;
          range_end = si;
        } else if (si > range_end) {
          range_end += M;
        }
      }
    }
  }
}

void vertical_slash(const Ctx& c, const Args& a, std::vector<std::uint8_t>& m) {
  const std::int64_t L = std::min(a.get_int("last_q"), c.nq);
  std::vector<double> vert(static_cast<std::size_t>(c.nk), 0.0), slash(vert.size(), 0.0), e;
  for (std::int64_t r = c.nq - L; r < c.nq; ++r) {
    const std::int64_t n = c.causal_n(r);
    if (n == 0) continue;
    const double total = row_exp(c, r, n, e);
    for (std::int64_t j = 0; j < n; ++j) {
      vert[j] += e[j] / total;
      slash[c.pos(r) - j] += e[j] / total;
    }
  }
  for (std::int64_t j = 0; j < std::min<std::int64_t>(c.nk, 30); ++j) vert[j] = kInf;
  for (std::int64_t o = 0; o < std::min<std::int64_t>(c.nk, 100); ++o) slash[o] = kInf;
  const std::int64_t kv = std::min(c.nk, std::max<std::int64_t>(a.get_int("v"), 30));
  const std::int64_t ks = std::min(c.nk, std::max<std::int64_t>(a.get_int("s"), 50));
  const std::vector<std::int64_t> vr = ranked(vert), sr = ranked(slash);
  std::vector<std::int64_t> V(vr.begin(), vr.begin() + kv), S(sr.begin(), sr.begin() + ks);
  std::sort(V.begin(), V.end());
  std::sort(S.begin(), S.end());
  if (a.get_string("mode") == "exact") {
    std::vector<bool> in_v(static_cast<std::size_t>(c.nk), false), in_s(in_v.size(), false);
    for (auto j : V) in_v[j] = true;
    for (auto o : S) in_s[o] = true;
    for (std::int64_t i = 0; i < c.nq; ++i)
      for (std::int64_t j = 0; j < c.nk; ++j) {
        const std::int64_t o = c.pos(i) - j;
        if (o >= 0 && (in_v[j] || in_s[o])) m[i * c.nk + j] = 1;
      }
    return;
  }
  const std::vector<std::int64_t> S_desc(S.rbegin(), S.rend());
  for (std::int64_t i0 = 0; i0 < c.nq; i0 += 64) {
    std::vector<std::int64_t> chunks, columns;
    pit64_block(i0, c.nk - c.nq, V, S_desc, chunks, columns);
    for (std::int64_t i = i0; i < std::min(c.nq, i0 + 64); ++i) {
      const std::int64_t p = c.pos(i);
      for (std::int64_t x : chunks)
        for (std::int64_t j = std::max<std::int64_t>(x, 0); j < std::min(c.nk, x + 64); ++j)
          if (j <= p) m[i * c.nk + j] = 1;
      for (std::int64_t j : columns)
        if (j <= p && j < c.nk) m[i * c.nk + j] = 1;
    }
  }
}

// Sum of rows [r0, r1) of the view's head, divided by div, in double.
std::vector<double> pool(const ConstTensorView& t, std::int64_t b, std::int64_t h, std::int64_t r0,
                         std::int64_t r1, std::int64_t d, double div) {
  std::vector<double> s(static_cast<std::size_t>(d), 0.0);
  for (std::int64_t r = r0; r < r1; ++r)
    for (std::int64_t x = 0; x < d; ++x) s[x] += t.at(b, h, r, x);
  for (double& x : s) x /= div;
  return s;
}

void block_topk(const Ctx& c, const Args& a, std::vector<std::uint8_t>& m) {
  const std::int64_t B = a.get_int("block"), k = a.get_int("k");
  const std::int64_t nkb = (c.nk + B - 1) / B;
  for (std::int64_t i = 0; i < c.nq; ++i) {
    const std::int64_t p = c.pos(i), I = floor_div(p, B);
    const std::int64_t ncand = std::min(I + 1, nkb);
    if (ncand <= 0) continue;
    // Qbar_I: the queries at positions [I B, (I + 1) B), summed, over B.
    const std::int64_t q0 = std::max<std::int64_t>(0, I * B - (c.nk - c.nq));
    const std::int64_t q1 = std::min(c.nq, (I + 1) * B - (c.nk - c.nq));
    const std::vector<double> qbar = pool(c.q, c.b, c.h, q0, q1, c.d, static_cast<double>(B));
    std::vector<double> score(static_cast<std::size_t>(ncand));
    for (std::int64_t J = 0; J < ncand; ++J) {
      const std::vector<double> kbar =
          pool(c.k, c.b, c.kh, J * B, std::min(c.nk, (J + 1) * B), c.d, static_cast<double>(B));
      double s = 0;
      for (std::int64_t x = 0; x < c.d; ++x) s += qbar[x] * kbar[x];
      score[J] = s;
    }
    const std::vector<std::int64_t> order = ranked(score);
    for (std::int64_t t = 0; t < std::min(k, ncand); ++t)
      for (std::int64_t j = order[t] * B; j < std::min(c.nk, (order[t] + 1) * B); ++j)
        if (j <= p) m[i * c.nk + j] = 1;
  }
}

// moba (C = chunk) and quest (C = page): the query's own unit plus the best `extra` earlier ones.
void own_plus_best(const Ctx& c, const Args& a, bool moba, std::vector<std::uint8_t>& m) {
  const std::int64_t C = moba ? a.get_int("chunk") : a.get_int("page");
  const std::int64_t extra = moba ? a.get_int("topk") - 1 : a.get_int("budget") / C - 1;
  for (std::int64_t i = 0; i < c.nq; ++i) {
    const std::int64_t p = c.pos(i);
    if (p < 0) continue;
    const std::int64_t cur = p / C;
    std::vector<double> score(static_cast<std::size_t>(cur));
    for (std::int64_t u = 0; u < cur; ++u) {
      const std::int64_t e = std::min(c.nk, (u + 1) * C);
      if (moba) {
        const std::vector<double> kbar =
            pool(c.k, c.b, c.kh, u * C, e, c.d, static_cast<double>(e - u * C));
        double s = 0;
        for (std::int64_t x = 0; x < c.d; ++x)
          s += kbar[x] * static_cast<double>(c.q.at(c.b, c.h, i, x));
        score[u] = s;
      } else {
        double s = 0;
        for (std::int64_t x = 0; x < c.d; ++x) {
          float hi = -std::numeric_limits<float>::infinity(), lo = -hi;
          for (std::int64_t j = u * C; j < e; ++j) {
            hi = std::max(hi, c.k.at(c.b, c.kh, j, x));
            lo = std::min(lo, c.k.at(c.b, c.kh, j, x));
          }
          const double qx = c.q.at(c.b, c.h, i, x);
          s += std::max(qx * hi, qx * lo);
        }
        score[u] = s;
      }
    }
    const std::vector<std::int64_t> order = ranked(score);
    std::vector<std::int64_t> units(order.begin(),
                                    order.begin() + std::min<std::int64_t>(extra, cur));
    units.push_back(cur);
    for (std::int64_t u : units)
      for (std::int64_t j = u * C; j < std::min(c.nk, (u + 1) * C); ++j)
        if (j <= p) m[i * c.nk + j] = 1;
  }
}

// XAttention: the strided antidiagonal score matrix of all rows, then per query block the block
// masses and the threshold walk.
void xattention(const Ctx& c, const Args& a, std::vector<std::uint8_t>& m) {
  const double tau = a.get_real("threshold");
  const std::int64_t S = a.get_int("stride"), B = a.get_int("block"), R = B / S;
  const std::int64_t nts = (c.nk + S - 1) / S, nkb = (c.nk + B - 1) / B;
  const std::int64_t p0 = c.pos(0), p1 = c.pos(c.nq - 1);
  const std::int64_t ua = floor_div(p0, S), ub = floor_div(p1, S);
  // P[u - ua][t]: softmax over t <= u of (scale / S) sum_c q(uS + S - 1 - c) . k(tS + c).
  std::vector<std::vector<double>> P;
  for (std::int64_t u = ua; u <= ub; ++u) {
    std::vector<double> row(
        static_cast<std::size_t>(std::max<std::int64_t>(0, std::min(u + 1, nts))));
    double mx = -kInf;
    for (std::size_t t = 0; t < row.size(); ++t) {
      double s = 0;
      for (std::int64_t cc = 0; cc < S; ++cc) {
        const std::int64_t x = u * S + S - 1 - cc, j = static_cast<std::int64_t>(t) * S + cc;
        if (x >= p0 && x <= p1 && j < c.nk) s += c.dot(x - (c.nk - c.nq), j);
      }
      row[t] = s * c.scale / static_cast<double>(S);
      mx = std::max(mx, row[t]);
    }
    double total = 0;
    for (double& v : row) {
      v = std::exp(v - mx);
      total += v;
    }
    for (double& v : row) v /= total;
    P.push_back(std::move(row));
  }
  for (std::int64_t i = 0; i < c.nq; ++i) {
    const std::int64_t p = c.pos(i), I = floor_div(p, B);
    const std::int64_t last = std::min(I, nkb - 1);
    if (last < 0) continue;
    std::vector<double> X(static_cast<std::size_t>(nkb), 0.0);
    for (std::int64_t u = std::max(I * R, ua); u < std::min((I + 1) * R, ub + 1); ++u)
      for (std::size_t t = 0; t < P[u - ua].size(); ++t) X[t / R] += P[u - ua][t];
    double total = 0;
    for (double x : X) total += x;
    std::vector<bool> kept(static_cast<std::size_t>(nkb), false);
    kept[0] = kept[last] = true;
    double before = X[0] + (last > 0 ? X[last] : 0.0);
    std::vector<double> rest(X.begin(), X.begin() + last + 1);
    std::vector<std::int64_t> order = ranked(rest);
    for (std::int64_t J : order) {
      if (J == 0 || J == last) continue;
      if (!(before < tau * total)) break;
      kept[J] = true;
      before += X[J];
    }
    for (std::int64_t j = 0; j <= std::min(p, c.nk - 1); ++j)
      if (kept[j / B]) m[i * c.nk + j] = 1;
  }
}

// FlexPrefill: the last B rows' dense softmax, the two budgets, the JS distance, then the block
// rule evaluated per pair.
void flexprefill(const Ctx& c, const Args& a, std::vector<std::uint8_t>& m) {
  const double gamma = a.get_real("gamma"), tau = a.get_real("tau");
  const std::int64_t B = a.get_int("block"), minb = (a.get_int("min_budget") + B - 1) / B;
  const std::int64_t nb = (c.nk + B - 1) / B, L = std::min(B, c.nq);
  if (c.nq <= std::max(2 * B, minb * B)) {  // dense causal
    for (std::int64_t i = 0; i < c.nq; ++i)
      for (std::int64_t j = 0; j <= std::min(c.pos(i), c.nk - 1); ++j) m[i * c.nk + j] = 1;
    return;
  }
  std::vector<double> vert(static_cast<std::size_t>(c.nk), 0.0), slash(vert.size(), 0.0), e;
  std::vector<double> qmean(static_cast<std::size_t>(c.d), 0.0);
  for (std::int64_t r = c.nq - L; r < c.nq; ++r) {
    for (std::int64_t x = 0; x < c.d; ++x) qmean[x] += c.scale * c.q.at(c.b, c.h, r, x);
    const std::int64_t n = c.causal_n(r);
    const double total = row_exp(c, r, n, e);
    for (std::int64_t j = 0; j < n; ++j) {
      vert[j] += e[j] / total / static_cast<double>(L);
      slash[c.pos(r) - j] += e[j] / total / static_cast<double>(L);
    }
  }
  for (double& x : qmean) x /= static_cast<double>(L);
  auto cover = [gamma](const std::vector<double>& x) {
    const std::vector<std::int64_t> order = ranked(x);
    double run = 0;
    std::int64_t n = 0;
    for (std::int64_t k : order) {
      run += x[k];
      if (!(run <= gamma)) break;
      ++n;
    }
    return n + 1;
  };
  std::int64_t nv = std::max(cover(vert) / 128 + 1, minb),
               ns = std::max(cover(slash) / 128 + 1, minb);
  std::vector<double> vb(static_cast<std::size_t>(nb), 0.0), sb(vb.size(), 0.0);
  for (std::int64_t j = 0; j < c.nk; ++j) {
    vb[j / B] += vert[j];
    sb[j / B] += slash[j];
  }
  std::vector<std::vector<double>> kbar;
  for (std::int64_t J = 0; J < nb; ++J) {
    const std::int64_t hi = std::min(c.nk, (J + 1) * B);
    kbar.push_back(pool(c.k, c.b, c.kh, J * B, hi, c.d, static_cast<double>(hi - J * B)));
  }
  std::vector<double> est(static_cast<std::size_t>(nb));
  double mx = -kInf, et = 0;
  for (std::int64_t J = 0; J < nb; ++J) {
    double v = 0;
    for (std::int64_t x = 0; x < c.d; ++x) v += qmean[x] * kbar[J][x];
    est[J] = v;
    mx = std::max(mx, v);
  }
  for (double& v : est) et += (v = std::exp(v - mx));
  for (double& v : est) v /= et;
  double js = 0;
  for (std::int64_t J = 0; J < nb; ++J) {
    const double mid = (est[J] + vb[J]) / 2;
    if (est[J] > 0) js += est[J] * std::log(est[J] / mid) / 2;
    if (vb[J] > 0) js += vb[J] * std::log(vb[J] / mid) / 2;
  }
  const bool qa = std::sqrt(std::max(js, 0.0)) < tau;
  if (qa) nv = ns = minb;
  vb[0] = sb[0] = kInf;
  const std::vector<std::int64_t> vo = ranked(vb), so = ranked(sb);
  std::vector<bool> vsel(static_cast<std::size_t>(nb), false), ssel(vsel.size(), false);
  for (std::int64_t k = 0; k < std::min(nv, nb); ++k) vsel[vo[k]] = true;
  for (std::int64_t k = 0; k < std::min(ns, nb); ++k) ssel[so[k]] = true;
  // Query-aware cells: (value, I, J) over present query blocks, J <= I.
  std::vector<std::vector<bool>> cell;
  const std::int64_t g0 = floor_div(c.pos(0), B), g1 = floor_div(c.pos(c.nq - 1), B);
  cell.assign(static_cast<std::size_t>(g1 - g0 + 1),
              std::vector<bool>(static_cast<std::size_t>(nb), false));
  if (qa) {
    std::vector<std::tuple<double, std::int64_t, std::int64_t>> all;
    std::int64_t present = 0;
    for (std::int64_t I = std::max<std::int64_t>(g0, 0); I <= g1; ++I, ++present) {
      const std::int64_t i0 = std::max<std::int64_t>(0, I * B - (c.nk - c.nq));
      const std::int64_t i1 = std::min(c.nq, (I + 1) * B - (c.nk - c.nq));
      const std::vector<double> qb = pool(c.q, c.b, c.h, i0, i1, c.d, static_cast<double>(i1 - i0));
      const std::int64_t nj = std::min(I + 1, nb);
      std::vector<double> row(static_cast<std::size_t>(nj));
      double rm = -kInf, rt = 0;
      for (std::int64_t J = 0; J < nj; ++J) {
        double v = 0;
        for (std::int64_t x = 0; x < c.d; ++x) v += qb[x] * kbar[J][x];
        row[J] = c.scale * v;
        rm = std::max(rm, row[J]);
      }
      for (double& v : row) rt += (v = std::exp(v - rm));
      for (std::int64_t J = 0; J < nj; ++J) all.emplace_back(-(row[J] / rt), I, J);
    }
    std::sort(all.begin(), all.end());
    double run = 0;
    for (const auto& [negv, I, J] : all) {
      run += -negv;
      if (!(run <= gamma * static_cast<double>(present))) break;
      cell[I - g0][J] = true;
    }
  }
  for (std::int64_t i = 0; i < c.nq; ++i) {
    const std::int64_t p = c.pos(i), I = floor_div(p, B);
    for (std::int64_t j = 0; j <= std::min(p, c.nk - 1); ++j) {
      const std::int64_t J = j / B;
      if ((vsel[J] && J <= I) || (I - J >= 0 && I - J < nb && ssel[I - J]) || cell[I - g0][J])
        m[i * c.nk + j] = 1;
    }
  }
}

// NSA selection and window: compressed tokens, their softmax, the overlap-weighted block scores.
void nsa(const Ctx& c, const Args& a, std::vector<std::uint8_t>& m) {
  const std::int64_t l = a.get_int("l"), ds = a.get_int("stride"), lb = a.get_int("block");
  const std::int64_t n = a.get_int("n"), w = a.get_int("window");
  std::vector<std::vector<double>> kc;
  for (std::int64_t cc = 0; cc * ds + l <= c.nk; ++cc)
    kc.push_back(pool(c.k, c.b, c.kh, cc * ds, cc * ds + l, c.d, static_cast<double>(l)));
  for (std::int64_t i = 0; i < c.nq; ++i) {
    const std::int64_t t = c.pos(i);
    if (t < 0) continue;
    std::vector<double> p;
    for (std::size_t cc = 0; cc < kc.size(); ++cc) {
      if (static_cast<std::int64_t>(cc) * ds + l - 1 > t) break;
      double s = 0;
      for (std::int64_t x = 0; x < c.d; ++x)
        s += kc[cc][x] * static_cast<double>(c.q.at(c.b, c.h, i, x));
      p.push_back(c.scale * s);
    }
    double mx = -kInf, total = 0;
    for (double x : p) mx = std::max(mx, x);
    for (double& x : p) total += (x = std::exp(x - mx));
    for (double& x : p) x /= total;
    const std::int64_t nb = t / lb + 1;
    std::vector<double> score(static_cast<std::size_t>(nb), 0.0);
    // Every compressed token overlapping block j, weighted by how many (a, b) pairs reach it.
    for (std::int64_t j = 0; j < nb; ++j)
      for (std::int64_t x = 0; x < l / ds; ++x)
        for (std::int64_t y = 0; y < lb / ds; ++y) {
          const std::int64_t cc = j * (lb / ds) + x + y - (l / ds - 1);
          if (cc >= 0 && cc < static_cast<std::int64_t>(p.size())) score[j] += p[cc];
        }
    score[0] = score[nb - 1] = kInf;
    if (nb >= 2) score[nb - 2] = kInf;
    const std::vector<std::int64_t> order = ranked(score);
    std::vector<bool> kept(static_cast<std::size_t>(nb), false);
    for (std::int64_t k = 0; k < std::min(n, nb); ++k) kept[order[k]] = true;
    for (std::int64_t j = 0; j <= std::min(t, c.nk - 1); ++j)
      if (kept[j / lb] || j > t - w) m[i * c.nk + j] = 1;
  }
}

}  // namespace

std::vector<std::uint8_t> reference_selection(const Selector& s, const ConstTensorView& q,
                                              const ConstTensorView& k, std::int64_t b, int h,
                                              const Geometry& g) {
  if (g.nq * g.nk > kMaxReferenceSelectionPairs)
    throw UsageError(fmt::format("reference_selection: {} x {} pairs exceed its limit of {}", g.nq,
                                 g.nk, kMaxReferenceSelectionPairs));
  const Ctx c{q,
              k,
              b,
              h,
              static_cast<int>(h / (q.heads() / k.heads())),
              g.nq,
              g.nk,
              q.dim(),
              1.0 / std::sqrt(static_cast<double>(q.dim()))};
  std::vector<std::uint8_t> m(static_cast<std::size_t>(g.nq * g.nk), 0);
  const std::string& n = s.name();
  if (n == "oracle_topk" || n == "oracle_topp")
    oracle(c, s.args(), n == "oracle_topk", m);
  else if (n == "vertical_slash")
    vertical_slash(c, s.args(), m);
  else if (n == "block_topk")
    block_topk(c, s.args(), m);
  else if (n == "nsa_select")
    nsa(c, s.args(), m);
  else if (n == "flexprefill")
    flexprefill(c, s.args(), m);
  else if (n == "xattention")
    xattention(c, s.args(), m);
  else if (n == "moba" || n == "quest")
    own_plus_best(c, s.args(), n == "moba", m);
  else
    throw UsageError(fmt::format("reference_selection: no rule for '{}'", n));
  return m;
}

}  // namespace spattn
