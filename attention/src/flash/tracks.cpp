// Residue tracks (tracks.hpp).
#include "tracks.hpp"

#include <algorithm>
#include <numeric>

#include "spattn/patterns/geometry.hpp"

namespace spattn::flash {

std::int64_t TrackPlan::query_blocks() const {
  std::int64_t n = 0;
  for (const auto& m : members) n += (static_cast<std::int64_t>(m.size()) + queries - 1) / queries;
  return n;
}

TrackPlan make_track_plan(const std::vector<std::int64_t>& offsets, std::int64_t g,
                          std::int64_t shift) {
  TrackPlan tp;
  if (offsets.empty()) return tp;
  tp.step = std::lcm<std::int64_t>(16, g);
  tp.omin = offsets.front();
  tp.omax = offsets.back();
  tp.bits.assign(static_cast<std::size_t>((tp.omax - tp.omin) / 64 + 1), 0);
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(tp.step), 0);
  for (const std::int64_t o : offsets) {
    const std::int64_t k = o - tp.omin;
    tp.bits[k / 64] |= std::uint64_t{1} << (k % 64);
    seen[floor_mod(o, tp.step)] = 1;
  }
  for (std::int64_t r = 0; r < tp.step; ++r)
    if (seen[r]) tp.deltas.push_back(r);
  std::vector<std::uint8_t> used(16, 0);
  for (const std::int64_t delta : tp.deltas) used[floor_mod(shift - delta, 16)] = 1;
  for (int r = 0; r < 16; ++r)
    if (used[r]) tp.aligns.push_back(r);
  for (const std::int64_t delta : tp.deltas) {
    const int r = static_cast<int>(floor_mod(shift - delta, 16));
    tp.align_of.push_back(static_cast<int>(std::lower_bound(tp.aligns.begin(), tp.aligns.end(), r) -
                                           tp.aligns.begin()));
  }
  tp.members.resize(static_cast<std::size_t>(tp.step / 16));
  // Key vectors a query vector meets per residue, on average.
  const std::int64_t band =
      static_cast<std::int64_t>(offsets.size()) / static_cast<std::int64_t>(tp.deltas.size());
  tp.queries = band < 4 ? 1 : band < 16 ? 2 : kTrackQueries;
  return tp;
}

void set_track_members(TrackPlan& tp, const std::vector<std::uint8_t>& row_diagonal,
                       std::int64_t block_q, std::int64_t nq) {
  if (tp.empty()) return;
  const std::int64_t per = tp.step / 16;
  for (auto& m : tp.members) m.clear();
  for (std::int64_t v = 0; 16 * v < nq; ++v)
    if (row_diagonal[(16 * v) / block_q]) tp.members[v % per].push_back(v);
}

std::vector<TrackGroup> track_groups(const TrackPlan& tp) {
  std::vector<TrackGroup> out;
  const std::int64_t size = std::int64_t{kTrackGroupBlocks} * tp.queries;
  for (std::size_t tau = 0; tau < tp.members.size(); ++tau) {
    const std::int64_t n = static_cast<std::int64_t>(tp.members[tau].size());
    for (std::int64_t first = 0; first < n; first += size)
      out.push_back({static_cast<std::int64_t>(tau), first,
                     static_cast<int>(std::min<std::int64_t>(size, n - first))});
  }
  return out;
}

}  // namespace spattn::flash
