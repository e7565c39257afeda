// Attention throughput (Google Benchmark): the flash executor against the textbook materialized
// baseline and, as the yardstick, Eigen SGEMM 4096^3, all in one run. Batch 1, 8 query heads,
// 8 K/V heads, d = 64 and 128, 1 and 2 threads, tiles 64 x 64 (see kBlock).
//
// Full run (all sizes; takes tens of minutes):
//   build/release/experiments/micro/bench_attention --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
// The performance targets only (SGEMM, textbook and flash dense/causal at N = 8192, d = 64,
// 2 threads; sliding(512) from 1K to 256K), a few minutes on an idle machine:
//   F='^sgemm/t2/|^(textbook|flash)/(dense|causal)/d64/t2/8192/|^flash/sliding512/d64/t2/'
//   build/release/experiments/micro/bench_attention --benchmark_repetitions=5
//       --benchmark_display_aggregates_only=true --benchmark_filter="$F"   (one command line)
//
// Names: sgemm/t<threads>, textbook/<pattern>/d<d>/t<threads>/<N>, flash/<pattern>/d<d>/
// t<threads>/<N>. Counters: GFLOPs = useful GFLOP/s (4·d·allowed pairs / time), comp_GFLOPs =
// computed GFLOP/s (4·d·kept-tile area / time), per_token = time / N (all heads), ws_MiB =
// the executor's workspace. Layout build time is excluded (built once per benchmark).
//
// Inputs are filled once per (N, d) and outputs preallocated and reused (the caller-owned-output
// overload): a first-touch page fault costs 1.7-2 us per 4 KiB page on this machine when idle
// (13-14 us under load), which would add 7-55 ms per call for the 16 MiB output of N = 8192,
// d = 64 and 0.25-1.8 s for the 512 MiB one of N = 262,144.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <Eigen/Dense>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/cost.hpp"
#include "spattn/attention/textbook.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

constexpr std::int64_t kHeads = 8;
// 64 x 64 tiles, the CLI's default, were the fastest tried (flash, d = 64, 1 thread, CPU time,
// best of 3 on a loaded machine): dense N = 4096: 64x64 122, 32x64 114, 128x128 105, 128x64
// 102, 64x128 98 GFLOP/s; sliding(512) N = 16384: 64x64 101, 32x32 93, 128x64 86. 64-row query
// tiles also give short sequences twice the parallel tasks of 128-row ones.
constexpr int kBlock = 64;

// One set of inputs and outputs, kept between benchmarks of the same (N, d).
struct Data {
  std::int64_t n = 0, d = 0;
  spattn::Tensor q, k, v, o, lse;
};

Data& data_for(std::int64_t n, std::int64_t d) {
  static std::unique_ptr<Data> cached;
  if (cached && cached->n == n && cached->d == d) return *cached;
  cached.reset();  // free the previous set first: the 256K sets are 0.5 GiB per tensor
  auto data = std::make_unique<Data>();
  data->n = n;
  data->d = d;
  auto fill = [](spattn::Tensor& t, std::uint64_t seed) {
    t = spattn::Tensor(1, kHeads, t.shape[2], t.shape[3]);
    // Uniform in [-1, 1) from a counter hash, in parallel: mt19937 over 10^8 floats takes seconds.
    tbb::parallel_for(std::size_t{0}, t.values.size(), [&](std::size_t i) {
      std::uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
      x ^= x >> 31;
      x *= 0xBF58476D1CE4E5B9ull;
      x ^= x >> 29;
      t.values[i] = static_cast<float>(x >> 40) * (2.0f / 16777216.0f) - 1.0f;
    });
  };
  for (auto [t, seed] : {std::pair{&data->q, 1ull}, {&data->k, 2ull}, {&data->v, 3ull}}) {
    t->shape = {1, kHeads, n, d};
    fill(*t, seed);
  }
  data->o = spattn::Tensor(1, kHeads, n, d);
  data->lse = spattn::Tensor(1, kHeads, n, 1);
  cached = std::move(data);
  return *cached;
}

std::string bigbird_spec() {
  const std::string spec = "bigbird(block=64, window=3, global=2, random=3)";
  try {
    spattn::parse_spec(spec);
    return spec;
  } catch (const std::exception&) {
    return "window(256) | global(2) | random(3)";
  }
}

