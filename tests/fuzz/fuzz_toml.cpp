// fuzz_toml: parse_experiment on arbitrary bytes (an experiment file, TOML).
//
// A malformed file must end in a spattn::UsageError; any other exception, crash, hang or
// sanitizer report is a bug. An accepted file must expand (full and [quick]) to at least one and
// at most 100000 points with distinct keys, whose JSON form reads back to the same key.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "fuzz_registry.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/patterns/error.hpp"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_toml: %s\n  detail: %s\n", what, detail.c_str());
  std::abort();
}

void check_points(const spattn::experiments::Experiment& e, bool quick) {
  using namespace spattn::experiments;
  const std::vector<SweepPoint> points = expand_points(e, quick);
  if (points.empty() || points.size() > 100000) fail("point count out of bounds", e.name);
  std::set<std::string> keys;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const SweepPoint& p = points[i];
    if (!keys.insert(p.key).second) fail("repeated point key", p.key);
    if (p.index != static_cast<int>(i)) fail("index out of order", p.key);
    if (p.pattern.max_n != 0 && p.n > p.pattern.max_n) fail("max_n not applied", p.key);
    if (p.heads % p.kv_heads != 0) fail("heads not a multiple of kv_heads", p.key);
    // The JSON round trip is the child protocol; a few points per input keep the fuzzer fast.
    if (i < 8) {
      SweepPoint back;
      try {
        back = point_from_json(nlohmann::json::parse(point_to_json(p).dump()));
      } catch (const spattn::UsageError& err) {
        fail("point_from_json refused a point of the loader", err.what());
      }
      if (back.key != p.key || point_key(back) != p.key)
        fail("the point JSON does not round-trip", p.key);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  spattn::experiments::Experiment e;
  try {
    e = spattn::experiments::parse_experiment(text, "fuzz.toml", spattn::fuzz::fuzz_registry());
  } catch (const spattn::UsageError&) {
    return 0;  // rejected with a proper error: fine
  }
  check_points(e, false);
  check_points(e, true);
  return 0;
}
