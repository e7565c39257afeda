// Sharded sweeps: the partition of points (assign_shards), `spattn sweep --shard i/n`, resuming a
// shard, and `spattn merge` against a single-process run of the same experiment.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "spattn/experiments/shard.hpp"
#include "spattn/experiments/slurm.hpp"
#include "spattn/patterns/error.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using spattn::experiments::assign_shards;
using spattn::experiments::parse_shard;
using spattn::experiments::ShardItem;
using spattn::test::run_cli;
using spattn::test::TempDir;

std::vector<double> loads(const std::vector<ShardItem>& items, const std::vector<int>& of, int n) {
  std::vector<double> l(static_cast<std::size_t>(n), 0.0);
  for (std::size_t k = 0; k < items.size(); ++k)
    l[static_cast<std::size_t>(of[k] - 1)] += items[k].cost;
  return l;
}

// The smallest possible maximum load, by trying every assignment.
double best_max_load(const std::vector<ShardItem>& items, int n) {
  std::vector<int> a(items.size(), 0);
  double best = 1e300;
  while (true) {
    std::vector<double> l(static_cast<std::size_t>(n), 0.0);
    for (std::size_t k = 0; k < items.size(); ++k)
      l[static_cast<std::size_t>(a[k])] += items[k].cost;
    best = std::min(best, *std::max_element(l.begin(), l.end()));
    std::size_t k = 0;
    while (k < a.size() && ++a[k] == n) a[k++] = 0;
    if (k == a.size()) return best;
  }
}

std::vector<nlohmann::json> records(const fs::path& file, const std::string& kind) {
  std::ifstream in(file);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) {
    const nlohmann::json j = nlohmann::json::parse(line);
    if (j.value("kind", "") == kind) out.push_back(j);
  }
  return out;
}

std::vector<fs::path> run_dirs(const fs::path& base) {
  std::vector<fs::path> dirs;
  for (const auto& d : fs::directory_iterator(base)) dirs.push_back(d.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

// The layout's counts (what does not depend on the machine or the run).
nlohmann::json counts(const nlohmann::json& point) {
  nlohmann::json l = point.at("layout");
  l.erase("build_seconds");
  return l;
}

constexpr const char* kExperiment = R"toml(name = "sharded"
seq_len = [128, 256]
head_dim = 16
heads = 2
kv_heads = [2, 1]
threads = 1
block = 32
patterns = ["dense", "causal", "sliding(32)", {name = "local", spec = "sliding(64)"},
            {name = "too big", spec = "dense", min_n = 256}]
repeats = 1
warmup = 0
timeout = 60
check = true
)toml";

}  // namespace

TEST_CASE("parse_shard reads i/n and names what is allowed", "[shard]") {
  CHECK(parse_shard("1/1") == spattn::experiments::ShardSpec{1, 1});
  CHECK(parse_shard("3/7") == spattn::experiments::ShardSpec{3, 7});
  CHECK(parse_shard("3/7").text() == "3/7");
  for (const char* bad :
       {"0/3", "4/3", "1", "/3", "1/", "a/3", "-1/3", "1/0", "1/1000000", "1/2/3", " 1/2"})
    CHECK_THROWS_WITH(parse_shard(bad), Catch::Contains("1 <= i <= n"));
}