void set_counters(benchmark::State& state, const spattn::AttentionCost& c, std::int64_t n) {
  using benchmark::Counter;
  state.counters["GFLOPs"] = Counter(c.useful_flops * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["comp_GFLOPs"] =
      Counter(c.computed_flops * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["per_token"] =
      Counter(static_cast<double>(n), Counter::kIsIterationInvariantRate | Counter::kInvert);
}

void flash(benchmark::State& state, const std::string& spec, std::int64_t d, int threads) {
  const std::int64_t n = state.range(0);
  const spattn::Layout layout =
      spattn::build_layout(*spattn::parse_spec(spec), spattn::Geometry{n, n, 1, kBlock, kBlock});
  Data& data = data_for(n, d);
  spattn::AttentionOptions opt;
  opt.threads = threads;
  spattn::AttentionStats st;
  for (auto _ : state) {
    st = spattn::attention(data.q.view(), data.k.view(), data.v.view(), layout, data.o.view(),
                           data.lse.view(), opt);
    benchmark::DoNotOptimize(data.o.values.data());
  }
  set_counters(state, spattn::attention_cost(layout, 1, kHeads, kHeads, d, threads), n);
  state.counters["ws_MiB"] = static_cast<double>(st.workspace_bytes) / (1 << 20);
  state.counters["split_rows"] = static_cast<double>(st.split_rows);
  state.SetLabel(spec);
}

void textbook(benchmark::State& state, const std::string& spec, std::int64_t d, int threads) {
  const std::int64_t n = state.range(0);
  const spattn::Layout layout =
      spattn::build_layout(*spattn::parse_spec(spec), spattn::Geometry{n, n, 1, kBlock, kBlock});
  Data& data = data_for(n, d);
  spattn::TextbookOptions opt;
  opt.threads = threads;
  try {
    for (auto _ : state) {
      auto res =
          spattn::textbook_attention(data.q.view(), data.k.view(), data.v.view(), layout, opt);
      benchmark::DoNotOptimize(res.o.values.data());
    }
  } catch (const std::exception& e) {  // BudgetError: the n x n scores do not fit in memory
    state.SkipWithError(e.what());
    return;
  }
  set_counters(state, spattn::attention_cost(layout, 1, kHeads, kHeads, d, threads), n);
  state.SetLabel(spec);
}

// C = A B, 4096^3, split into `threads` column slices each done by one single-threaded Eigen
// GEMM (Eigen is built without OpenMP here, so this is how it uses two cores).
void sgemm(benchmark::State& state, int threads) {
  const Eigen::Index n = 4096;
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n);
  Eigen::MatrixXf c(n, n);
  c.setZero();
  tbb::task_arena arena(threads);
  for (auto _ : state) {
    arena.execute([&] {
      tbb::parallel_for(0, threads, [&](int t) {
        const Eigen::Index c0 = n * t / threads, c1 = n * (t + 1) / threads;
        c.middleCols(c0, c1 - c0).noalias() = a * b.middleCols(c0, c1 - c0);
      });
    });
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOPs"] =
      benchmark::Counter(2.0 * n * n * n * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

int main(int argc, char** argv) {
  for (int t : {1, 2})
    benchmark::RegisterBenchmark(fmt::format("sgemm/t{}", t).c_str(),
                                 [t](benchmark::State& s) { sgemm(s, t); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  const std::vector<std::int64_t> short_n = {1024, 2048, 4096, 8192, 16384};
  const std::vector<std::int64_t> long_n = {1024, 4096, 8192, 16384, 32768, 65536, 131072, 262144};
  const std::pair<std::string, std::string> dense_like[] = {{"dense", "dense"},
                                                            {"causal", "causal"}};
  const std::pair<std::string, std::string> sparse[] = {{"sliding512", "sliding(512)"},
                                                        {"bigbird", bigbird_spec()}};
  for (std::int64_t d : {64, 128})
    for (int t : {1, 2}) {
      for (const auto& [name, spec] : dense_like) {
        auto* tb = benchmark::RegisterBenchmark(
            fmt::format("textbook/{}/d{}/t{}", name, d, t).c_str(),
            [spec = spec, d, t](benchmark::State& s) { textbook(s, spec, d, t); });
        auto* fl = benchmark::RegisterBenchmark(
            fmt::format("flash/{}/d{}/t{}", name, d, t).c_str(),
            [spec = spec, d, t](benchmark::State& s) { flash(s, spec, d, t); });
        for (std::int64_t n : short_n) {
          tb->Arg(n);
          fl->Arg(n);
        }
        tb->Unit(benchmark::kMillisecond)->UseRealTime();
        fl->Unit(benchmark::kMillisecond)->UseRealTime();
      }
      for (const auto& [name, spec] : sparse) {
        auto* fl = benchmark::RegisterBenchmark(
            fmt::format("flash/{}/d{}/t{}", name, d, t).c_str(),
            [spec = spec, d, t](benchmark::State& s) { flash(s, spec, d, t); });
        for (std::int64_t n : long_n) fl->Arg(n);
        fl->Unit(benchmark::kMillisecond)->UseRealTime();
      }
    }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
