#include <catch2/catch.hpp>
#include "spattn/patterns/spec.hpp"
#include "spattn/patterns/layout.hpp"
TEST_CASE("smoke") {
  auto p = spattn::parse_spec("sliding(4) | sink(1)");
  spattn::Geometry g{10, 10, 1, 16, 16};
  auto L = spattn::build_layout(*p, g);
  CHECK(L.counts().allowed_pairs > 0);
}
