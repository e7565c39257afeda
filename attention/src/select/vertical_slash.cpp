// vertical_slash (MInference): columns and diagonals from the last queries' attention, as the
// token rule (mode exact) or the 64 x 64 kernel layout (mode pit64).
#include <cmath>
#include <limits>

#include "common.hpp"

namespace spattn::select_detail {
namespace {

constexpr std::int64_t kForcedColumns = 30;   // key columns j < 30 (sinks)
constexpr std::int64_t kForcedOffsets = 100;  // diagonal offsets o < 100 (the local band)
constexpr std::int64_t kMinColumns = 30, kMinOffsets = 50;
constexpr std::int64_t kKernelBlock = 64;

// The kernel layout of one 64-query block whose positions start at m0: its key ranges (the
// slash chunks and the columns outside them). offsets_desc: S sorted descending; columns: V
// ascending.
std::vector<KeyRange> pit64_block(std::int64_t m0, const std::vector<std::int64_t>& offsets_desc,
                                  const std::vector<std::int64_t>& columns) {
  const std::int64_t m1 = m0 + kKernelBlock;
  std::vector<KeyRange> ranges;
  bool open = false;
  KeyRange cur{0, 0};
  for (std::int64_t o : offsets_desc) {
    if (o >= m1) continue;
    const std::int64_t e = std::max(m1 - o, kKernelBlock);
    if (!open) {
      cur = {e - kKernelBlock, e};
      open = true;
    } else if (e > cur.end + kKernelBlock) {
      ranges.push_back(cur);
      cur = {e - kKernelBlock, e};
    } else if (e > cur.end) {
      cur.end += kKernelBlock;
    }
  }
  if (open) ranges.push_back(cur);
  // Columns: verticals below the last range's end that no range covers.
  std::vector<KeyRange> out = ranges;
  const std::int64_t limit = ranges.empty() ? m1 : ranges.back().end;
  std::size_t r = 0;
  for (std::int64_t c : columns) {
    if (c >= limit) break;
    while (r < ranges.size() && ranges[r].end <= c) ++r;
    if (r < ranges.size() && ranges[r].begin <= c) continue;
    out.push_back({c, c + 1});
  }
  return out;
}

}  // namespace

VerticalSlash vertical_slash_lines(const Selector& sel, const HeadData& in) {
  const Args& a = sel.args();
  const std::int64_t L = std::min(a.get_int("last_q"), in.nq);
  LastQueryMass mass = last_query_mass(in, L, 1.0);  // sums of P
  std::vector<double>& vert = mass.vert;
  std::vector<double>& slash = mass.slash;
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (std::int64_t j = 0; j < std::min(in.nk, kForcedColumns); ++j) vert[j] = inf;
  for (std::int64_t o = 0; o < std::min(in.nk, kForcedOffsets); ++o) slash[o] = inf;
  const std::int64_t kv = std::min(in.nk, std::max(a.get_int("v"), kMinColumns));
  const std::int64_t ks = std::min(in.nk, std::max(a.get_int("s"), kMinOffsets));
  return {top_indices(vert.data(), in.nk, kv), top_indices(slash.data(), in.nk, ks)};
}

SelectedHead select_vertical_slash(const Selector& sel, const HeadData& in, SelectionCost& cost) {
  const std::int64_t L = std::min(sel.args().get_int("last_q"), in.nq);
  cost.flops += 2.0 * static_cast<double>(L) * static_cast<double>(in.nk * in.d);
  cost.bytes += 4.0 * static_cast<double>((L + in.nk) * in.d);
  VerticalSlash vs = vertical_slash_lines(sel, in);
  SelectedHead s;
  s.causal = true;
  if (sel.args().get_string("mode") == "exact") {
    s.columns = std::move(vs.columns);
    s.offsets = std::move(vs.offsets);
    return s;
  }
  // pit64: blocks of 64 query rows (by index, as the kernel), positions m0 = p(64 b).
  std::vector<std::int64_t> desc(vs.offsets.rbegin(), vs.offsets.rend());
  const std::int64_t blocks = (in.nq + kKernelBlock - 1) / kKernelBlock;
  std::vector<std::vector<KeyRange>> groups(static_cast<std::size_t>(blocks));
  tbb::parallel_for(std::int64_t{0}, blocks, [&](std::int64_t b) {
    groups[static_cast<std::size_t>(b)] = pit64_block(in.pos(b * kKernelBlock), desc, vs.columns);
  });
  s.group_rows = kKernelBlock;
  s.origin = in.offset;  // group(i) = floor(i / 64)
  s.first_group = 0;
  for (auto& grp : groups) s.add_group(std::move(grp), in.nk);
  return s;
}

}  // namespace spattn::select_detail
