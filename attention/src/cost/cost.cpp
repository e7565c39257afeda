// The cost model (see cost.hpp): counts from the layout, scaled to every (batch, query head).
#include "spattn/attention/cost.hpp"

#include <fmt/format.h>
#include <oneapi/tbb/info.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "../flash/plan.hpp"
#include "../saturating.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {
namespace {

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* what) {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r))
    throw UsageError(fmt::format("the {} ({} x {}) overflow a 64-bit count", what, a, b));
  return r;
}
using detail::saturating_add;
using detail::saturating_mul;

// Bytes one query head reads from K, V and masks over one BlockLayout (see the model).
double kv_bytes_read(const BlockLayout& bl, std::int64_t kv_row_floats) {
  double bytes = 0;
  const auto row_ptr = bl.row_ptr();
  const auto cols = bl.col_index();
  for (std::int64_t r = 0; r < bl.q_blocks(); ++r) {
    for (std::int64_t t = row_ptr[r]; t < row_ptr[r + 1]; ++t) {
      bytes += static_cast<double>(bl.tile(r, cols[t]).cols() * kv_row_floats) * sizeof(float);
      if (bl.tile_class(t) == TileClass::Partial)
        bytes += static_cast<double>(bl.mask_words()) * sizeof(std::uint64_t);
    }
  }
  return bytes;
}

}  // namespace

std::int64_t flash_workspace_estimate(const Geometry& g, std::int64_t dim, int threads,
                                      std::int64_t group) {
  const std::int64_t bq = g.block_q, bk = g.block_k;
  // Lanes of a row item, or of a residue-class item (up to 64 queries of one head).
  const std::int64_t lanes = std::max<std::int64_t>(
      64, bq * std::clamp<std::int64_t>(group, 1, std::max<int>(1, 256 / bq)));
  // Floats: Q^T, O^T, S^T (block_k or a 64-key gather panel), per-lane vectors, K/V packing tiles,
  // two lane-mask tiles; the gather panel (K and V rows of 64 keys, their lane bits); the diagonal
  // path's probabilities, keys and lane bits (64 slots); the residue tracks' Q^T and O^T of 16
  // query vectors (an item's 4 blocks of 4) and their scratch; 64-byte rounding of the buffers.
  // Q^T, O^T, max and sum are kept for the 4 rows of a key-loop-blocked row item. With score
  // modifications: per lane a query position and a slope, per key of a step and of the gather
  // panel a key index, 16 positions and slopes of the diagonal step (and their rounding).
  const std::int64_t per_thread = lanes * (4 * (2 * dim + 2) + std::max<std::int64_t>(bk, 64) + 2) +
                                  2 * bk * dim + (2 * bk * lanes + 31) / 32 + 2 * 64 * dim +
                                  2 * lanes + 64 * 16 + 128 + 32 + 256 + 512 * dim + 1792 +
                                  2 * lanes + std::max<std::int64_t>(bk, 64) + 64 + 32 + 96;
  const int t = threads > 0 ? threads : tbb::info::default_concurrency();
  return saturating_mul(saturating_mul(per_thread, t), sizeof(float));
}

