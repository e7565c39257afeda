#pragma once
// Internal to the selectors: one (batch, query head)'s Q and K rows, contiguous, and the helpers
// every selector shares.
#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "spattn/attention/select/select.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/selector.hpp"

namespace spattn::select_detail {

struct HeadData {
  HeadData() = default;
  HeadData(const HeadData&) = delete;  // qbase/kbase may point into q_copy/k_copy
  HeadData(HeadData&&) = default;      // a moved vector keeps its buffer
  std::int64_t nq = 0, nk = 0, d = 0;
  std::int64_t offset = 0;  // p(i) = i + offset
  double scale = 1;         // 1 / sqrt(d)
  // Rows [nq, d] and [nk, d], d contiguous floats each: the tensor's own rows when they are
  // dense in memory, else a copy.
  const float* qbase = nullptr;
  const float* kbase = nullptr;
  std::vector<float> q_copy, k_copy;
  const float* qrow(std::int64_t i) const { return qbase + i * d; }
  const float* krow(std::int64_t j) const { return kbase + j * d; }
  std::int64_t pos(std::int64_t i) const { return i + offset; }
  // Keys at or before position p: min(nk, max(0, p + 1)).
  std::int64_t causal_keys(std::int64_t p) const { return std::clamp<std::int64_t>(p + 1, 0, nk); }
};

// Query head h and its K/V head (h / (Hq / Hkv)) of batch b: the views' rows in place when
// each head's rows are dense ([N, d] with stride d), else copied.
HeadData head_data(const ConstTensorView& q, const ConstTensorView& k, std::int64_t b, int h);

// a . b over d floats, accumulated in double.
inline double dot(const float* a, const float* b, std::int64_t d) {
  double s = 0;
  for (std::int64_t x = 0; x < d; ++x) s += static_cast<double>(a[x]) * static_cast<double>(b[x]);
  return s;
}
inline double dot(const double* a, const float* b, std::int64_t d) {
  double s = 0;
  for (std::int64_t x = 0; x < d; ++x) s += a[x] * static_cast<double>(b[x]);
  return s;
}

// Indices of the `count` largest of score[0, n) in increasing index order; among equal scores
// the lower index ranks first. count >= n keeps all.
std::vector<std::int64_t> top_indices(const double* score, std::int64_t n, std::int64_t count);

// Sorted, distinct indices as key ranges [x * width, min(nk, (x + 1) * width)).
std::vector<KeyRange> index_ranges(const std::vector<std::int64_t>& idx, std::int64_t width,
                                   std::int64_t nk);

// Stores `groups` (one list of key ranges per block of `rows` query positions, the first being
// block g0 = floor(p / rows)) as the groups of `s` (origin 0).
void set_block_groups(SelectedHead& s, std::int64_t rows, std::int64_t g0,
                      std::vector<std::vector<KeyRange>>& groups, std::int64_t nk);

// Runs f(i, out) for every query i in parallel, out = that query's key ranges, and stores them
// as one group per query (group_rows = 1) in `s`.
template <class F>
void per_query_groups(SelectedHead& s, const HeadData& in, F f) {
  std::vector<std::vector<KeyRange>> rows(static_cast<std::size_t>(in.nq));
  tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, in.nq, 16),
                    [&](const tbb::blocked_range<std::int64_t>& r) {
                      for (std::int64_t i = r.begin(); i != r.end(); ++i)
                        f(i, rows[static_cast<std::size_t>(i)]);
                    });
  s.group_rows = 1;
  s.origin = 0;
  s.first_group = in.offset;  // group(i) = p(i) - p(0) = i
  for (auto& r : rows) s.add_group(std::move(r), in.nk);
}

// The attention of the last L queries, the estimate vertical_slash and flexprefill share: per
// row r in [nq - L, nq) (in order), P = softmax of s q_r . k_j over the keys j <= p(r) (in
// double), and vert[j] += P[r, j] / div, slash[p(r) - j] += P[r, j] / div (nk entries each).
// div = 1 gives the sums (x / 1 is exact), div = L the means.
struct LastQueryMass {
  std::vector<double> vert, slash;
};
LastQueryMass last_query_mass(const HeadData& in, std::int64_t L, double div);

// The selectors (one file each but the block ones, which share block_selectors.cpp).
SelectedHead select_oracle(const Selector& s, const HeadData& in, SelectionCost& cost);
SelectedHead select_vertical_slash(const Selector& s, const HeadData& in, SelectionCost& cost);
SelectedHead select_block_topk(const Selector& s, const HeadData& in, SelectionCost& cost);
SelectedHead select_moba(const Selector& s, const HeadData& in, SelectionCost& cost);
SelectedHead select_quest(const Selector& s, const HeadData& in, SelectionCost& cost);
SelectedHead select_nsa(const Selector& s, const HeadData& in, SelectionCost& cost);
SelectedHead select_flexprefill(const Selector& s, const HeadData& in, SelectionCost& cost);
SelectedHead select_xattention(const Selector& s, const HeadData& in, SelectionCost& cost);

// vertical_slash's column and offset choice (shared with the reference, which builds its mask
// from them by the rule): V and S, each sorted ascending.
struct VerticalSlash {
  std::vector<std::int64_t> columns, offsets;
};
VerticalSlash vertical_slash_lines(const Selector& s, const HeadData& in);

}  // namespace spattn::select_detail
