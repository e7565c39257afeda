// Context-parallel attention under mpirun (-np 2, 3, 4 in ctest): every rank's output against the
// single-process executor on the whole sequence, the bytes and messages each rank sent and
// received against a brute-force count of the key tiles its queries need (pattern->allows over
// every pair) and against predict_communication, determinism for a given P, and the collective
// refusal of bad input on one rank. Exit 0 when every check on every rank passed.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/random.hpp"
#include "spattn/distributed/context_parallel.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using namespace spattn;
using distributed::Shard;
using distributed::ShardRange;

int rank = 0, size = 1, failures = 0;

void check(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "rank %d: FAILED: %s\n", rank, what.c_str());
  ++failures;
}

struct Case {
  std::string spec;
  std::int64_t n;
  int batch, q_heads, kv_heads, dim, block;
  bool per_head_layout = false;  // a layout of Hq heads (else one for all)
};

// The rows of `s` of t, in the shard's order.
Tensor take(const Tensor& t, const Shard& s) {
  Tensor out(t.shape[0], t.shape[1], s.size(), t.shape[3]);
  for (std::int64_t b = 0; b < t.shape[0]; ++b)
    for (std::int64_t h = 0; h < t.shape[1]; ++h)
      for (std::int64_t i = 0; i < s.size(); ++i)
        for (std::int64_t x = 0; x < t.shape[3]; ++x)
          out.view().at(b, h, i, x) = t.view().at(b, h, s.global_row(i), x);
  return out;
}

// Whether row i is in shard s.
bool holds(const Shard& s, std::int64_t i) {
  for (const ShardRange& r : s.ranges)
    if (i >= r.begin && i < r.end) return true;
  return false;
}

void run_case(const Case& c, bool zigzag) {
  const std::string name = c.spec + " n=" + std::to_string(c.n) + " P=" + std::to_string(size) +
                           (zigzag ? " zig-zag" : " contiguous");
  Tensor q(c.batch, c.q_heads, c.n, c.dim), k(c.batch, c.kv_heads, c.n, c.dim),
      v(c.batch, c.kv_heads, c.n, c.dim);
  fill_normal(q.view(), 11, 0);
  fill_normal(k.view(), 11, 1);
  fill_normal(v.view(), 11, 2);
  const PatternPtr pattern = parse_spec(c.spec);
  Geometry g{c.n, c.n, c.per_head_layout ? c.q_heads : 1, c.block, c.block};
  const Layout layout = build_layout(*pattern, g);
  const AttentionResult single = attention(q.view(), k.view(), v.view(), layout);

  const std::vector<Shard> shards = zigzag ? distributed::zigzag_shards(c.n, size, c.block)
                                           : distributed::contiguous_shards(c.n, size, c.block);
  const Shard& own = shards[static_cast<std::size_t>(rank)];
  const Tensor lq = take(q, own), lk = take(k, own), lv = take(v, own);
  Tensor o(c.batch, c.q_heads, own.size(), c.dim), lse(c.batch, c.q_heads, own.size(), 1);
  const distributed::RankStats st = distributed::context_parallel_attention(
      MPI_COMM_WORLD, lq.view(), lk.view(), lv.view(), layout, shards, o.view(), lse.view());

  // Output and LSE against the single-process executor.
  double worst = 0;
  bool lse_ok = true;
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.q_heads; ++h)
      for (std::int64_t i = 0; i < own.size(); ++i) {
        for (int x = 0; x < c.dim; ++x) {
          const double want = single.o.view().at(b, h, own.global_row(i), x);
          const double got = o.view().at(b, h, i, x);
          worst = std::max(worst, std::abs(got - want) / std::max(1.0, std::abs(want)));
        }
        const float want = single.lse.view().at(b, h, own.global_row(i), 0);
        const float got = lse.view().at(b, h, i, 0);
        if (std::isinf(want)
                ? got != want
                : std::abs(double{got} - want) > 1e-6 * std::max(1.0, std::abs(double{want})))
          lse_ok = false;
      }
  check(worst <= 1e-6, name + ": output differs from the single-process executor by " +
                           std::to_string(worst) + " (relative)");
  check(lse_ok, name + ": LSE differs from the single-process executor");

  // Communication: the key tiles of each shard holding an allowed pair for this rank's queries
  // (brute force over pairs), and the tiles other ranks' queries need from this rank.
  std::int64_t rows_in = 0, rows_out = 0, msgs_in = 0, msgs_out = 0;
  for (int r = 0; r < size; ++r)
    for (int s = 0; s < size; ++s) {
      if (r == s || (r != rank && s != rank)) continue;
      std::set<std::int64_t> tiles;
      for (int h = 0; h < g.heads; ++h)
        for (std::int64_t i = 0; i < c.n; ++i)
          if (holds(shards[r], i))
            for (std::int64_t j = 0; j < c.n; ++j)
              if (holds(shards[s], j) && pattern->allows(g, h, i, j)) tiles.insert(j / c.block);
      std::int64_t n_rows = 0;
      for (const std::int64_t t : tiles)
        n_rows += std::min<std::int64_t>(c.block, c.n - t * c.block);
      if (r == rank) rows_in += n_rows, msgs_in += n_rows > 0;
      if (s == rank) rows_out += n_rows, msgs_out += n_rows > 0;
    }
  const std::int64_t per_row = 2 * std::int64_t{c.batch} * c.kv_heads * c.dim * 4;
  check(st.bytes_received == rows_in * per_row && st.rows_received == rows_in,
        name + ": received " + std::to_string(st.bytes_received) + " bytes, brute force " +
            std::to_string(rows_in * per_row));
  check(st.bytes_sent == rows_out * per_row, name + ": sent " + std::to_string(st.bytes_sent) +
                                                 " bytes, brute force " +
                                                 std::to_string(rows_out * per_row));
  check(st.messages_received == msgs_in && st.messages_sent == msgs_out,
        name + ": messages sent/received " + std::to_string(st.messages_sent) + "/" +
            std::to_string(st.messages_received) + ", brute force " + std::to_string(msgs_out) +
            "/" + std::to_string(msgs_in));
  const distributed::CommPrediction p = distributed::predict_communication(
      distributed::plan_communication(layout, shards), c.batch, c.kv_heads, c.dim);
  check(p.bytes_sent[rank] == st.bytes_sent && p.bytes_received[rank] == st.bytes_received &&
            p.messages_sent[rank] == st.messages_sent,
        name + ": predicted communication differs from the measured");

  // Deterministic for a given P.
  Tensor o2(c.batch, c.q_heads, own.size(), c.dim), lse2(c.batch, c.q_heads, own.size(), 1);
  distributed::context_parallel_attention(MPI_COMM_WORLD, lq.view(), lk.view(), lv.view(), layout,
                                          shards, o2.view(), lse2.view());
  check(o2.values == o.values && lse2.values == lse.values, name + ": not deterministic");
}

