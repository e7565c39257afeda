// spattn_sweep_test_worker: a sweep worker with test-only patterns that misbehave inside a point
// child, to test how the sweep driver records crashes, hangs and exhausted memory.
//   spattn_sweep_test_worker point FILE          measure a point (as `spattn point FILE`)
//   spattn_sweep_test_worker sweep FILE OUT [DIR] run the sweep of FILE (resume DIR) with this
//                                                 program as the worker
//   spattn_sweep_test_worker touch MIB           write MIB MiB of memory, then exit 0
// The patterns test_crash(), test_hang(), test_hog() allow what `causal` allows; only in `point`
// mode does their geometry check misbehave (the sweep's own prediction must stay alive):
// test_crash calls std::abort(), test_hang sleeps forever, test_hog allocates 256 MiB blocks until
// std::bad_alloc (it throws bad_alloc itself after 4 GiB, for runs without an address-space
// limit).
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/point_worker.hpp"
#include "spattn/experiments/sweep.hpp"
#include "spattn/patterns/registry.hpp"

namespace {

bool g_point_mode = false;

enum class Misbehaviour { Crash, Hang, Hog };

class TestPattern final : public spattn::Pattern {
 public:
  explicit TestPattern(Misbehaviour m) : m_(m) {}
  bool allows(const spattn::Geometry& g, int, std::int64_t i, std::int64_t j) const override {
    return j <= g.position(i);
  }
  std::string spec() const override {
    switch (m_) {
      case Misbehaviour::Crash:
        return "test_crash()";
      case Misbehaviour::Hang:
        return "test_hang()";
      default:
        return "test_hog()";
    }
  }
  void check(const spattn::Geometry&) const override {
    if (!g_point_mode) return;
    switch (m_) {
      case Misbehaviour::Crash:
        std::abort();  // SIGABRT: AddressSanitizer would turn a SIGSEGV into exit code 1
        break;
      case Misbehaviour::Hang:
        for (;;) ::pause();
      case Misbehaviour::Hog: {
        std::vector<std::unique_ptr<char[]>> blocks;
        for (int k = 0; k < 16; ++k) blocks.emplace_back(new char[std::size_t{256} << 20]);
        throw std::bad_alloc();
      }
    }
  }

 private:
  Misbehaviour m_;
};

void register_test_patterns() {
  auto add = [](const char* name, Misbehaviour m, const char* summary) {
    spattn::Registry::global().add(
        {name,
         {},
         summary,
         "j <= p(i)",
         "test only",
         std::string(name) + "()",
         [m](const spattn::Args&) { return std::make_shared<TestPattern>(m); }});
  };
  add("test_crash", Misbehaviour::Crash, "causal; aborts inside a point child");
  add("test_hang", Misbehaviour::Hang, "causal; never returns inside a point child");
  add("test_hog", Misbehaviour::Hog, "causal; allocates until bad_alloc inside a point child");
}

}  // namespace

int main(int argc, char** argv) {
  register_test_patterns();
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "point" && argc == 3) {
    g_point_mode = true;
    return spattn::experiments::run_point_worker(argv[2]);
  }
  if (mode == "touch" && argc == 3) {
    const std::size_t bytes = std::strtoull(argv[2], nullptr, 10) << 20;
    auto* p = static_cast<volatile char*>(std::malloc(bytes));
    if (p == nullptr) return 3;
    for (std::size_t k = 0; k < bytes; k += 4096) p[k] = 1;
    std::free(const_cast<char*>(p));
    return 0;
  }
  if (mode == "sweep" && (argc == 4 || argc == 5)) {
    try {
      spattn::experiments::SweepOptions o;
      o.out_base = argv[3];
      if (argc == 5) o.resume_dir = argv[4];
      o.progress = &std::cerr;
      const spattn::experiments::Experiment e = spattn::experiments::load_experiment(argv[2]);
      const spattn::experiments::SweepSummary s = spattn::experiments::run_sweep(e, o);
      std::cout << s.dir.string() << "\n";
      return s.interrupted_by != 0 ? 130 : 0;
    } catch (const std::exception& e) {
      std::cerr << "error: " << e.what() << "\n";
      return 1;
    }
  }
  std::cerr << "usage: spattn_sweep_test_worker point FILE | sweep FILE OUT [DIR] | touch MIB\n";
  return 2;
}
