// Score modifications through the experiments layer: `spattn run --alibi --softcap --sinks
// --scale` (checked against the reference, recorded in the Measurement, bad values exit 2) and
// the sweep axes `alibi` and `softcap` of experiment files.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "temp_dir.hpp"

namespace {

std::string write_values(const spattn::test::TempDir& dir, const std::string& name,
                         const std::vector<float>& values) {
  const std::string path = dir.file(name);
  spattn::write_npy(path, "<f4", {static_cast<std::int64_t>(values.size())}, values.data(),
                    values.size() * sizeof(float));
  return path;
}

}  // namespace

TEST_CASE("score mods: spattn run applies and records them", "[score-mod][cli]") {
  const spattn::test::TempDir dir("spattn_score_mod_cli");
  const std::string sinks = write_values(dir, "sinks.npy", {0.5f, -1.0f, 2.0f, 0.0f});
  const std::string slopes = write_values(dir, "slopes.npy", {0.5f, 0.25f, 0.1f, 0.05f});
  const auto r = spattn::test::run_cli(fmt::format(
      "run 'sliding(40) | sink(2)' --n 150 --nk 260 --heads 4 --kv-heads 2 --d 24 --block 32 "
      "--alibi-slopes '{}' --softcap 7.5 --sinks '{}' --scale 0.3 --check --repeats 1 --json",
      slopes, sinks));
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["axes"]["alibi"] == true);
  CHECK(j["axes"]["softcap"] == 7.5);
  CHECK(j["axes"]["sinks"] == true);
  CHECK(j["axes"]["scale"] == 0.3);
  CHECK(j["predicted"]["score_mod_flops"].get<double>() > 0);
  CHECK(j["check"]["max_rel_error"].get<double>() <= 1e-5);
  CHECK(j["check"]["max_lse_error"].get<double>() <= 1e-5);
  // The paper's slopes with --alibi, the textbook executor too.
  const auto t = spattn::test::run_cli(
      "run causal --n 100 --heads 4 --d 16 --alibi --executor textbook --check --repeats 1 --json");
  REQUIRE(t.code == 0);
  const auto tj = nlohmann::json::parse(t.out);
  CHECK(tj["axes"]["alibi"] == true);
  CHECK(tj["axes"]["softcap"].is_null());
  CHECK(tj["check"]["max_rel_error"].get<double>() <= 1e-5);
}

TEST_CASE("score mods: bad values exit 2 naming the value", "[score-mod][cli]") {
  const spattn::test::TempDir dir("spattn_score_mod_cli_bad");
  const std::string three = write_values(dir, "three.npy", {0.5f, -1.0f, 2.0f});
  const std::string inf =
      write_values(dir, "inf.npy", {0.5f, std::numeric_limits<float>::infinity(), 0.0f, 1.0f});
  const std::pair<std::string, std::string> cases[] = {
      {"--softcap 0", "--softcap 0"},
      {"--softcap -2", "--softcap -2"},
      {"--scale 0", "--scale 0"},
      {fmt::format("--sinks '{}'", three), "shape [3] but there are 4 query heads"},
      {fmt::format("--alibi-slopes '{}'", three), "shape [3] but there are 4 query heads"},
      {fmt::format("--sinks '{}'", inf), "value inf (query head 1) is not finite"},
  };
  for (const auto& [args, needle] : cases) {
    INFO(args);
    const auto r = spattn::test::run_cli("run causal --n 64 --heads 4 --repeats 1 " + args);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Matchers::Contains(needle));
  }
}

TEST_CASE("score mods: the alibi and softcap sweep axes", "[score-mod][toml]") {
  using namespace spattn::experiments;
  const Experiment e = parse_experiment(
      "name = \"t\"\nseq_len = [96]\nheads = 4\nkv_heads = 2\nhead_dim = 16\nblock = 32\n"
      "alibi = [false, true]\nsoftcap = [0, 30]\ncheck = true\nrepeats = 1\n"
      "patterns = [{name = \"w\", spec = \"sliding(20)\"}]\n",
      "mods.toml");
  const std::vector<SweepPoint> points = expand_points(e, false);
  REQUIRE(points.size() == 4);
  CHECK(points[0].key.find("alibi") == std::string::npos);  // defaults stay out of the key
  CHECK(points[3].key.find(";alibi=true") != std::string::npos);
  CHECK(points[3].key.find(";softcap=30") != std::string::npos);
  for (const SweepPoint& p : points) {
    INFO(p.key);
    const Measurement m = measure_point(point_from_json(point_to_json(p)));
    CHECK(m.axes.alibi == p.alibi);
    CHECK(m.axes.softcap.has_value() == (p.softcap > 0));
    REQUIRE(m.check);
    CHECK(m.check->max_rel_error <= 1e-5);
  }
  CHECK_THROWS_WITH(parse_experiment("name = \"t\"\nseq_len = [96]\nsoftcap = -1\n"
                                     "patterns = [{name = \"w\", spec = \"dense\"}]\n",
                                     "bad.toml"),
                    Catch::Matchers::Contains("softcap"));
}

TEST_CASE("score mods: the scale setting of experiment files", "[score-mod][toml]") {
  using namespace spattn::experiments;
  const std::string base =
      "name = \"t\"\nseq_len = [64]\nheads = 2\nhead_dim = 16\nblock = 32\ncheck = true\n"
      "repeats = 1\npatterns = [{name = \"w\", spec = \"sliding(20)\"}]\n";
  const Experiment e = parse_experiment(base + "scale = 0.1\n", "scale.toml");
  const std::vector<SweepPoint> points = expand_points(e, false);
  REQUIRE(points.size() == 1);
  // The point's child gets it through the point JSON; the record says it; the check compares
  // with the reference at that scale (a run that ignored it would fail the check).
  const SweepPoint p = point_from_json(point_to_json(points[0]));
  REQUIRE(p.scale);
  CHECK(*p.scale == 0.1);
  const Measurement m = measure_point(p);
  REQUIRE(m.axes.scale);
  CHECK(*m.axes.scale == 0.1);
  REQUIRE(m.check);
  CHECK(m.check->max_rel_error <= 1e-5);
  CHECK_FALSE(expand_points(parse_experiment(base, "p.toml"), false)[0].scale);
  for (const char* bad :
       {"scale = 0", "scale = -0.5", "scale = inf", "scale = nan", "scale = \"big\""}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_experiment(base + bad + "\n", "bad.toml"),
                      Catch::Matchers::Contains("scale"));
  }
}
