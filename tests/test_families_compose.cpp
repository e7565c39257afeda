// Every registered pattern inside compositions: a union or difference ORs and clears the
// children's bits in one shared tile mask, so a child's fast paths must only add its own pairs
// (a child that copied a mask row, say, would leak its sibling's pairs into other rows). Oracle:
// the composed pattern's allows(), pair by pair (each child's allows is checked against its
// written rule in the family tests).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "small_specs.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"

namespace {

using i64 = std::int64_t;

// Builds `spec` at `g` and compares every pair and the allowed count with allows(). Returns false
// when the geometry does not suit the pattern (a UsageError, e.g. ds_* needing nq = nk).
bool check_composition(const std::string& spec, const spattn::Geometry& g) {
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  spattn::Layout layout;
  try {
    layout = spattn::build_layout(*p, g);
  } catch (const spattn::UsageError&) {
    return false;
  }
  CHECK_FALSE(layout.scanned);
  for (int h = 0; h < g.heads; ++h) {
    i64 expected = 0, mismatches = 0;
    for (i64 i = 0; i < g.nq; ++i)
      for (i64 j = 0; j < g.nk; ++j) {
        const bool want = p->allows(g, h, i, j);
        expected += want;
        if (layout.head(h).allows(i, j) != want && ++mismatches == 1)
          FAIL_CHECK(
              fmt::format("{} nq={} nk={} block {}x{} head {}: pair ({}, {}) layout {} "
                          "allows {}",
                          spec, g.nq, g.nk, g.block_q, g.block_k, h, i, j, !want, want));
      }
    CHECK(mismatches == 0);
    CHECK(layout.head(h).counts().allowed_pairs == expected);
  }
  return true;
}

}  // namespace

TEST_CASE("every registered pattern composes exactly with |, - and &", "[families][compose]") {
  const std::vector<spattn::Geometry> geometries = {
      {100, 121, 2, 16, 16}, {116, 121, 1, 128, 16}, {128, 128, 2, 32, 64}, {128, 128, 1, 16, 16}};
  int checked_names = 0;
  for (const spattn::PatternInfo* info : spattn::Registry::global().all()) {
    if (info->name == "blocks" || info->name == "deepspeed") continue;  // read files
    // Selectors need Q and K to have a layout: tests/test_selectors.cpp composes them.
    if (spattn::test::is_selector(*info)) continue;
    const auto it = spattn::test::small_spec_table().find(info->name);
    INFO(info->name << ": add a small-geometry spec for it to tests/small_specs.hpp");
    REQUIRE(it != spattn::test::small_spec_table().end());
    int built = 0;
    for (const spattn::Geometry& g : geometries) {
      // documents() must add up to nk.
      const std::string e = it->second == "{documents}" ? fmt::format("documents(lengths=[{}, {}])",
                                                                      g.nk / 3, g.nk - g.nk / 3)
                                                        : it->second;
      const std::vector<std::string> specs = {
          fmt::format("strided(7) | {}",
                      e),  // the other side's bits (different in every row) first
          fmt::format("({}) | strided(7)", e),       // ... and after
          fmt::format("({}) - strided(5)", e),       // cleared bits
          fmt::format("(sink(2) | {}) & causal", e)  // intersection
      };
      for (const std::string& s : specs) built += check_composition(s, g);
    }
    CHECK(built > 0);
    ++checked_names;
  }
  CHECK(checked_names >= 25);
}
