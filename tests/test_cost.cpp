// The cost model against brute-force counts over Pattern::allows.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "attention_testing.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/attention/reference.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

// Area of the kept tiles by brute force: a tile is kept iff it holds an allowed pair (the layout
// drops empty tiles), so count tiles with an allowed pair and add their clipped areas.
std::int64_t brute_force_computed(const spattn::Pattern& p, const spattn::Geometry& g) {
  std::int64_t area = 0;
  for (int h = 0; h < g.heads; ++h)
    for (std::int64_t q0 = 0; q0 < g.nq; q0 += g.block_q)
      for (std::int64_t k0 = 0; k0 < g.nk; k0 += g.block_k) {
        const std::int64_t q1 = std::min(q0 + g.block_q, g.nq), k1 = std::min(k0 + g.block_k, g.nk);
        bool any = false;
        for (std::int64_t i = q0; i < q1 && !any; ++i)
          for (std::int64_t j = k0; j < k1 && !any; ++j) any = p.allows(g, h, i, j);
        if (any) area += (q1 - q0) * (k1 - k0);
      }
  return area;
}

}  // namespace

TEST_CASE("cost: counts equal brute-force counts", "[cost]") {
  struct Case {
    std::string spec;
    std::int64_t nq, nk;
    int heads, bq, bk;
  };
  const Case cases[] = {
      {"sliding(10) | sink(2)", 100, 100, 1, 16, 32},
      {"causal", 70, 130, 1, 32, 16},
      {"window(3, 7) & causal", 90, 90, 2, 16, 16},
      {"heads(0: dense; 1: sliding(4); 2: causal - sliding(20))", 65, 77, 3, 32, 64},
  };
  for (const Case& c : cases) {
    INFO(c.spec);
    spattn::Geometry g;
    g.nq = c.nq, g.nk = c.nk, g.heads = c.heads, g.block_q = c.bq, g.block_k = c.bk;
    const auto p = spattn::parse_spec(c.spec);
    const auto layout = spattn::build_layout(*p, g);
    const std::int64_t allowed = spattn::test::brute_force_pairs(*p, g);
    const std::int64_t computed = brute_force_computed(*p, g);
    const std::int64_t batch = 3, d = 40, hq = c.heads, hkv = 1;
    const auto cost = spattn::attention_cost(layout, batch, hq, hkv, d, 2);
    CHECK(cost.allowed_pairs == batch * allowed);
    CHECK(cost.tile_area_pairs == batch * computed);
    // v1's whole-tile path computes exactly the tile area; every plan computes each allowed
    // pair at least once.
    const auto tiles =
        spattn::attention_cost(layout, batch, hq, hkv, d, 2, spattn::ExecutionPath::Tiles);
    CHECK(tiles.computed_pairs == batch * computed);
    CHECK(tiles.paths.whole == batch * computed);
    CHECK(cost.computed_pairs >= cost.allowed_pairs);
    CHECK(cost.computed_pairs == cost.paths.total());
    // FLOPs: 4 d per pair (2 d for q.k, 2 d for p v).
    CHECK(cost.useful_flops == 4.0 * d * static_cast<double>(batch * allowed));
    CHECK(tiles.computed_flops == 4.0 * d * static_cast<double>(batch * computed));
    CHECK(cost.dense_flops == 4.0 * d * static_cast<double>(batch * hq * c.nq * c.nk));
    CHECK(tiles.efficiency == Approx(static_cast<double>(allowed) / static_cast<double>(computed)));
    CHECK(cost.efficiency ==
          Approx(static_cast<double>(batch * allowed) / static_cast<double>(cost.computed_pairs)));
    CHECK(spattn::useful_gflops(cost, 2.0) == Approx(cost.useful_flops / 2.0 * 1e-9));
    CHECK(spattn::computed_gflops(cost, 0.5) == Approx(cost.computed_flops / 0.5 * 1e-9));
    // Written: o and lse, float32, per query row of every (batch, head).
    CHECK(cost.bytes_written == 4.0 * static_cast<double>(batch * hq * c.nq * (d + 1)));
    CHECK(cost.output_bytes == 4 * batch * hq * c.nq * (d + 1));
    CHECK(cost.input_bytes == 4 * (batch * hq * c.nq * d + 2 * batch * hkv * c.nk * d));
  }
}

