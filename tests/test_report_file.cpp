// `spattn report FILE.jsonl`: a file of measurement records without a header (as appended by
// `spattn run --json >> runs.jsonl`) gives FILE.csv and FILE.md beside it, laid out as "scaling"
// against "dense"; a bad record names the file and line.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "cli_runner.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/report.hpp"
#include "spattn/patterns/error.hpp"
#include "temp_dir.hpp"

namespace ex = spattn::experiments;
namespace fs = std::filesystem;
using spattn::test::TempDir;

namespace {

// A record of `spattn run`: one point, index 0, attention times in seconds.
ex::Measurement run_record(const std::string& pattern, std::int64_t n, double seconds,
                           std::int64_t allowed) {
  ex::Measurement m;
  m.source = "run";
  m.key = fmt::format("{}/{}", pattern, n);
  m.axes.pattern = m.axes.spec = pattern;
  m.axes.n = m.axes.nk = n;
  ex::LayoutFigures l;
  l.allowed_pairs = l.computed_pairs = allowed;
  m.layout = l;
  m.attention = ex::AttentionTimes{1, {seconds, seconds}};
  m.resources.peak_rss_bytes = 1 << 20;
  return m;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("spattn report FILE.jsonl: records without a header", "[report][cli]") {
  const TempDir dir("spattn_report_file");
  const fs::path file = dir.path() / "runs.jsonl";
  {
    std::ofstream out(file, std::ios::binary);
    // dense at 1K and 2K: 4 ms and 16 ms; sliding at 2K: 2 ms (8.00x faster than dense there).
    out << ex::to_json(run_record("dense", 1024, 4e-3, 8 << 20)).dump() << "\n"
        << ex::to_json(run_record("sliding", 2048, 2e-3, 8 * 512 * 2048)).dump() << "\n"
        << ex::to_json(run_record("dense", 2048, 16e-3, 32 << 20)).dump() << "\n";
  }
  const auto r = spattn::test::run_cli(fmt::format("report '{}'", file.string()));
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("wrote " + (dir.path() / "runs.csv").string()) != std::string::npos);
  CHECK(r.out.find("wrote " + (dir.path() / "runs.md").string()) != std::string::npos);
  CHECK(!fs::exists(dir.path() / "table.md"));
  const std::string md = slurp(dir.path() / "runs.md");
  INFO(md);
  CHECK(md.find("layout scaling · baseline dense") != std::string::npos);
  CHECK(md.find("Points: 3 (3 ok).") != std::string::npos);
  // Speedup of sliding at 2048 over dense at 2048: 16 / 2.
  CHECK(md.find("| sliding | 2048 | 2.000") != std::string::npos);
  CHECK(md.find("| 8.00x") != std::string::npos);
  // dense's log-log time slope over 1K..2K: log2(16/4) = 2.
  CHECK(md.find("| dense   | 2      | 1024..2048 | 2.000") != std::string::npos);
  // The CSV: a header row and one row per record, in file order (every index is 0).
  const std::string csv = slurp(dir.path() / "runs.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 4);
  CHECK(csv.rfind("source,key,index,status,message,pattern,spec,n,nk,", 0) == 0);
  const auto first = csv.find("\nrun,dense/1024,0,ok,,dense,dense,1024,1024,");
  const auto second = csv.find("\nrun,sliding/2048,0,ok,,sliding,sliding,2048,2048,");
  CHECK(first != std::string::npos);
  CHECK(second != std::string::npos);
  CHECK(first < second);
  // The library call says where it wrote.
  const ex::ReportFiles files = ex::write_reports(file);
  CHECK(files.csv == dir.path() / "runs.csv");
  CHECK(files.table == dir.path() / "runs.md");
  CHECK(slurp(files.table) == md);
}

TEST_CASE("spattn report FILE: bad files and records are named", "[report][cli]") {
  const TempDir dir("spattn_report_file_bad");
  // A record of a newer schema on line 2.
  const fs::path file = dir.path() / "runs.jsonl";
  {
    std::ofstream out(file, std::ios::binary);
    auto rec = ex::to_json(run_record("dense", 1024, 4e-3, 8 << 20));
    out << rec.dump() << "\n";
    rec["schema"] = 3;
    out << rec.dump() << "\n";
  }
  const auto newer = spattn::test::run_cli(fmt::format("report '{}'", file.string()));
  CHECK(newer.code == 2);
  CHECK(newer.err.find(file.string() + " line 2") != std::string::npos);
  CHECK(newer.err.find("schema 3") != std::string::npos);
  CHECK_THROWS_AS(ex::write_reports(file), spattn::UsageError);
  // A record with a mistyped field: named with its path.
  {
    std::ofstream out(file, std::ios::binary);
    auto rec = ex::to_json(run_record("dense", 1024, 4e-3, 8 << 20));
    rec["axes"]["n"] = "1024";
    out << rec.dump() << "\n";
  }
  CHECK_THROWS_WITH(ex::write_reports(file),
                    Catch::Contains(file.string() + " line 1") && Catch::Contains("axes.n"));
  // Not a .jsonl file, and a path that does not exist.
  const fs::path csv = dir.path() / "runs.csv";
  std::ofstream(csv) << "a,b\n";
  CHECK_THROWS_WITH(ex::write_reports(csv), Catch::Contains("not a .jsonl"));
  CHECK(slurp(csv) == "a,b\n");
  const auto missing =
      spattn::test::run_cli(fmt::format("report '{}'", (dir.path() / "nope.jsonl").string()));
  CHECK(missing.code == 2);
  CHECK(missing.err.find("does not exist") != std::string::npos);
}

TEST_CASE("spattn run --json records appended to a file feed spattn report", "[report][cli]") {
  const TempDir dir("spattn_report_runs");
  const fs::path file = dir.path() / "runs.jsonl";
  auto append_run = [&](const std::string& args) {
    const auto r = spattn::test::run_cli("run " + args + " --repeats 1 --json");
    INFO(args << "\n" << r.err);
    REQUIRE(r.code == 0);
    std::ofstream(file, std::ios::binary | std::ios::app) << r.out;
  };
  append_run("causal --n 96");
  append_run("causal --n 96 --seed 5");  // other inputs: its own point
  append_run("'sliding(16)' --n 96 --executor textbook");
  const auto first = spattn::test::run_cli(fmt::format("report '{}'", file.string()));
  INFO(first.out << first.err);
  REQUIRE(first.code == 0);
  std::string md = slurp(dir.path() / "runs.md");
  CHECK(md.find("Points: 3 (3 ok).") != std::string::npos);
  CHECK(md.find("replaced") == std::string::npos);
  const std::string csv = slurp(dir.path() / "runs.csv");
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 4);
  CHECK(csv.find("\nrun,pattern=causal;n=96;d=64;h=1;hkv=1;b=1;t=0;block=64;tile=auto;"
                 "inputs=random;seed=5,0,ok,") != std::string::npos);
  // The causal pairs of N = 96, from the record: 96 * 97 / 2.
  CHECK(csv.find(",causal,causal,96,96,") != std::string::npos);
  CHECK(csv.find(",4656,") != std::string::npos);

  // The same run again is the same point measured again: the later record replaces it.
  append_run("causal --n 96");
  REQUIRE(spattn::test::run_cli(fmt::format("report '{}'", file.string())).code == 0);
  md = slurp(dir.path() / "runs.md");
  CHECK(md.find("Points: 3 (3 ok).") != std::string::npos);
  CHECK(md.find("1 point record(s) were replaced by a later record with the same key.") !=
        std::string::npos);
}
