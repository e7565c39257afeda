// Consumer of an installed spattn: parses a spec, builds its layout and checks the layout's
// allowed-pair count (and every pair) against brute force over Pattern::allows.
#include <cstdint>
#include <cstdio>
#include <exception>

#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

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