TEST_CASE("assign_shards: each key in one shard, independent of order, balanced", "[shard]") {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = 1 + trial % 4;
    const int count = 1 + static_cast<int>(rng() % 8);
    std::vector<ShardItem> items;
    for (int k = 0; k < count; ++k)
      items.push_back({std::to_string(rng() % 100000) + "_" + std::to_string(k),
                       k % 3 == 0 ? 0.0 : static_cast<double>(1 + rng() % 50)});
    const std::vector<int> of = assign_shards(items, n);
    REQUIRE(of.size() == items.size());
    for (const int s : of) CHECK((s >= 1 && s <= n));
    // The same keys in another order land in the same shards.
    std::vector<std::size_t> perm(items.size());
    std::iota(perm.begin(), perm.end(), std::size_t{0});
    std::shuffle(perm.begin(), perm.end(), rng);
    std::vector<ShardItem> shuffled;
    for (const std::size_t k : perm) shuffled.push_back(items[k]);
    const std::vector<int> of2 = assign_shards(shuffled, n);
    for (std::size_t j = 0; j < perm.size(); ++j) CHECK(of2[j] == of[perm[j]]);
    // Within 4/3 of the best maximum load (brute force).
    const std::vector<double> l = loads(items, of, n);
    const double worst = *std::max_element(l.begin(), l.end());
    CHECK(worst <= 4.0 / 3.0 * best_max_load(items, n) + 1e-9);
  }
}

TEST_CASE("assign_shards spreads points of no cost by count", "[shard]") {
  std::vector<ShardItem> items;
  for (int k = 0; k < 10; ++k) items.push_back({std::to_string(k) + "k", 0.0});
  const std::vector<int> of = assign_shards(items, 4);
  std::map<int, int> per;
  for (const int s : of) ++per[s];
  CHECK(per == std::map<int, int>{{1, 3}, {2, 3}, {3, 2}, {4, 2}});
}

