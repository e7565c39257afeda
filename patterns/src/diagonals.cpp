// Diagonal covers: run arithmetic.
#include "spattn/patterns/diagonals.hpp"

#include <algorithm>
#include <numeric>

namespace spattn {
namespace {

// Smallest o >= lo with o = residue (mod step), and largest o <= hi.
DiagonalRun aligned(std::int64_t lo, std::int64_t hi, std::int64_t step, std::int64_t residue) {
  DiagonalRun r;
  r.step = step;
  r.first = residue + ceil_div(lo - residue, step) * step;
  r.last = residue + floor_div(hi - residue, step) * step;
  if (r.first > r.last) return DiagonalRun{};
  return r;
}

}  // namespace

DiagonalRun make_run(const Geometry& g, std::int64_t lo, std::int64_t hi, std::int64_t step,
                     std::int64_t residue) {
  if (step < 1) return DiagonalRun{};
  return aligned(std::max(lo, min_offset(g)), std::min(hi, max_offset(g)), step,
                 floor_mod(residue, step));
}

DiagonalRun intersect(const DiagonalRun& a, const DiagonalRun& b) {
  if (a.empty() || b.empty()) return DiagonalRun{};
  const DiagonalRun& coarse = a.step >= b.step ? a : b;
  const DiagonalRun& fine = a.step >= b.step ? b : a;
  if (coarse.step % fine.step != 0) return DiagonalRun{};
  // The coarse run's offsets all share one residue mod fine.step; it must be the fine run's.
  if (((coarse.first - fine.first) % fine.step) != 0) return DiagonalRun{};
  return aligned(std::max(a.first, b.first), std::min(a.last, b.last), coarse.step,
                 floor_mod(coarse.first, coarse.step));
}

DiagonalCover intersect(const DiagonalCover& a, const DiagonalCover& b) {
  DiagonalCover out;
  for (const DiagonalRun& x : a)
    for (const DiagonalRun& y : b) {
      const DiagonalRun r = intersect(x, y);
      if (!r.empty()) out.push_back(r);
    }
  return out;
}

std::vector<std::int64_t> cover_offsets(const DiagonalCover& cover) {
  std::vector<std::int64_t> out;
  for (const DiagonalRun& r : cover)
    for (std::int64_t o = r.first; !r.empty() && o <= r.last; o += r.step) out.push_back(o);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace spattn