// One rank's bad input makes every rank throw the same UsageError, naming that rank.
void bad_input_case(bool bad_layout) {
  const std::int64_t n = 128;
  Tensor q(1, 2, n, 16), k(1, 2, n, 16), v(1, 2, n, 16);
  fill_normal(q.view(), 3, 0);
  fill_normal(k.view(), 3, 1);
  fill_normal(v.view(), 3, 2);
  const int bad = size - 1;
  const std::string spec = bad_layout && rank == bad ? "sliding(8)" : "causal";
  const Layout layout = build_layout(*parse_spec(spec), Geometry{n, n, 1, 16, 16});
  const std::vector<Shard> shards = distributed::contiguous_shards(n, size, 16);
  const Shard& own = shards[static_cast<std::size_t>(rank)];
  const Tensor lq = take(q, own), lk = take(k, own), lv = take(v, own);
  ConstTensorView given = lq.view();
  if (!bad_layout && rank == bad) given.shape[2] -= 1;  // one row short
  Tensor o(1, 2, own.size(), 16), lse(1, 2, own.size(), 1);
  std::string message;
  try {
    distributed::context_parallel_attention(MPI_COMM_WORLD, given, lk.view(), lv.view(), layout,
                                            shards, o.view(), lse.view());
  } catch (const UsageError& e) {
    message = e.what();
  }
  const std::string tag = bad_layout ? "different layout" : "bad q";
  check(!message.empty(), tag + ": no error on this rank");
  if (!bad_layout)
    check(message.find("rank " + std::to_string(bad) + " of") != std::string::npos &&
              message.find("q has") != std::string::npos,
          tag + ": message does not name the bad rank and input: " + message);
  else
    check(message.find("differ") != std::string::npos, tag + ": message: " + message);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::vector<Case> cases = {
      {"dense", 192, 1, 2, 2, 16, 16},
      {"causal", 256, 1, 4, 2, 16, 32},       // GQA: 2 query heads per K/V head
      {"sliding(20)", 300, 2, 2, 2, 32, 16},  // uneven shards, clipped last tile
      {"sliding(16)", 512, 1, 2, 1, 16, 16},  // neighbours only: most rank pairs exchange nothing
      {"bigbird(block=16, window=3, global=1, random=2, seed=1)", 320, 1, 2, 2, 16, 16, true},
      {"sink(4) | sliding(24)", 400, 1, 2, 2, 16, 16},
      {"causal", 48, 1, 2, 2, 16, 16},  // 3 tiles: with 4 ranks one shard is empty
      {"st_strided(12)", 288, 1, 2, 2, 16, 16},
  };
  for (const Case& c : cases)
    for (const bool zigzag : {false, true}) {
      try {
        run_case(c, zigzag);
      } catch (const std::exception& e) {
        check(false, c.spec + ": threw " + e.what());
      }
    }
  // Zig-zag shards: rank r holds chunks r and 2P - 1 - r of 2P (here 2P chunks of one tile).
  const std::vector<Shard> z = distributed::zigzag_shards(2 * size * 16, size, 16);
  for (int r = 0; r < size; ++r)
    check(z[r].ranges.size() == 2 && z[r].ranges[0].begin == 16 * r &&
              z[r].ranges[1].begin == 16 * (2 * size - 1 - r) && z[r].size() == 32,
          "zigzag_shards: rank " + std::to_string(r));
  bad_input_case(false);
  bad_input_case(true);
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("%s: %zu cases on %d ranks, %d failed checks\n", total == 0 ? "PASS" : "FAIL",
                2 * cases.size() + 2, size, total);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
