// spattn sweep --repeats/--warmup/--threads: they replace the experiment's settings for every
// point, are recorded in the run's header and records, and cannot change on --resume.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using Catch::Contains;

TEST_CASE("spattn sweep: --repeats, --warmup and --threads override the file", "[cli][sweep]") {
  const spattn::test::TempDir dir("spattn_sweep_overrides");
  std::ofstream(dir.file("e.toml"))
      << "name = \"ov\"\npatterns = [\"causal\", \"sliding(8)\"]\nseq_len = 32\nhead_dim = 8\n"
         "heads = 1\nblock = 16\nthreads = [0, 2]\nrepeats = 5\nwarmup = 1\n";
  const std::string out = " --out '" + dir.file("res") + "' --no-report";
  const auto r = spattn::test::run_cli("sweep '" + dir.file("e.toml") + "'" + out +
                                       " --repeats 2 --warmup 0 --threads 1");
  REQUIRE(r.code == 0);
  fs::path run_dir;
  for (const auto& d : fs::directory_iterator(dir.path() / "res" / "ov")) run_dir = d.path();
  std::ifstream in(run_dir / "results.jsonl");
  std::vector<nlohmann::json> points;
  nlohmann::json header;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["kind"] == "header") header = j;
    if (j["kind"] == "point") points.push_back(j);
  }
  CHECK(header["overrides"] == nlohmann::json({{"repeats", 2}, {"warmup", 0}, {"threads", 1}}));
  // threads = [0, 2] became 1 for both: one point per pattern, keyed t=1.
  REQUIRE(points.size() == 2);
  for (const auto& p : points) {
    CHECK(p["status"] == "ok");
    CHECK(p["attention"]["repeats"] == 2);
    CHECK(p["attention"]["warmup"] == 0);
    CHECK(p["attention"]["seconds"].size() == 2);
    CHECK(p["axes"]["threads"] == 1);
    CHECK_THAT(p["key"].get<std::string>(), Contains(";t=1;"));
  }
  // A resumed run keeps them; other values are refused with the run's own.
  const auto again =
      spattn::test::run_cli("sweep --resume '" + run_dir.string() + "' --no-report --repeats 3");
  CHECK(again.code == 2);
  CHECK_THAT(again.err, Contains("started with the overrides") && Contains("\"repeats\":2"));
  const auto same = spattn::test::run_cli("sweep --resume '" + run_dir.string() + "' --no-report");
  CHECK(same.code == 0);
  CHECK_THAT(same.out, Contains("0 recorded now") && Contains("2 recorded before"));
  const auto bad = spattn::test::run_cli("sweep '" + dir.file("e.toml") + "' --repeats 0" + out);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("--repeats"));
}
