#include "common.hpp"

#include <cmath>
#include <limits>

namespace spattn::select_detail {

namespace {

// Row n of (b, h) in place when the head's rows are dense, else all rows copied into `copy`.
const float* rows_of(const ConstTensorView& t, std::int64_t b, std::int64_t h,
                     std::vector<float>& copy) {
  const std::int64_t n = t.tokens(), d = t.dim();
  if (t.rows_contiguous() && (t.stride[2] == d || n <= 1)) return t.row(b, h, 0);
  copy.resize(static_cast<std::size_t>(n * d));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t x = 0; x < d; ++x) copy[i * d + x] = t.at(b, h, i, x);
  return copy.data();
}

}  // namespace

HeadData head_data(const ConstTensorView& q, const ConstTensorView& k, std::int64_t b, int h) {
  HeadData in;
  in.nq = q.tokens();
  in.nk = k.tokens();
  in.d = q.dim();
  in.offset = in.nk - in.nq;
  in.scale = 1.0 / std::sqrt(static_cast<double>(in.d));
  const std::int64_t kh = h / (q.heads() / k.heads());
  in.qbase = rows_of(q, b, h, in.q_copy);
  in.kbase = rows_of(k, b, kh, in.k_copy);
  return in;
}

LastQueryMass last_query_mass(const HeadData& in, std::int64_t L, double div) {
  LastQueryMass out;
  out.vert.assign(static_cast<std::size_t>(in.nk), 0.0);
  out.slash.assign(static_cast<std::size_t>(in.nk), 0.0);
  std::vector<double> p;
  for (std::int64_t r = in.nq - L; r < in.nq; ++r) {
    const std::int64_t pr = in.pos(r), n = in.causal_keys(pr);
    if (n == 0) continue;
    p.resize(static_cast<std::size_t>(n));
    double m = -std::numeric_limits<double>::infinity();
    for (std::int64_t j = 0; j < n; ++j) {
      p[j] = in.scale * dot(in.qrow(r), in.krow(j), in.d);
      m = std::max(m, p[j]);
    }
    double total = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      p[j] = std::exp(p[j] - m);
      total += p[j];
    }
    for (std::int64_t j = 0; j < n; ++j) {
      const double x = p[j] / total / div;
      out.vert[j] += x;
      out.slash[pr - j] += x;  // 0 <= pr - j <= pr < nk
    }
  }
  return out;
}

std::vector<std::int64_t> top_indices(const double* score, std::int64_t n, std::int64_t count) {
  std::vector<std::int64_t> idx(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  for (std::int64_t j = 0; j < n; ++j) idx[j] = j;
  if (count < n) {
    // A strict total order: larger score first, then lower index.
    auto before = [score](std::int64_t a, std::int64_t b) {
      return score[a] > score[b] || (score[a] == score[b] && a < b);
    };
    std::nth_element(idx.begin(), idx.begin() + count, idx.end(), before);
    idx.resize(static_cast<std::size_t>(std::max<std::int64_t>(count, 0)));
  }
  std::sort(idx.begin(), idx.end());
  return idx;
}

std::vector<KeyRange> index_ranges(const std::vector<std::int64_t>& idx, std::int64_t width,
                                   std::int64_t nk) {
  std::vector<KeyRange> out;
  out.reserve(idx.size());
  for (std::int64_t x : idx) {
    const KeyRange r{x * width, std::min(nk, (x + 1) * width)};
    if (!out.empty() && out.back().end == r.begin)
      out.back().end = r.end;
    else
      out.push_back(r);
  }
  return out;
}

void set_block_groups(SelectedHead& s, std::int64_t rows, std::int64_t g0,
                      std::vector<std::vector<KeyRange>>& groups, std::int64_t nk) {
  s.group_rows = rows;
  s.origin = 0;
  s.first_group = g0;
  for (auto& grp : groups) s.add_group(std::move(grp), nk);
}

}  // namespace spattn::select_detail
