// The CLI with selectors: `spattn run` selects on its inputs and records select_ms apart from
// attention (checked against the reference), `stats` and `mask` without inputs name --inputs.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli_runner.hpp"

using spattn::test::run_cli;

TEST_CASE("spattn run selects on its inputs and records the selection", "[selectors][cli]") {
  const auto r = run_cli(
      "run 'moba(64, 2) | sink(4)' --n 300 --nk 333 --heads 4 --kv-heads 2 --batch 2 --check "
      "--repeats 1 --json");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.contains("selection"));
  CHECK(j["selection"]["select_ms"].get<double>() > 0);
  CHECK(j["selection"]["flops"].get<double>() > 0);
  CHECK(j["check"]["finite"].get<bool>());
  CHECK(j["check"]["max_rel_error"].get<double>() < 1e-4);
  // A static spec has no selection group.
  const auto s = run_cli("run causal --n 64 --repeats 1 --json");
  REQUIRE(s.code == 0);
  CHECK_FALSE(nlohmann::json::parse(s.out).contains("selection"));
}

TEST_CASE("stats and mask of a selector without inputs name --inputs", "[selectors][cli]") {
  for (const char* cmd :
       {"stats 'vertical_slash(30, 50)' --n 128", "mask 'moba(16, 2) & sliding(64)' --n 128"}) {
    INFO(cmd);
    const auto r = run_cli(cmd);
    CHECK(r.code == 2);
    CHECK(r.err.find("--inputs") != std::string::npos);
  }
}
