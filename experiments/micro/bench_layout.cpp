// Layout build time (Google Benchmark): build_layout for representative patterns at
// n = 65,536, 1,048,576 and 4,194,304 tokens, block 64, one head, all cores.
//
//   build/release/experiments/micro/bench_layout --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true       (one command line)
//
// Counters: kept tiles, partial tiles, layout MiB, and kept tiles built per second.
// strided uses l = n/16 (16 stripes each way) so that its layout stays O(n) in size; the
// Sparse Transformer's l = sqrt(n) keeps O(n^1.5) tiles, 2.7e8 at 4M tokens.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <functional>
#include <string>

#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

void build(benchmark::State& state, const std::function<std::string(std::int64_t)>& spec_of) {
  const std::int64_t n = state.range(0);
  const spattn::PatternPtr p = spattn::parse_spec(spec_of(n));
  const spattn::Geometry g{n, n, 1, 64, 64};
  spattn::LayoutCounts c;
  for (auto _ : state) {
    spattn::Layout L = spattn::build_layout(*p, g);
    c = L.counts();
    benchmark::DoNotOptimize(L);
  }
  state.counters["kept_tiles"] = static_cast<double>(c.kept_tiles);
  state.counters["partial_tiles"] = static_cast<double>(c.partial_tiles);
  state.counters["layout_MiB"] = static_cast<double>(c.bytes) / (1 << 20);
  state.counters["tiles_per_s"] = benchmark::Counter(static_cast<double>(c.kept_tiles),
                                                     benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(spec_of(n));
}

}  // namespace

int main(int argc, char** argv) {
  const std::pair<const char*, std::function<std::string(std::int64_t)>> cases[] = {
      {"sliding4096_sink4", [](std::int64_t) { return std::string("sliding(4096) | sink(4)"); }},
      {"random3", [](std::int64_t) { return std::string("random(3, block=64, seed=1)"); }},
      {"strided_n16", [](std::int64_t n) { return fmt::format("strided({})", n / 16); }},
      {"window256_global2_random3",
       [](std::int64_t) { return std::string("window(256) | global(2) | random(3)"); }},
  };
  for (const auto& [name, spec_of] : cases) {
    auto* b = benchmark::RegisterBenchmark(
        fmt::format("build_layout/{}", name).c_str(),
        [spec_of = spec_of](benchmark::State& s) { build(s, spec_of); });
    b->Arg(65536)->Arg(1 << 20)->Arg(1 << 22)->Unit(benchmark::kMillisecond)->UseRealTime();
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