TEST_CASE("sharded sweep + merge equals the single-process sweep", "[shard][cli]") {
  const TempDir tmp("spattn_shard");
  const std::string file = tmp.file("sharded.toml");
  std::ofstream(file) << kExperiment;
  const fs::path single = tmp.path() / "single", shards = tmp.path() / "shards";
  REQUIRE(run_cli("sweep '" + file + "' --no-report --out '" + single.string() + "'").code == 0);
  for (int i = 1; i <= 3; ++i) {
    const auto r = run_cli("sweep '" + file + "' --no-report --shard " + std::to_string(i) +
                           "/3 --out '" + (shards / std::to_string(i)).string() + "'");
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
  const std::vector<nlohmann::json> whole =
      records(run_dirs(single / "sharded").front() / "results.jsonl", "point");
  REQUIRE(whole.size() == 18);  // (4 patterns x 2 N + "too big" at 256 only) x 2 kv_heads
  std::set<std::string> keys_in_shards;
  std::vector<std::string> shard_dirs;
  std::vector<double> shard_seconds;
  for (int i = 1; i <= 3; ++i) {
    const fs::path dir = run_dirs(shards / std::to_string(i) / "sharded").front();
    shard_dirs.push_back(dir.string());
    const auto header = records(dir / "results.jsonl", "header");
    REQUIRE(header.size() == 1);
    CHECK(header[0]["shard"] == nlohmann::json{{"index", i}, {"count", 3}});
    const auto points = records(dir / "results.jsonl", "point");
    CHECK(!points.empty());
    double predicted = 0;
    for (const auto& p : points) {
      CHECK(keys_in_shards.insert(p["key"].get<std::string>()).second);
      predicted += p["predicted"]["seconds"].get<double>();
    }
    shard_seconds.push_back(predicted);
  }
  CHECK(keys_in_shards.size() == whole.size());
  // Balanced by predicted time: no shard exceeds the mean by more than the longest point.
  double total = 0, longest = 0;
  for (const auto& p : whole) {
    total += p["predicted"]["seconds"].get<double>();
    longest = std::max(longest, p["predicted"]["seconds"].get<double>());
  }
  for (const double s : shard_seconds) CHECK(s <= total / 3 + longest + 1e-12);

  const fs::path merged = tmp.path() / "merged";
  const auto r = run_cli("merge '" + shard_dirs[2] + "' '" + shard_dirs[0] + "' '" + shard_dirs[1] +
                         "' --dir '" + merged.string() + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.err.empty());
  CHECK(fs::exists(merged / "table.md"));
  CHECK(fs::exists(merged / "meta.json"));
  const auto header = records(merged / "results.jsonl", "header");
  REQUIRE(header.size() == 1);
  CHECK(!header[0].contains("shard"));
  CHECK(header[0]["merged_from"].size() == 3);
  const auto points = records(merged / "results.jsonl", "point");
  REQUIRE(points.size() == whole.size());
  for (std::size_t k = 0; k < points.size(); ++k) {  // same keys, in point order
    CHECK(points[k]["key"] == whole[k]["key"]);
    CHECK(points[k]["index"] == whole[k]["index"]);
    CHECK(points[k]["status"] == "ok");
    CHECK(counts(points[k]) == counts(whole[k]));
  }
  // `spattn report` reads the merged directory like any other.
  CHECK(run_cli("report '" + merged.string() + "'").code == 0);

  SECTION("a missing shard is reported and --resume on the merged run completes it") {
    const fs::path partial = tmp.path() / "partial";
    const auto m = run_cli("merge '" + shard_dirs[0] + "' '" + shard_dirs[1] + "' --dir '" +
                           partial.string() + "' --no-report");
    REQUIRE(m.code == 0);
    CHECK_THAT(m.err, Catch::Contains("no input holds shard(s) 3/3"));
    const std::size_t missing = whole.size() - records(partial / "results.jsonl", "point").size();
    CHECK_THAT(m.err, Catch::Contains(std::to_string(missing) + " of 18 point(s) missing"));
    const auto res = run_cli("sweep --resume '" + partial.string() + "' --no-report");
    INFO(res.err);
    REQUIRE(res.code == 0);
    CHECK(records(partial / "results.jsonl", "point").size() == whole.size());
  }
  SECTION("duplicates are reported and kept once") {
    const auto m = run_cli("merge '" + shard_dirs[0] + "' '" + merged.string() + "' --dir '" +
                           (tmp.path() / "dup").string() + "' --no-report");
    REQUIRE(m.code == 0);
    CHECK_THAT(m.err, Catch::Contains("recorded by more than one input"));
    CHECK(records(tmp.path() / "dup" / "results.jsonl", "point").size() == whole.size());
  }
  SECTION("runs of another experiment text are refused") {
    const std::string other = tmp.file("other.toml");
    std::ofstream(other) << std::string(kExperiment) + "seed = 3\n";
    REQUIRE(run_cli("sweep '" + other + "' --no-report --shard 3/3 --out '" +
                    (tmp.path() / "other").string() + "'")
                .code == 0);
    const auto m = run_cli("merge '" + shard_dirs[0] + "' '" +
                           run_dirs(tmp.path() / "other" / "sharded").front().string() +
                           "' --dir '" + (tmp.path() / "bad").string() + "'");
    CHECK(m.code == 2);
    CHECK_THAT(m.err,
               Catch::Contains("not parts of one sweep") && Catch::Contains("experiment_toml"));
  }
}

TEST_CASE("a shard resumes as that shard", "[shard][cli]") {
  const TempDir tmp("spattn_shard_resume");
  const std::string file = tmp.file("sharded.toml");
  std::ofstream(file) << kExperiment;
  REQUIRE(
      run_cli("sweep '" + file + "' --no-report --shard 2/2 --out '" + tmp.file("o") + "'").code ==
      0);
  const fs::path dir = run_dirs(tmp.path() / "o" / "sharded").front();
  const auto all = records(dir / "results.jsonl", "point");
  REQUIRE(all.size() == 9);
  // A kill after two points: the file keeps the header and two point records.
  {
    std::ifstream in(dir / "results.jsonl");
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::ofstream out(dir / "results.jsonl", std::ios::trunc);
    for (std::size_t k = 0; k < 3; ++k) out << lines[k] << '\n';
  }
  CHECK(run_cli("sweep --resume '" + dir.string() + "' --shard 1/2 --no-report").code == 2);
  const auto r = run_cli("sweep --resume '" + dir.string() + "' --no-report");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("9 points: 7 recorded now (7 ok), 2 recorded before"));
  const auto after = records(dir / "results.jsonl", "point");
  REQUIRE(after.size() == all.size());
  for (std::size_t k = 0; k < all.size(); ++k) CHECK(after[k]["key"] == all[k]["key"]);
}

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("slurm_time rounds up to minutes in Slurm's syntaxes", "[slurm]") {
  using spattn::experiments::slurm_time;
  CHECK(slurm_time(1) == "1");
  CHECK(slurm_time(61) == "2");
  CHECK(slurm_time(3540) == "59");
  CHECK(slurm_time(3541) == "01:00:00");
  CHECK(slurm_time(2 * 3600 + 5 * 60) == "02:05:00");
  CHECK(slurm_time(86400 + 3600 + 1) == "1-01:01:00");
}

