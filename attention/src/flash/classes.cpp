// Residue classes (classes.hpp).
#include "classes.hpp"

#include <algorithm>

#include "spattn/patterns/geometry.hpp"

namespace spattn::flash {

ClassPlan make_class_bands(const std::vector<std::int64_t>& offsets, std::int64_t s) {
  ClassPlan cp;
  if (offsets.empty() || s < 1) return cp;
  // Per residue, the offsets in increasing order must be delta + k s for consecutive k.
  std::vector<ClassBand> bands;
  std::vector<std::int64_t> count;
  for (const std::int64_t o : offsets) {
    const std::int64_t delta = floor_mod(o, s), k = floor_div(o, s);
    auto it = std::find_if(bands.begin(), bands.end(),
                           [&](const ClassBand& b) { return b.delta == delta; });
    if (it == bands.end()) {
      bands.push_back({delta, k, k});
      count.push_back(1);
      continue;
    }
    if (k != it->k1 + 1) return cp;  // a gap in the residue's offsets
    it->k1 = k;
    ++count[static_cast<std::size_t>(it - bands.begin())];
  }
  std::sort(bands.begin(), bands.end(),
            [](const ClassBand& a, const ClassBand& b) { return a.delta < b.delta; });
  cp.step = s;
  cp.bands = std::move(bands);
  return cp;
}

void set_class_items(ClassPlan& cp, int queries, const std::vector<std::uint8_t>& row_diagonal,
                     std::int64_t block_q, std::int64_t nq, std::int64_t nk, std::int64_t shift) {
  cp.queries = queries;
  cp.items.clear();
  cp.pairs = 0;
  if (cp.empty()) return;
  const std::int64_t s = cp.step;
  for (std::int64_t c = 0; c < s; ++c) {
    const std::int64_t a_min = ceil_div(shift - c, s), a_max = floor_div(shift + nq - 1 - c, s);
    for (std::int64_t a0 = a_min; a0 <= a_max; a0 += queries) {
      ClassItem item{c, a0, 0};
      for (int q = 0; q < queries && a0 + q <= a_max; ++q) {
        const std::int64_t i = (a0 + q) * s + c - shift;
        if (row_diagonal[i / block_q]) item.lanes |= std::uint64_t{1} << q;
      }
      if (item.lanes == 0) continue;
      for_each_class_chunk(
          cp, item, nk, [&](const ClassChunk& ch) { cp.pairs += std::int64_t{queries} * ch.keys; });
      cp.items.push_back(item);
    }
  }
}

void class_chunk_keep(const ClassPlan& cp, const ClassItem& item, const ClassChunk& ch,
                      std::int64_t lanes, std::uint16_t* keep) {
  const std::int64_t vecs = lanes / 16, per = cp.queries / 16;
  for (int x = 0; x < ch.keys; ++x) {
    // Queries q with lo <= a0 + q - (b0 + x) <= hi: one run of lanes.
    const std::int64_t base = ch.b0 + x - item.a0;
    const std::int64_t q0 = std::max<std::int64_t>(0, base + ch.lo);
    const std::int64_t q1 = std::min<std::int64_t>(cp.queries - 1, base + ch.hi);
    std::uint64_t run = 0;
    if (q0 <= q1) {
      const std::uint64_t upto = q1 == 63 ? ~std::uint64_t{0} : (std::uint64_t{1} << (q1 + 1)) - 1;
      run = upto & ~((std::uint64_t{1} << q0) - 1) & item.lanes;
    }
    for (std::int64_t w = 0; w < vecs; ++w)
      keep[x * vecs + w] = static_cast<std::uint16_t>(run >> (16 * (w % per)));
  }
}

}  // namespace spattn::flash
