// Pattern plugins through the CLI: a good plugin's patterns in specs (counts against a
// brute-force count of their rules), from --plugin before or after the command and from
// SPATTN_PLUGINS, and each way a library is refused, with its message.
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.hpp"

namespace {

using i64 = std::int64_t;
using spattn::test::run_cli;

const std::string kGood = SPATTN_TEST_PLUGIN_good;

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

// Allowed pairs of `kth_key(k) | near_band(w)` at nq = nk = n, from the rules themselves.
i64 brute_force_count(i64 n, i64 k, i64 w) {
  i64 c = 0;
  for (i64 i = 0; i < n; ++i)
    for (i64 j = 0; j < n; ++j) c += (j % k == 0 || (i - w <= j && j <= i)) ? 1 : 0;
  return c;
}

i64 allowed_pairs(const spattn::test::CliResult& r) {
  return nlohmann::json::parse(r.out).at("layout").at("allowed_pairs").get<i64>();
}

}  // namespace

TEST_CASE("plugins: a plugin's patterns work in specs, compositions and every entry point",
          "[plugins][cli]") {
  const std::string spec = quote("kth_key(7) | near_band(3)");
  const i64 want = brute_force_count(150, 7, 3);

  const auto before = run_cli("--plugin " + quote(kGood) + " stats " + spec + " --n 150 --json");
  REQUIRE(before.code == 0);
  CHECK(allowed_pairs(before) == want);
  CHECK(nlohmann::json::parse(before.out).at("layout").at("build") == "analytic");

  const auto after =
      run_cli("stats " + spec + " --n 150 --block 16 --json --plugin " + quote(kGood));
  REQUIRE(after.code == 0);
  CHECK(allowed_pairs(after) == want);

  const auto env = run_cli("stats " + spec + " --n 150 --json", "SPATTN_PLUGINS=" + quote(kGood));
  REQUIRE(env.code == 0);
  CHECK(allowed_pairs(env) == want);

  // The same library named twice (environment and option) loads once.
  const auto twice = run_cli("--plugin " + quote(kGood) + " stats " + spec + " --n 150 --json",
                             "SPATTN_PLUGINS=" + quote(kGood));
  REQUIRE(twice.code == 0);
  CHECK(allowed_pairs(twice) == want);

  // Attention over a plugin pattern, checked against the reference executor.
  const auto run = run_cli("--plugin " + quote(kGood) + " run " + spec + " --n 96 --d 8 --check");
  REQUIRE(run.code == 0);

  // `spattn patterns` lists them with the library they come from.
  const auto listing = run_cli("--plugin " + quote(kGood) + " patterns");
  REQUIRE(listing.code == 0);
  CHECK(listing.out.find("kth_key") != std::string::npos);
  CHECK(listing.out.find(kGood) != std::string::npos);

  // Without the plugin the name is unknown.
  const auto without = run_cli("stats " + spec + " --n 150");
  CHECK(without.code == 2);
  CHECK(without.err.find("kth_key") != std::string::npos);
}

TEST_CASE("plugins: a bad library is a clear error naming it", "[plugins][cli]") {
  struct Case {
    std::string path;
    std::string message;
  };
  const Case cases[] = {
      {SPATTN_TEST_PLUGIN_clash, "pattern 'sliding' clashes with the built-in pattern 'sliding'"},
      {SPATTN_TEST_PLUGIN_old_version,
       "was built for plugin API version 1002, this spattn has version 2"},
      {SPATTN_TEST_PLUGIN_no_entry,
       "is not a spattn plugin: symbol 'spattn_plugin_api_version' not found"},
      {SPATTN_TEST_PLUGIN_unresolved, "undefined symbol"},
      {"/nonexistent/libnothing.so", "no such file"},
  };
  for (const Case& c : cases) {
    INFO(c.path);
    const auto r = run_cli("--plugin " + quote(c.path) + " stats causal --n 16");
    CHECK(r.code == 2);
    CHECK(r.err.find("plugin '" + c.path + "'") != std::string::npos);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(r.out.empty());
  }
  // A clash between two plugins names the plugin that holds the name.
  const spattn::test::TempDir dir("spattn_plugins");
  const std::string copy = dir.file("libcopy.so");
  std::filesystem::copy_file(kGood, copy);
  const auto r =
      run_cli("--plugin " + quote(kGood) + " --plugin " + quote(copy) + " stats causal --n 16");
  CHECK(r.code == 2);
  CHECK(r.err.find("plugin '" + copy +
                   "': pattern 'kth_key' clashes with pattern 'kth_key' of "
                   "plugin '" +
                   kGood + "'") != std::string::npos);
}