TEST_CASE("spattn sweep --slurm writes the job array, the merge job and submit.sh",
          "[slurm][cli]") {
  const TempDir tmp("spattn_slurm_scripts");
  const std::string file = tmp.file("sharded.toml");
  std::ofstream(file) << kExperiment << "memory = \"1GiB\"\n";
  const auto r = run_cli("sweep '" + file + "' --slurm --shards 1 --out '" + tmp.file("o") +
                         "' --partition short --account proj42 --prelude 'module load gcc'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::vector<fs::path> dirs = run_dirs(tmp.path() / "o" / "sharded-slurm");
  REQUIRE(dirs.size() == 1);
  const std::string array = slurp(dirs[0] / "array.sbatch");
  CHECK_THAT(array, Catch::Contains("#SBATCH --array=1-1\n"));
  // 18 points of 60 s timeout in one shard: 1080 s + 10% + 5 min = 1488 s -> 25 minutes.
  CHECK_THAT(array, Catch::Contains("#SBATCH --time=25\n"));
  CHECK_THAT(array, Catch::Contains("#SBATCH --mem=2048M\n"));  // 1 GiB + 1 GiB
  CHECK_THAT(array, Catch::Contains("#SBATCH --cpus-per-task=1\n"));
  CHECK_THAT(array, Catch::Contains("#SBATCH --partition=short\n#SBATCH --account=proj42\n"
                                    "module load gcc\n"));
  CHECK_THAT(array, Catch::Contains("--shard \"$i/1\""));
  CHECK_THAT(array, Catch::Contains("--resume"));
  CHECK_THAT(slurp(dirs[0] / "merge.sbatch"),
             Catch::Contains(" merge ") && Catch::Contains("#SBATCH --partition=short"));
  CHECK_THAT(slurp(dirs[0] / "submit.sh"), Catch::Contains("--dependency=afterany:"));
  CHECK(fs::is_directory(dirs[0] / "logs"));

  // Given limits replace the derived ones.
  const auto r3 = run_cli("sweep '" + file +
                          "' --slurm --shards 3 --time 1-00:00:00 --mem 3GiB "
                          "--cpus 2 --out '" +
                          tmp.file("o3") + "'");
  REQUIRE(r3.code == 0);
  const std::string a3 = slurp(run_dirs(tmp.path() / "o3" / "sharded-slurm")[0] / "array.sbatch");
  CHECK_THAT(a3, Catch::Contains("#SBATCH --array=1-3\n#SBATCH --time=1-00:00:00\n"
                                 "#SBATCH --mem=3072M\n#SBATCH --cpus-per-task=2\n"));
  CHECK_THAT(a3, !Catch::Contains("--partition"));

  SECTION("refusals") {
    const std::string o = " --out '" + tmp.file("bad") + "'";
    CHECK(run_cli("sweep '" + file + "' --submit" + o).code == 2);
    CHECK(run_cli("sweep '" + file + "' --slurm --shards 19" + o).code == 2);
    CHECK(run_cli("sweep '" + file + "' --slurm --shard 1/2" + o).code == 2);
    const auto t = run_cli("sweep '" + file + "' --slurm --time 'soon'" + o);
    CHECK(t.code == 2);
    CHECK_THAT(t.err, Catch::Contains("not a Slurm time limit"));
  }
}
