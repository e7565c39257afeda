// Consumer of an installed spattn: parses a spec, builds its layout and checks the layout's
// allowed-pair count (and every pair) against brute force over Pattern::allows; then runs
// attention() on a tiny causal case and checks it against a few lines of dense math; then expands
// an experiment file's points with spattn::experiments.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include "spattn/attention/attention.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

// Causal attention over 5 tokens, 1 head, d = 3: attention() against softmax(q k^T / sqrt(3)) v
// written out in double. Returns the number of mismatches.
int check_attention() {
  const int n = 5, d = 3;
  spattn::Tensor q(1, 1, n, d), k(1, 1, n, d), v(1, 1, n, d);
  for (int t = 0; t < n * d; ++t) {
    q.values[t] = std::sin(0.7f * t);
    k.values[t] = std::cos(1.3f * t);
    v.values[t] = 0.25f * static_cast<float>(t % 7) - 0.5f;
  }
  spattn::Geometry g;
  g.nq = n;
  g.nk = n;
  g.block_q = 16;
  g.block_k = 16;
  const spattn::Layout layout = spattn::build_layout(*spattn::parse_spec("causal"), g);
  const spattn::AttentionResult r = spattn::attention(q.view(), k.view(), v.view(), layout);
  int failures = 0;
  double worst = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<double> w(i + 1);
    double m = -HUGE_VAL, l = 0;
    for (int j = 0; j <= i; ++j) {
      double s = 0;
      for (int x = 0; x < d; ++x) s += double{q.values[i * d + x]} * k.values[j * d + x];
      w[j] = s / std::sqrt(3.0);
      m = std::max(m, w[j]);
    }
    for (int j = 0; j <= i; ++j) l += (w[j] = std::exp(w[j] - m));
    for (int x = 0; x < d; ++x) {
      double o = 0;
      for (int j = 0; j <= i; ++j) o += w[j] / l * v.values[j * d + x];
      worst = std::max(worst, std::abs(o - r.o.values[i * d + x]));
    }
    worst = std::max(worst, std::abs(m + std::log(l) - r.lse.values[i]));
  }
  std::printf("attention causal n=%d d=%d: max abs error %.3g\n", n, d, worst);
  if (!(worst <= 1e-5)) {
    std::fprintf(stderr, "attention: max abs error %g > 1e-5\n", worst);
    ++failures;
  }
  return failures;
}

// Two patterns x three lengths with one skipped by max_n: 5 points.
int check_experiment() {
  const spattn::experiments::Experiment e = spattn::experiments::parse_experiment(
      "name = \"consumer\"\n"
      "patterns = [\"causal\", { name = \"w\", spec = \"sliding({sqrt_n})\", max_n = 2048 }]\n"
      "seq_len = [1024, 2048, 4096]\n",
      "consumer.toml");
  const auto points = spattn::experiments::expand_points(e, false);
  std::printf("experiment: %zu points\n", points.size());
  if (points.size() != 5 || points[3].pattern.spec != "sliding(32)") {
    std::fprintf(stderr, "experiment: %zu points (expected 5), point 3 '%s'\n", points.size(),
                 points.size() > 3 ? points[3].pattern.spec.c_str() : "");
    return 1;
  }
  return 0;
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IONBF, 0);  // keep stdout and stderr lines in order
  try {
    const spattn::PatternPtr pattern = spattn::parse_spec("sliding(16) | sink(2)");
    // Fewer queries than keys (bottom-right alignment), tiles that do not divide n.
    spattn::Geometry g;
    g.nq = 150;
    g.nk = 200;
    g.heads = 2;
    g.block_q = 32;
    g.block_k = 16;
    const spattn::Layout layout = spattn::build_layout(*pattern, g);

    int failures = 0;
    for (int h = 0; h < g.heads; ++h) {
      const spattn::BlockLayout& bl = layout.head(h);
      std::int64_t expected = 0;
      for (std::int64_t i = 0; i < g.nq; ++i) {
        for (std::int64_t j = 0; j < g.nk; ++j) {
          const bool allowed = pattern->allows(g, h, i, j);
          expected += allowed ? 1 : 0;
          if (bl.allows(i, j) != allowed && ++failures <= 5) {
            std::fprintf(stderr, "head %d pair (%lld, %lld): pattern %d, layout %d\n", h,
                         static_cast<long long>(i), static_cast<long long>(j), allowed ? 1 : 0,
                         allowed ? 0 : 1);
          }
        }
      }
      const std::int64_t got = bl.counts().allowed_pairs;
      std::printf("%s head %d: allowed_pairs %lld, brute force %lld\n", pattern->spec().c_str(), h,
                  static_cast<long long>(got), static_cast<long long>(expected));
      if (got != expected) ++failures;
      // By hand: every query sees 16 window keys (p(i) >= 50) and 2 sink keys outside them.
      if (expected != g.nq * 18) {
        std::fprintf(stderr, "head %d: brute force %lld, expected %lld by hand\n", h,
                     static_cast<long long>(expected), static_cast<long long>(g.nq * 18));
        ++failures;
      }
    }
    failures += check_attention();
    failures += check_experiment();
    if (failures != 0) {
      std::fprintf(stderr, "consumer: %d mismatches\n", failures);
      return 1;
    }
    std::printf("consumer: OK\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
