// Backward against forward (Google Benchmark): the flash backward (backward.hpp) and the flash
// forward on the same layout and inputs. Batch 1, 8 heads, d = 64, tiles 64 x 64, 2 threads,
// N = 8192; dense, causal and sliding(512). Names: fwd/<pattern>/<N> and bwd/<pattern>/<N>;
// the backward's time excludes the forward it needs (o and lse are computed once). Time is wall
// time; CPU is the process's CPU time over all threads, the steadier figure on a shared machine.
//   build/release/experiments/micro/bench_backward --benchmark_repetitions=3
//       --benchmark_display_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "spattn/attention/attention.hpp"
#include "spattn/attention/backward.hpp"
#include "spattn/attention/random.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

constexpr std::int64_t kHeads = 8, kDim = 64;
constexpr int kThreads = 2;

struct Setup {
  spattn::Layout layout;
  spattn::Tensor q, k, v, d_o, o, lse, dq, dk, dv;
  Setup(const std::string& spec, std::int64_t n)
      : q(1, kHeads, n, kDim),
        k(1, kHeads, n, kDim),
        v(1, kHeads, n, kDim),
        d_o(1, kHeads, n, kDim),
        o(1, kHeads, n, kDim),
        lse(1, kHeads, n, 1),
        dq(1, kHeads, n, kDim),
        dk(1, kHeads, n, kDim),
        dv(1, kHeads, n, kDim) {
    spattn::Geometry g;
    g.nq = g.nk = n;
    layout = spattn::build_layout(*spattn::parse_spec(spec), g);
    spattn::fill_normal(q.view(), 1, 0);
    spattn::fill_normal(k.view(), 1, 1);
    spattn::fill_normal(v.view(), 1, 2);
    spattn::fill_normal(d_o.view(), 1, 3);
    spattn::AttentionOptions opt;
    opt.threads = kThreads;
    spattn::attention(q.view(), k.view(), v.view(), layout, o.view(), lse.view(), opt);
  }
};

void forward(benchmark::State& state, const std::string& spec) {
  Setup s(spec, state.range(0));
  spattn::AttentionOptions opt;
  opt.threads = kThreads;
  for (auto _ : state)
    spattn::attention(s.q.view(), s.k.view(), s.v.view(), s.layout, s.o.view(), s.lse.view(), opt);
}

void backward(benchmark::State& state, const std::string& spec) {
  Setup s(spec, state.range(0));
  spattn::BackwardOptions opt;
  opt.threads = kThreads;
  for (auto _ : state)
    spattn::attention_backward(s.q.view(), s.k.view(), s.v.view(), s.o.view(), s.lse.view(),
                               s.d_o.view(), s.layout, s.dq.view(), s.dk.view(), s.dv.view(), opt);
}

}  // namespace

BENCHMARK_CAPTURE(forward, dense, "dense")
    ->Name("fwd/dense")
    ->Arg(8192)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(backward, dense, "dense")
    ->Name("bwd/dense")
    ->Arg(8192)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, causal, "causal")
    ->Name("fwd/causal")
    ->Arg(8192)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(backward, causal, "causal")
    ->Name("bwd/causal")
    ->Arg(8192)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(forward, sliding512, "sliding(512)")
    ->Name("fwd/sliding512")
    ->Arg(8192)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(backward, sliding512, "sliding(512)")
    ->Name("bwd/sliding512")
    ->Arg(8192)
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
