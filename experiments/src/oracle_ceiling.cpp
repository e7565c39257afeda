// The oracle ceiling of a layout (see oracle_ceiling.hpp).
#include "spattn/experiments/oracle_ceiling.hpp"

#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <Eigen/Core>
#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>

#include "spattn/patterns/error.hpp"

namespace spattn::experiments {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Rows = Eigen::Map<const RowMat, 0, Eigen::OuterStride<>>;

// Calls f(row within the block, tile, tile index t) for the kept tiles of query block r.
template <class F>
void for_kept_tiles(const BlockLayout& l, std::int64_t r, F f) {
  const auto rp = l.row_ptr();
  for (std::int64_t t = rp[r]; t < rp[r + 1]; ++t) f(l.tile(r, l.col_index()[t]), t);
}

// Whether kept tile t keeps (row rr, column cc) of its rectangle.
bool keeps(const BlockLayout& l, std::int64_t t, std::int64_t rr, std::int64_t cc) {
  if (l.tile_class(t) == TileClass::Full) return true;
  const std::uint64_t* row = l.mask(l.mask_index()[t]) + rr * l.mask_row_words();
  return (row[cc >> 6] >> (cc & 63)) & 1u;
}

// The ceiling of one row: logits x of the baseline's keys, n kept keys.
double row_ceiling(std::vector<double>& x, std::int64_t n) {
  const auto size = static_cast<std::int64_t>(x.size());
  if (n <= 0 || size == 0) return 0;
  if (n >= size) return 1;
  const double m = *std::max_element(x.begin(), x.end());
  double total = 0;
  for (double& v : x) {
    v = std::exp(v - m);
    total += v;
  }
  std::nth_element(x.begin(), x.begin() + n, x.end(), std::greater<>());
  double top = 0;
  for (std::int64_t a = 0; a < n; ++a) top += x[a];
  return std::min(1.0, top / total);
}

}  // namespace

std::vector<std::int64_t> row_key_counts(const BlockLayout& l) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(l.nq()), 0);
  for (std::int64_t r = 0; r < l.q_blocks(); ++r)
    for_kept_tiles(l, r, [&](const Tile& tile, std::int64_t t) {
      for (std::int64_t rr = 0; rr < tile.rows(); ++rr) {
        std::int64_t c = tile.cols();
        if (l.tile_class(t) == TileClass::Partial) {
          const std::uint64_t* w = l.mask(l.mask_index()[t]) + rr * l.mask_row_words();
          c = 0;
          for (int x = 0; x < l.mask_row_words(); ++x) c += std::popcount(w[x]);
        }
        out[static_cast<std::size_t>(tile.q_begin + rr)] += c;
      }
    });
  return out;
}

OracleCeiling oracle_ceiling(const ConstTensorView& q, const ConstTensorView& k,
                             const std::vector<const Layout*>& layouts, const Layout& baseline,
                             double scale, int threads) {
  const std::int64_t B = q.batch(), H = q.heads(), nq = q.tokens(), d = q.dim();
  const Geometry& g = baseline.geometry;
  if (!q.rows_contiguous() || !k.rows_contiguous() || k.batch() != B || k.dim() != d ||
      k.heads() < 1 || H % k.heads() != 0 || nq != g.nq || k.tokens() != g.nk || H != g.heads)
    throw UsageError(
        fmt::format("oracle ceiling: q {} and k {} (rows contiguous) do not match the geometry {}",
                    q.shape_string(), k.shape_string(), g.describe()));
  if (layouts.empty() || (layouts.size() != 1 && static_cast<std::int64_t>(layouts.size()) != B))
    throw UsageError(fmt::format("oracle ceiling: {} layouts for batch {} (give 1 or {})",
                                 layouts.size(), B, B));
  for (const Layout* l : layouts)
    if (l->geometry.nq != g.nq || l->geometry.nk != g.nk || l->geometry.heads != g.heads)
      throw UsageError(fmt::format("oracle ceiling: a layout at {} beside the baseline at {}",
                                   l->geometry.describe(), g.describe()));
  const std::int64_t group = H / k.heads();
  const auto at = [&](std::int64_t b) -> const Layout& {
    return *layouts[layouts.size() == 1 ? 0 : static_cast<std::size_t>(b)];
  };
  std::vector<double> recall(static_cast<std::size_t>(B * H * nq), 0.0);
  auto run = [&] {
    // Kept keys per row, then each baseline query block's ceilings.
    std::vector<std::int64_t> counts(recall.size(), 0);
    tbb::parallel_for(std::int64_t{0}, B * H, [&](std::int64_t bh) {
      const std::vector<std::int64_t> c = row_key_counts(at(bh / H).head(static_cast<int>(bh % H)));
      std::copy(c.begin(), c.end(), counts.begin() + bh * nq);
    });
    const std::int64_t qb = baseline.head(0).q_blocks();
    tbb::parallel_for(std::int64_t{0}, B * H * qb, [&](std::int64_t task) {
      const std::int64_t b = task / (H * qb), h = (task / qb) % H, r = task % qb;
      const BlockLayout& base = baseline.head(static_cast<int>(h));
      const std::int64_t i0 = r * base.block_q(), rows = std::min(nq, i0 + base.block_q()) - i0;
      const Rows qm(q.row(b, h, i0), rows, d, Eigen::OuterStride<>(q.stride[2]));
      std::vector<std::vector<double>> logits(static_cast<std::size_t>(rows));
      RowMat s;
      for_kept_tiles(base, r, [&](const Tile& tile, std::int64_t t) {
        const Rows km(k.row(b, h / group, tile.k_begin), tile.cols(), d,
                      Eigen::OuterStride<>(k.stride[2]));
        s.noalias() = qm * km.transpose();
        for (std::int64_t rr = 0; rr < rows; ++rr)
          for (std::int64_t cc = 0; cc < tile.cols(); ++cc)
            if (keeps(base, t, rr, cc)) logits[rr].push_back(scale * s(rr, cc));
      });
      for (std::int64_t rr = 0; rr < rows; ++rr) {
        const std::size_t row = static_cast<std::size_t>((b * H + h) * nq + i0 + rr);
        recall[row] = row_ceiling(logits[rr], counts[row]);
      }
    });
  };
  if (threads > 0) {
    tbb::task_arena arena(threads);
    arena.execute(run);
  } else {
    run();
  }
  OracleCeiling out;
  if (recall.empty()) return {1, 1};
  double sum = 0, lo = std::numeric_limits<double>::infinity();
  for (double r : recall) {
    sum += r;
    lo = std::min(lo, r);
  }
  out.recall_mean = sum / static_cast<double>(recall.size());
  out.recall_min = lo;
  return out;
}

}  // namespace spattn::experiments
