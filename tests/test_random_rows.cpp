// fill_normal_rows: a shard of a sequence holds exactly the rows fill_normal gives the whole.
#include <catch2/catch.hpp>

#include "spattn/attention/random.hpp"
#include "spattn/patterns/error.hpp"

TEST_CASE("fill_normal_rows equals the rows of fill_normal on the whole sequence", "[random]") {
  spattn::Tensor whole(2, 3, 37, 5);
  spattn::fill_normal(whole.view(), 9, 1);
  for (const std::int64_t first : {0, 1, 16, 30}) {
    const std::int64_t n = 37 - first < 7 ? 37 - first : 7;
    spattn::Tensor part(2, 3, n, 5);
    spattn::fill_normal_rows(part.view(), 9, 1, 37, first);
    for (int b = 0; b < 2; ++b)
      for (int h = 0; h < 3; ++h)
        for (std::int64_t i = 0; i < n; ++i)
          for (int x = 0; x < 5; ++x)
            REQUIRE(part.view().at(b, h, i, x) == whole.view().at(b, h, first + i, x));
  }
  spattn::Tensor part(1, 1, 8, 4);
  CHECK_THROWS_AS(spattn::fill_normal_rows(part.view(), 9, 1, 10, 3), spattn::UsageError);
  CHECK_THROWS_AS(spattn::fill_normal_rows(part.view(), 9, 1, 10, -1), spattn::UsageError);
}