TEST_CASE("plugins: an experiment file's plugins reach the sweep's points and its meta",
          "[plugins][cli][sweep]") {
  const spattn::test::TempDir dir("spattn_plugin_sweep");
  // The library next to the file, named relative to it.
  std::filesystem::copy_file(kGood, dir.file("libmine.so"));
  {
    std::ofstream toml(dir.file("mine.toml"));
    toml << "name = \"mine\"\n"
            "plugins = [\"libmine.so\"]\n"
            "patterns = [\"kth_key(5) | near_band(2)\"]\n"
            "seq_len = [4096]\nhead_dim = 8\nheads = 1\nkv_heads = 1\nrepeats = 1\nwarmup = 0\n"
            "[quick]\nseq_len = [80]\n";
  }
  const auto r = run_cli("sweep " + quote(dir.file("mine.toml")) + " --quick --out " +
                         quote(dir.file("results")) + " --no-report");
  REQUIRE(r.code == 0);
  std::filesystem::path run_dir;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "results" / "mine"))
    run_dir = entry.path();
  REQUIRE(!run_dir.empty());
  std::ifstream results(run_dir / "results.jsonl");
  std::string header, line;
  REQUIRE(std::getline(results, header));
  REQUIRE(std::getline(results, line));
  const auto record = nlohmann::json::parse(line);
  CHECK(record.at("status") == "ok");
  CHECK(record.at("layout").at("allowed_pairs").get<i64>() == brute_force_count(80, 5, 2));
  std::ifstream meta_file(run_dir / "meta.json");
  const auto meta = nlohmann::json::parse(meta_file);
  REQUIRE(meta.at("plugins").size() == 1);
  CHECK(meta.at("plugins")[0] == dir.file("libmine.so"));

  // --resume reloads the run's plugins (from meta.json: the header's relative path is not
  // relative to the run directory) and, without --quick, says it resumes the quick profile.
  {
    std::ofstream cut(run_dir / "results.jsonl", std::ios::trunc);
    cut << header << '\n';
  }
  const auto resumed = run_cli("sweep --resume " + quote(run_dir.string()) + " --no-report");
  REQUIRE(resumed.code == 0);
  CHECK(resumed.err.find("was started with --quick: resuming its quick profile") !=
        std::string::npos);
  std::ifstream again(run_dir / "results.jsonl");
  REQUIRE(std::getline(again, header));
  REQUIRE(std::getline(again, line));
  const auto redone = nlohmann::json::parse(line);
  CHECK(redone.at("status") == "ok");
  CHECK(redone.at("axes").at("n") == 80);
  CHECK(redone.at("layout").at("allowed_pairs").get<i64>() == brute_force_count(80, 5, 2));

  // A plugin that is not there: the file, its line and the path.
  {
    std::ofstream toml(dir.file("bad.toml"));
    toml << "name = \"bad\"\npatterns = [\"causal\"]\nplugins = [\"libnothing.so\"]\n"
            "seq_len = [64]\n";
  }
  const auto bad = run_cli("sweep " + quote(dir.file("bad.toml")) + " --dry-run");
  CHECK(bad.code == 2);
  CHECK(bad.err.find("bad.toml:3: plugins: plugin '" + dir.file("libnothing.so") +
                     "': no such file") != std::string::npos);
}