TEST_CASE("cost: a shared one-head layout counts once per query head and batch", "[cost]") {
  spattn::Geometry g;
  g.nq = 50, g.nk = 50, g.heads = 1, g.block_q = 16, g.block_k = 16;
  const auto p = spattn::parse_spec("causal");
  const auto shared = spattn::build_layout(*p, g);
  g.heads = 8;
  const auto per_head = spattn::build_layout(*p, g);
  // causal at n = 50 allows 50 * 51 / 2 = 1275 pairs per head.
  const auto a = spattn::attention_cost(shared, 2, 8, 2, 16, 1);
  const auto b = spattn::attention_cost(per_head, 2, 8, 2, 16, 1);
  CHECK(a.allowed_pairs == 2 * 8 * 1275);
  CHECK(b.allowed_pairs == 2 * 8 * 1275);
  CHECK(a.computed_pairs == b.computed_pairs);
  CHECK(a.kept_tiles == b.kept_tiles);
  CHECK(a.bytes_read == b.bytes_read);
  // 4 query blocks (16, 16, 16, 2 rows): the causal layout keeps the lower triangle of tiles,
  // 1 + 2 + 3 + 4 = 10 tiles per head.
  CHECK(a.kept_tiles == 2 * 8 * 10);
}

TEST_CASE("cost: bytes read follow the stated model", "[cost]") {
  // dense at nq = nk = 40, blocks 16: 3 x 3 tiles, all Full, key blocks of 16, 16, 8 keys.
  // Per query head: Q 40 * d * 4; each of the 3 query blocks reads K and V of all 40 keys:
  // 3 * 2 * 40 * d * 4.
  spattn::Geometry g;
  g.nq = 40, g.nk = 40, g.heads = 1, g.block_q = 16, g.block_k = 16;
  const auto layout = spattn::build_layout(*spattn::parse_spec("dense"), g);
  const std::int64_t d = 8;
  const auto c = spattn::attention_cost(layout, 1, 2, 1, d, 1);
  CHECK(c.bytes_read == 2.0 * (40 * d * 4 + 3 * 2 * 40 * d * 4));
  CHECK(c.partial_tiles == 0);
  CHECK(c.efficiency == 1.0);
}

TEST_CASE("cost: memory estimates and bad shapes", "[cost]") {
  spattn::Geometry g;
  g.nq = 30, g.nk = 60, g.heads = 1, g.block_q = 16, g.block_k = 32;
  const auto layout = spattn::build_layout(*spattn::parse_spec("causal"), g);
  spattn::AttentionShape s;
  s.batch = 2, s.q_heads = 4, s.kv_heads = 2, s.nq = 30, s.nk = 60, s.dim = 16;
  const auto c = spattn::attention_cost(layout, s, 3);
  CHECK(c.reference_bytes == spattn::reference_memory_bytes(s));
  // Textbook: 3 concurrent tasks (min(threads, B * Hq)), plus outputs.
  CHECK(c.textbook_bytes == spattn::textbook_workspace_bytes(30, 60, 16, 3) + c.output_bytes);
  // Flash: group Hq / Hkv = 2 query heads share a step, so 2 x 16 = 32 lanes for a row item, but
  // a residue-class item takes up to 64 queries of one head: 64 lanes. Per thread, in floats:
  // Q^T and O^T 2 x 16 x 64 and the max and sum 2 x 64 for each of the 4 rows of a blocked row
  // item, scores 64 x 64 (a gather panel of 64 keys), 2 x 64 scratch values, K and V packing 2 x 32
  // x 16, two masks of 32 keys x 64 lanes bits = 4096 bits = 128 floats, the gather panel 2 x 64 x
  // 16 and its lane bits 64 x 4 uint16 = 128 floats, the diagonal scratch 64 x 16 + 64 int64 (128)
  // + 64 uint16 (32), 256 floats of 64-byte rounding, and the residue tracks' Q^T and O^T of an
  // item's 16 vectors (2 x 16 x 16 x 16), their max and sum and one block's probabilities (1024
  // floats) and 768 floats of rounding; for score modifications, per lane a query position and a
  // slope (2 x 64), key indices of a step and of the panel (64 + 64), 2 x 16 for the diagonal
  // step and 96 floats of rounding. The whole- tile path uses no diagonals, so no transposed K
  // and V are added.
  const std::int64_t per_thread = 4 * (2 * 16 * 64 + 2 * 64) + 64 * 64 + 2 * 64 + 2 * 32 * 16 +
                                  2 * 32 * 64 / 32 + 2 * 64 * 16 + 128 + 64 * 16 + 128 + 32 + 256 +
                                  512 * 16 + 1792 + 2 * 64 + 64 + 64 + 2 * 16 + 96;
  const auto tiles = spattn::attention_cost(layout, s, 3, spattn::ExecutionPath::Tiles);
  CHECK(tiles.flash_workspace_bytes == 3 * 4 * per_thread);
  // Auto runs causal's 60 diagonals here (nk = 60): K and V transposed, [2][2][16][60 + 32].
  if (c.paths.diagonal_rows > 0)
    CHECK(c.flash_workspace_bytes == 3 * 4 * per_thread + 2 * 4 * 2 * 2 * 16 * (60 + 32));
  s.nk = 61;
  CHECK_THROWS_AS(spattn::attention_cost(layout, s), spattn::UsageError);
  CHECK_THROWS_AS(spattn::attention_cost(layout, 1, 4, 3, 16), spattn::UsageError);
}