AttentionCost attention_cost(const Layout& layout, const AttentionShape& s, int threads,
                             ExecutionPath path) {
  const Geometry& g = layout.geometry;
  if (g.nq != s.nq || g.nk != s.nk)
    throw UsageError(
        fmt::format("the layout is for nq = {}, nk = {} but the shape has nq = {}, "
                    "nk = {}",
                    g.nq, g.nk, s.nq, s.nk));
  if (g.heads != s.q_heads && g.heads != 1)
    throw UsageError(
        fmt::format("the layout has {} heads but the shape has {} query heads: use "
                    "{} or 1",
                    g.heads, s.q_heads, s.q_heads));
  if (s.batch < 1 || s.kv_heads < 1 || s.q_heads % s.kv_heads != 0 || s.dim < 1)
    throw UsageError(
        fmt::format("bad attention shape: batch {}, {} query heads, {} K/V heads, "
                    "head dim {}",
                    s.batch, s.q_heads, s.kv_heads, s.dim));
  if (threads < 0) throw UsageError(fmt::format("threads is {}: it must be >= 0", threads));

  // counts() sums the layout's heads; a one-head layout stands for every query head.
  const LayoutCounts lc = layout.counts();
  const std::int64_t copies = checked_mul(s.batch, g.heads == 1 ? s.q_heads : 1, "batch x heads");
  AttentionCost c;
  c.allowed_pairs = checked_mul(lc.allowed_pairs, copies, "allowed pairs");
  c.tile_area_pairs = checked_mul(lc.computed_pairs, copies, "computed pairs");
  // The plan of each distinct head layout once, counted for every query head using it.
  const std::vector<flash::HeadPlan> plans = flash::make_layout_plans(layout, path);
  const flash::DiagonalBuffers buffers = flash::diagonal_buffers(plans);
  for (std::int64_t h = 0; h < (g.heads == 1 ? 1 : s.q_heads); ++h)
    c.paths +=
        plans[layout.head_to_distinct[h]].pairs.scaled(s.batch * (g.heads == 1 ? s.q_heads : 1));
  c.computed_pairs = c.paths.total();
  c.kept_tiles = checked_mul(lc.kept_tiles, copies, "kept tiles");
  c.full_tiles = checked_mul(lc.full_tiles, copies, "full tiles");
  c.partial_tiles = checked_mul(lc.partial_tiles, copies, "partial tiles");
  // Q K^T: 2 d per pair; P V: 2 d_v.
  const std::int64_t dv = s.value_dim();
  const double flops_per_pair = 2.0 * static_cast<double>(s.dim) + 2.0 * static_cast<double>(dv);
  c.useful_flops = flops_per_pair * static_cast<double>(c.allowed_pairs);
  c.computed_flops = flops_per_pair * static_cast<double>(c.computed_pairs);
  c.dense_flops = flops_per_pair * static_cast<double>(s.batch) * static_cast<double>(s.q_heads) *
                  static_cast<double>(s.nq) * static_cast<double>(s.nk);
  c.efficiency = c.computed_pairs > 0
                     ? static_cast<double>(c.allowed_pairs) / static_cast<double>(c.computed_pairs)
                     : 1.0;

  const double rows =
      static_cast<double>(s.batch) * static_cast<double>(s.q_heads) * static_cast<double>(s.nq);
  // K/V bytes of each distinct head layout once, then summed over the query heads using it.
  std::vector<double> per_distinct(layout.distinct.size());
  for (std::size_t u = 0; u < layout.distinct.size(); ++u)
    per_distinct[u] = kv_bytes_read(*layout.distinct[u], s.dim + dv);
  double kv = 0;  // summed over query heads, one batch
  for (std::int64_t h = 0; h < s.q_heads; ++h)
    kv += per_distinct[layout.head_to_distinct[g.heads == 1 ? 0 : h]];
  c.bytes_read =
      rows * static_cast<double>(s.dim) * sizeof(float) + static_cast<double>(s.batch) * kv;
  c.bytes_written = rows * static_cast<double>(dv + 1) * sizeof(float);

  const std::int64_t q_elems =
      saturating_mul(saturating_mul(s.batch, s.q_heads), saturating_mul(s.nq, s.dim));
  const std::int64_t kv_elems =
      saturating_mul(saturating_mul(s.batch, s.kv_heads), saturating_mul(s.nk, s.dim + dv));
  c.input_bytes = saturating_mul(saturating_add(q_elems, kv_elems), sizeof(float));
  c.output_bytes = saturating_mul(
      saturating_mul(saturating_mul(s.batch, s.q_heads), saturating_mul(s.nq, dv + 1)),
      sizeof(float));
  c.layout_bytes = lc.bytes;
  const std::int64_t dm = std::max(s.dim, dv);  // the executor's per-row buffer stride
  c.flash_workspace_bytes = flash_workspace_estimate(g, dm, threads, s.group());
  const std::int64_t kv_floats =
      saturating_mul(saturating_mul(2, saturating_mul(s.batch, s.kv_heads)), dm);
  if (buffers.transposed)  // the transposed K and V of the single-vector diagonal path
    c.flash_workspace_bytes =
        saturating_add(c.flash_workspace_bytes,
                       flash::large_buffer_bytes(saturating_mul(
                           saturating_mul(kv_floats, saturating_add(s.nk, 32)), sizeof(float))));
  if (!buffers.aligns.empty())  // the residue tracks' 16-key panels of K and V
    c.flash_workspace_bytes = saturating_add(
        c.flash_workspace_bytes,
        flash::large_buffer_bytes(saturating_mul(
            saturating_mul(kv_floats, static_cast<std::int64_t>(buffers.aligns.size())),
            saturating_mul(flash::panel_count(s.nk) * 16, sizeof(float)))));
  c.reference_bytes = reference_memory_bytes(s);
  const int t = threads > 0 ? threads : tbb::info::default_concurrency();
  const std::int64_t slots = std::min<std::int64_t>(t, saturating_mul(s.batch, s.q_heads));
  c.textbook_bytes =
      saturating_add(textbook_workspace_bytes(s.nq, s.nk, dm, slots), c.output_bytes);
  return c;
}

AttentionCost attention_cost(const Layout& layout, std::int64_t batch, std::int64_t q_heads,
                             std::int64_t kv_heads, std::int64_t dim, int threads,
                             ExecutionPath path) {
  AttentionShape s;
  s.batch = batch;
  s.q_heads = q_heads;
  s.kv_heads = kv_heads;
  s.nq = layout.geometry.nq;
  s.nk = layout.geometry.nk;
  s.dim = dim;
  return attention_cost(layout, s, threads, path);
}

double gflops_per_second(double flops, double seconds) {
  return seconds > 0 ? flops / seconds * 1e-9 : 0.0;
}

void add_score_mod_cost(AttentionCost& c, const ScoreMod& mod, const AttentionShape& s) {
  const double pairs = static_cast<double>(c.computed_pairs);
  double flops = 0;
  if (mod.softcap) flops += kSoftcapFlopsPerPair * pairs;
  if (!mod.alibi_slopes.empty()) flops += kAlibiFlopsPerPair * pairs;
  if (mod.bias.on()) flops += kBiasFlopsPerPair * pairs;
  if (!mod.sinks.empty())
    flops +=
        static_cast<double>(s.batch * s.q_heads * s.nq) * static_cast<double>(s.value_dim() + 6);
  c.score_mod_flops = flops;
}

}  // namespace spattn
