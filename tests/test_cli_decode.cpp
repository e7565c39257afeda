// spattn decode: the full policy is its own reference (relative L2 0, mass recall 1, needle read),
// a streaming window that ends after the needle never reads it, the cache memory is what the
// policy's slots take, and bad policies, dtypes and budgets exit 2 with a clear message.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"

using spattn::test::run_cli;

TEST_CASE("spattn decode reports speed, memory and fidelity", "[cli-decode]") {
  const auto full =
      run_cli("decode --prompt 600 --steps 6 --heads 4 --kv-heads 2 --d 32 --threads 2 --json");
  REQUIRE(full.code == 0);
  const auto j = nlohmann::json::parse(full.out);
  CHECK(j["rel_l2_max"].get<double>() == 0.0);
  CHECK(j["mass_recall_min"].get<double>() == 1.0);
  CHECK(j["needle_recall"].get<double>() == 1.0);
  CHECK(j["cache_tokens"].get<int>() == 606);
  CHECK(j["tokens_per_second"].get<double>() > 0);
  // K and V of 606 tokens x 2 heads x 32 floats are read on the last step.
  CHECK(j["kv_bytes_per_step"].get<double>() > 2 * 2 * 600 * 32 * 4);

  const auto st = run_cli(
      "decode --prompt 600 --steps 6 --heads 4 --kv-heads 2 --d 32 --policy 'streaming(4, 64)' "
      "--kv-dtype int8 --json");
  REQUIRE(st.code == 0);
  const auto s = nlohmann::json::parse(st.out);
  CHECK(s["needle_recall"].get<double>() == 0.0);  // the needle (position 200) left the window
  CHECK(s["cache_tokens"].get<int>() == 68);
  CHECK(s["mass_recall_mean"].get<double>() < 1.0);
  CHECK(s["rel_l2_mean"].get<double>() > 0.0);
  // 68 slots x 2 heads x (2 rows of 32 int8 + 4-byte scales + 8-byte position) + page min/max.
  CHECK(s["cache_bytes"].get<int>() == 2 * (68 * (2 * 36 + 8) + 5 * 32 * 8));
}

TEST_CASE("spattn decode refuses bad policies, dtypes and sizes with exit 2", "[cli-decode]") {
  const auto p = run_cli("decode --policy 'quest(16, 8)'");
  CHECK(p.code == 2);
  CHECK_THAT(p.err, Catch::Contains("budget = 8"));
  const auto d = run_cli("decode --kv-dtype fp8");
  CHECK(d.code == 2);
  CHECK_THAT(d.err, Catch::Contains("'fp8'"));
  const auto h = run_cli("decode --heads 6 --kv-heads 4");
  CHECK(h.code == 2);
  CHECK_THAT(h.err, Catch::Contains("multiple"));
  const auto o = run_cli("decode --policy lru");
  CHECK(o.code == 2);
  CHECK_THAT(o.err, Catch::Contains("unknown cache policy"));
}
