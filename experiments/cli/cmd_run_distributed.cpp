// spattn run SPEC --distributed under mpirun (see distributed_run.hpp).
#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "distributed_run.hpp"
#include "spattn/patterns/error.hpp"

#ifdef SPATTN_HAVE_MPI
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "spattn/attention/random.hpp"
#include "spattn/distributed/context_parallel.hpp"
#endif

namespace spattn::cli {

#ifndef SPATTN_HAVE_MPI

void run_distributed(const experiments::PreparedPoint&, bool, bool, bool) {
  throw UsageError(
      "--distributed: this spattn was built without MPI (install libopenmpi-dev and reconfigure; "
      "spattn::distributed is built when CMake finds MPI)");
}

#else

namespace {

// MPI_Init on the first use, MPI_Finalize when the run ends (also by an exception: every rank
// throws the same collective error, so all of them get here).
struct MpiSession {
  MpiSession() {
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) MPI_Init(nullptr, nullptr);
  }
  ~MpiSession() {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

void run_distributed(const experiments::PreparedPoint& u, bool json, bool check, bool zigzag) {
  MpiSession session;
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const experiments::SweepPoint& p = u.point;
  if (p.settings.inputs.kind != "random" || p.executor != experiments::Executor::Flash ||
      p.tile_mode != "auto" || u.g.nq != u.g.nk)
    throw UsageError(
        "--distributed runs the flash executor on random inputs over one sequence (nq = nk): "
        "leave out --inputs, --executor, --mask-full-tiles and --nk");
  const AttentionShape& s = u.s;
  const int align = std::max(u.g.block_q, u.g.block_k);
  const std::vector<distributed::Shard> shards =
      zigzag ? distributed::zigzag_shards(s.nq, size, align)
             : distributed::contiguous_shards(s.nq, size, align);
  const distributed::Shard& own = shards[static_cast<std::size_t>(rank)];
  const std::uint64_t seed = p.settings.seed;
  Tensor q(s.batch, s.q_heads, own.size(), s.dim), k(s.batch, s.kv_heads, own.size(), s.dim),
      v(s.batch, s.kv_heads, own.size(), s.dim);
  std::int64_t local = 0;
  for (const distributed::ShardRange& r : own.ranges) {  // each range's rows of the inputs
    for (const auto& [t, stream] : {std::pair{&q, 0}, std::pair{&k, 1}, std::pair{&v, 2}}) {
      TensorView rows = t->view();
      rows.data += local * rows.stride[2];
      rows.shape[2] = r.size();
      fill_normal_rows(rows, seed, static_cast<std::uint64_t>(stream), s.nq, r.begin);
    }
    local += r.size();
  }
  Tensor o(s.batch, s.q_heads, own.size(), s.dim), lse(s.batch, s.q_heads, own.size(), 1);
  AttentionOptions opt;
  opt.threads = p.threads;
  opt.path = p.path;

  std::vector<double> slowest, mine;
  distributed::RankStats st;
  for (int call = 0; call < p.settings.warmup + p.settings.repeats; ++call) {
    MPI_Barrier(MPI_COMM_WORLD);
    st = distributed::context_parallel_attention(MPI_COMM_WORLD, q.view(), k.view(), v.view(),
                                                 u.layout, shards, o.view(), lse.view(), opt);
    double worst = 0;
    MPI_Allreduce(&st.seconds, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (call >= p.settings.warmup) {
      slowest.push_back(worst);
      mine.push_back(st.seconds);
    }
  }

  // With --check: the single-process executor on the whole inputs, this rank's rows compared.
  double diff = -1;
  if (check) {
    Tensor fq(s.batch, s.q_heads, s.nq, s.dim), fk(s.batch, s.kv_heads, s.nk, s.dim),
        fv(s.batch, s.kv_heads, s.nk, s.dim);
    fill_normal(fq.view(), seed, 0);
    fill_normal(fk.view(), seed, 1);
    fill_normal(fv.view(), seed, 2);
    const AttentionResult single = attention(fq.view(), fk.view(), fv.view(), u.layout, opt);
    double local = 0;
    for (std::int64_t b = 0; b < s.batch; ++b)
      for (std::int64_t h = 0; h < s.q_heads; ++h)
        for (std::int64_t i = 0; i < own.size(); ++i)
          for (std::int64_t x = 0; x < s.dim; ++x) {
            const double want = single.o.view().at(b, h, own.global_row(i), x);
            local = std::max(
                local, std::abs(o.view().at(b, h, i, x) - want) / std::max(1.0, std::abs(want)));
          }
    MPI_Reduce(&local, &diff, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  }

  // Each rank's figures to rank 0.
  const double my_median = median(mine);
  const std::vector<double> figures = {my_median,
                                       static_cast<double>(st.bytes_sent),
                                       static_cast<double>(st.messages_sent),
                                       static_cast<double>(st.bytes_received),
                                       static_cast<double>(st.messages_received),
                                       static_cast<double>(st.rows_received)};
  std::vector<double> all(figures.size() * static_cast<std::size_t>(size));
  MPI_Gather(figures.data(), static_cast<int>(figures.size()), MPI_DOUBLE, all.data(),
             static_cast<int>(figures.size()), MPI_DOUBLE, 0, MPI_COMM_WORLD);
  if (rank != 0) return;

  const distributed::CommPrediction pred = distributed::predict_communication(
      distributed::plan_communication(u.layout, shards), s.batch, s.kv_heads, s.dim);
  experiments::Measurement m = experiments::point_record(p);
  m.source = "run";
  m.layout = u.figures;
  m.predicted = u.prediction;
  m.attention = experiments::AttentionTimes{p.settings.warmup, slowest};
  m.resources.threads_used = p.threads;
  nlohmann::ordered_json j = experiments::to_json(m);
  nlohmann::ordered_json ranks = nlohmann::ordered_json::array();
  std::int64_t sent = 0, predicted = 0;
  for (int r = 0; r < size; ++r) {
    const double* f = all.data() + figures.size() * static_cast<std::size_t>(r);
    const auto rr = static_cast<std::size_t>(r);
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const distributed::ShardRange& g : shards[rr].ranges) rows.push_back({g.begin, g.end});
    ranks.push_back({{"rank", r},
                     {"rows", rows},
                     {"seconds_median", f[0]},
                     {"bytes_sent", static_cast<std::int64_t>(f[1])},
                     {"messages_sent", static_cast<std::int64_t>(f[2])},
                     {"bytes_received", static_cast<std::int64_t>(f[3])},
                     {"messages_received", static_cast<std::int64_t>(f[4])},
                     {"key_rows_received", static_cast<std::int64_t>(f[5])},
                     {"predicted_bytes_sent", pred.bytes_sent[rr]},
                     {"predicted_bytes_received", pred.bytes_received[rr]}});
    sent += static_cast<std::int64_t>(f[1]);
    predicted += pred.bytes_sent[rr];
  }
  j["distributed"] = {{"ranks", size},
                      {"shards", zigzag ? "zigzag" : "contiguous"},
                      {"bytes_sent", sent},
                      {"predicted_bytes_sent", predicted},
                      {"per_rank", ranks}};
  if (check) j["distributed"]["max_rel_diff_single_process"] = diff;
  if (json) {
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return;
  }
  std::string table;
  auto line = [&table](const char* name, const std::string& value) {
    table += fmt::format("{:<20} {}\n", name, value);
  };
  line("spec", u.layout.spec);
  line("shape", fmt::format("batch {}, heads {} (K/V heads {}), n {}, d {}", s.batch, s.q_heads,
                            s.kv_heads, s.nq, s.dim));
  line("ranks", fmt::format("{} ({} shards of whole {}-token tiles)", size,
                            zigzag ? "zig-zag" : "contiguous", align));
  line("attention",
       fmt::format("median {:.3f} ms (slowest rank per call), {} repeats after {} "
                   "warm-up",
                   m.attention->median() * 1e3, p.settings.repeats, p.settings.warmup));
  line("bytes sent", fmt::format("{} (predicted {})", sent, predicted));
  std::cout << table;
  for (const auto& r : ranks) {
    std::string rows;
    for (const auto& g : r["rows"])
      rows += fmt::format("{}[{}, {})", rows.empty() ? "" : " + ", g[0].get<std::int64_t>(),
                          g[1].get<std::int64_t>());
    std::cout << fmt::format(
        "rank {:<3} rows {}  {:.3f} ms  sent {} B in {} msg  received {} B in {} msg ({} key "
        "rows)\n",
        r["rank"].get<int>(), rows.empty() ? "none" : rows, r["seconds_median"].get<double>() * 1e3,
        r["bytes_sent"].get<std::int64_t>(), r["messages_sent"].get<std::int64_t>(),
        r["bytes_received"].get<std::int64_t>(), r["messages_received"].get<std::int64_t>(),
        r["key_rows_received"].get<std::int64_t>());
  }
  if (check)
    std::cout << fmt::format(
        "check                max relative difference from the "
        "single-process executor {:.3e}\n",
        diff);
}

#endif

}  // namespace spattn::cli
