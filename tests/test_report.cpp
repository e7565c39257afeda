// Sweep reports: results.csv and table.md computed from a hand-written results.jsonl whose
// values follow known power laws, so every slope, ratio and fit has a value derived by hand.
#include <fmt/format.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli_runner.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/report.hpp"
#include "spattn/patterns/error.hpp"
#include "temp_dir.hpp"

using nlohmann::json;
using spattn::test::TempDir;
namespace fs = std::filesystem;

namespace {

json header(const std::string& layout, std::int64_t budget = 0) {
  return {{"kind", "header"},
          {"experiment", "synthetic"},
          {"stamp", "20260101-000000"},
          {"quick", false},
          {"report", {{"layout", layout}, {"baseline", "dense"}, {"budget_bytes", budget}}},
          {"experiment_toml", "name = \"synthetic\"\n"}};
}

struct Values {
  double seconds = 0;         // median attention time
  double rss = 0;             // peak RSS bytes
  double workspace = 0;       // workspace bytes
  double layout = 0;          // layout bytes
  double allowed = 0;         // allowed pairs
  double computed = 0;        // computed pairs
  double computed_flops = 0;  // predicted
  double density = 0;
};

using spattn::experiments::Measurement;

std::int64_t count(double v) {
  return std::llround(v);
}

// A point as the measurement record (schema 2) that a sweep writes: to_json of a Measurement.
Measurement measurement(int index, const std::string& pattern, std::int64_t n,
                        const std::string& status, const Values& v, const std::string& message = "",
                        const std::string& mode = "auto", int block = 64) {
  namespace ex = spattn::experiments;
  Measurement m;
  m.key = pattern + "/" + std::to_string(n) + "/" + mode + "/" + std::to_string(block);
  m.index = index;
  m.status = *ex::parse_status(status);
  m.message = message;
  m.axes.pattern = pattern;
  m.axes.spec = pattern == "dense" ? "dense" : "spec:" + pattern;
  m.axes.n = m.axes.nk = n;
  m.axes.threads = 2;
  m.axes.block_q = m.axes.block_k = block;
  m.axes.tile_mode = mode;
  ex::Prediction pred;
  pred.useful_flops = 256 * v.allowed;
  pred.computed_flops = v.computed_flops;
  pred.memory_bytes = 1000000;
  pred.seconds = 0.5;
  m.predicted = pred;
  if (status != "ok") return m;
  ex::LayoutFigures l;
  l.allowed_pairs = count(v.allowed);
  l.computed_pairs = count(v.computed);
  l.kept_tiles = 10;
  l.full_tiles = 8;
  l.partial_tiles = 2;
  l.layout_bytes = count(v.layout);
  l.build_seconds = 0.001;
  m.layout = l;
  m.attention = ex::AttentionTimes{1, {v.seconds * 0.9, v.seconds, v.seconds * 1.1}};
  m.resources.peak_rss_bytes = count(v.rss);
  m.resources.wall_seconds = 1.5;
  m.resources.workspace_bytes = count(v.workspace);
  return m;
}

// The same point as the untyped record (no "schema") of earlier versions.
json legacy_point(int index, const std::string& pattern, std::int64_t n, const std::string& status,
                  const Values& v, const std::string& message = "",
                  const std::string& mode = "auto", int block = 64) {
  json p = {{"kind", "point"},
            {"key", pattern + "/" + std::to_string(n) + "/" + mode + "/" + std::to_string(block)},
            {"index", index},
            {"axes",
             {{"pattern", pattern},
              {"spec", pattern == "dense" ? "dense" : "spec:" + pattern},
              {"n", n},
              {"head_dim", 64},
              {"heads", 8},
              {"kv_heads", 8},
              {"batch", 1},
              {"threads", 2},
              {"block", block},
              {"tile_mode", mode},
              {"inputs", "random"}}},
            {"status", status},
            {"message", message},
            {"predicted",
             {{"allowed_pairs", count(v.allowed)},
              {"computed_pairs", count(v.computed)},
              {"useful_flops", 256 * v.allowed},
              {"computed_flops", v.computed_flops},
              {"memory_bytes", 1000000},
              {"seconds", 0.5}}}};
  if (status != "ok") return p;
  p["peak_rss_bytes"] = count(v.rss);
  p["wall_seconds"] = 1.5;
  p["measure"] = {{"build_seconds", 0.001},
                  {"attention_seconds",
                   {{"median", v.seconds},
                    {"min", v.seconds * 0.9},
                    {"max", v.seconds * 1.1},
                    {"all", {v.seconds * 0.9, v.seconds, v.seconds * 1.1}}}},
                  {"allowed_pairs", count(v.allowed)},
                  {"computed_pairs", count(v.computed)},
                  {"density", v.density},
                  {"efficiency", v.allowed / v.computed},
                  {"useful_gflops", 256 * v.allowed / v.seconds / 1e9},
                  {"computed_gflops", 256 * v.computed / v.seconds / 1e9},
                  {"kept_tiles", 10},
                  {"full_tiles", 8},
                  {"partial_tiles", 2},
                  {"workspace_bytes", count(v.workspace)},
                  {"layout_bytes", count(v.layout)},
                  {"input_bytes", 4096},
                  {"check", nullptr},
                  {"fidelity", nullptr}};
  return p;
}

json point(int index, const std::string& pattern, std::int64_t n, const std::string& status,
           const Values& v, const std::string& message = "", const std::string& mode = "auto",
           int block = 64) {
  return json::parse(
      spattn::experiments::to_json(measurement(index, pattern, n, status, v, message, mode, block))
          .dump());
}

// dense: time = 2e-10·N^2 s, RSS = 16·N^2 B, workspace+layout = 8·N^2 + 2·N^2 B, FLOPs ∝ N^2.
Values dense(std::int64_t n) {
  const double N = static_cast<double>(n), h = 8;
  return {2e-10 * N * N, 16 * N * N, 8 * N * N,       2 * N * N,
          h * N * N,     h * N * N,  256 * h * N * N, 1.0};
}
// sliding: time = 5e-8·N s, RSS = 4096·N B, workspace+layout = 600·N + 400·N B, FLOPs ∝ N.
Values sliding(std::int64_t n) {
  const double N = static_cast<double>(n), h = 8;
  return {5e-8 * N,    4096 * N,    600 * N,           400 * N,
          h * 512 * N, h * 576 * N, 256 * h * 576 * N, 512 / N};
}

void write_lines(const fs::path& file, const std::vector<json>& records,
                 const std::string& tail = "") {
  std::ofstream out(file, std::ios::binary);
  for (const json& r : records) out << r.dump() << "\n";
  out << tail;
}

std::string slurp(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(' '), e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// The Markdown tables of a document, each a list of rows of trimmed cells (row 0: the head).
using MdTable = std::vector<std::vector<std::string>>;
std::vector<MdTable> md_tables(const std::string& md) {
  std::vector<MdTable> tables;
  std::istringstream in(md);
  std::string line;
  bool open = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '|') {
      open = false;
      continue;
    }
    if (line.find("---") != std::string::npos && line.find_first_not_of("|-") == std::string::npos)
      continue;
    std::vector<std::string> cells;
    std::string cell;
    for (std::size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
        cell += '|';
        ++i;
      } else if (line[i] == '|') {
        cells.push_back(trim(cell));
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    if (!open) tables.emplace_back();
    open = true;
    tables.back().push_back(cells);
  }
  return tables;
}

// The cell in column `column` of the first row whose leading cells equal `keys`, in the first
// table with that column after the heading that contains `section`.
std::string md_cell(const std::string& md, const std::string& section,
                    const std::vector<std::string>& keys, const std::string& column) {
  const auto at = md.find(section);
  REQUIRE(at != std::string::npos);
  for (const MdTable& t : md_tables(md.substr(at))) {
    const auto col = std::find(t[0].begin(), t[0].end(), column);
    if (col == t[0].end()) continue;
    for (std::size_t r = 1; r < t.size(); ++r) {
      bool match = true;
      for (std::size_t k = 0; k < keys.size(); ++k) match &= t[r][k] == keys[k];
      if (match) return t[r][col - t[0].begin()];
    }
    FAIL("no row " << keys[0] << " in the table with column " << column << " after " << section);
  }
  FAIL("no table with column " << column << " after " << section);
  return "";
}

// RFC 4180 CSV, enough for results.csv.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(cell);
      cell.clear();
    } else if (c == '\n') {
      rows.back().push_back(cell);
      cell.clear();
      rows.emplace_back();
    } else {
      cell += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

// The scaling sweep: dense at 1K..8K (16K ran out of memory), sliding at 1K..16K.
// Schema 2 (measurement records) or 1 (the untyped records of earlier versions).
std::vector<json> scaling_records(int schema = 2) {
  auto point_of = schema == 2 ? &point : &legacy_point;
  std::vector<json> r = {header("scaling")};
  int index = 0;
  for (std::int64_t n = 1024; n <= 8192; n *= 2)
    r.push_back(point_of(index++, "dense", n, "ok", dense(n), "", "auto", 64));
  r.push_back(point_of(index++, "dense", 16384, "oom", dense(16384),
                       "killed: \"std::bad_alloc\", at 16384, limit 8 GiB", "auto", 64));
  for (std::int64_t n = 1024; n <= 16384; n *= 2)
    r.push_back(point_of(index++, "sliding", n, "ok", sliding(n), "", "auto", 64));
  r.push_back({{"kind", "progress"}, {"note", "records of unknown kinds are ignored"}});
  return r;
}

}  // namespace

TEST_CASE("scaling report: slopes, speedups and failures from known power laws", "[report]") {
  // The same sweep as measurement records and as the untyped records of earlier versions.
  const int schema = GENERATE(2, 1);
  INFO("schema " << schema);
  const TempDir dir("spattn_report");
  write_lines(dir.path() / "results.jsonl", scaling_records(schema));
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);

  // time = c·N^2 and c'·N: log-log slopes 2 and 1 exactly, R^2 = 1; the cost model's FLOPs
  // scale the same way; RSS and workspace+layout were made ∝ N^2 and ∝ N.
  const std::string slopes = "## Slopes against N";
  CHECK(md_cell(md, slopes, {"dense"}, "time slope") == "2.000");
  CHECK(md_cell(md, slopes, {"dense"}, "points") == "4");
  CHECK(md_cell(md, slopes, {"dense"}, "predicted slope (computed FLOPs)") == "2.000");
  CHECK(md_cell(md, slopes, {"dense"}, "peak RSS slope") == "2.000");
  CHECK(md_cell(md, slopes, {"dense"}, "workspace+layout slope") == "2.000");
  CHECK(md_cell(md, slopes, {"sliding"}, "time slope") == "1.000");
  CHECK(md_cell(md, slopes, {"sliding"}, "points") == "5");
  CHECK(md_cell(md, slopes, {"sliding"}, "N range") == "1024..16384");
  CHECK(md_cell(md, slopes, {"sliding"}, "predicted slope (computed FLOPs)") == "1.000");
  CHECK(md_cell(md, slopes, {"sliding"}, "workspace+layout slope") == "1.000");
  CHECK(md_cell(md, slopes, {"sliding"}, "R^2") == "1.0000");

  // Speedup = 2e-10·N^2 / (5e-8·N) = 0.004·N: 8.192 at N = 2048, 32.768 at 8192; none at 16K
  // where dense did not run.
  const std::string per_n = "## Time, speed and memory per N";
  CHECK(md_cell(md, per_n, {"sliding", "2048"}, "speedup vs dense") == "8.19x");
  CHECK(md_cell(md, per_n, {"sliding", "8192"}, "speedup vs dense") == "32.77x");
  CHECK(md_cell(md, per_n, {"sliding", "16384"}, "speedup vs dense") == "-");
  CHECK(md_cell(md, per_n, {"dense", "1024"}, "speedup vs dense") == "1.00x");
  // dense at 2048: 2e-10·2048^2 s = 0.8388608 ms; RSS 16·2048^2 B = 64 MiB.
  CHECK(md_cell(md, per_n, {"dense", "2048"}, "time ms (median)") == "0.839");
  CHECK(md_cell(md, per_n, {"dense", "2048"}, "peak RSS") == "64.0 MiB");
  // sliding efficiency = allowed/computed = 512/576 = 0.888...
  CHECK(md_cell(md, per_n, {"sliding", "4096"}, "efficiency") == "0.889");

  // The point that failed is listed with its status and message.
  const std::string failed = "## Points that did not run";
  CHECK(md_cell(md, failed, {"dense", "16384"}, "status") == "oom");
  CHECK(md_cell(md, failed, {"dense", "16384"}, "message") ==
        "killed: \"std::bad_alloc\", at 16384, limit 8 GiB");
  CHECK(md.find("1 record(s) of unknown kinds were ignored") != std::string::npos);
  CHECK(md.find("Points: 10 (9 ok, 1 oom)") != std::string::npos);
}

TEST_CASE("results.csv holds one row per point with every field", "[report]") {
  const TempDir dir("spattn_report_csv");
  std::vector<json> records = scaling_records();
  // Fidelity recorded for one point (dense at 2048, index 1), null for the others.
  records[2]["fidelity"] = {{"rel_l2_error", 0.5},
                            {"recall_mean", 0.75},
                            {"recall_min", 0.25},
                            {"inputs", "random"},
                            {"baseline", "dense"}};
  write_lines(dir.path() / "results.jsonl", records);
  spattn::experiments::write_reports(dir.path());
  const auto rows = parse_csv(slurp(dir.path() / "results.csv"));
  REQUIRE(rows.size() == 1 + 10);  // header + 5 dense + 5 sliding points
  const auto& head = rows[0];
  auto col = [&](const std::string& name) {
    const auto it = std::find(head.begin(), head.end(), name);
    REQUIRE(it != head.end());
    return static_cast<std::size_t>(it - head.begin());
  };
  for (const auto& row : rows) REQUIRE(row.size() == head.size());
  // Row 3 is index 2: dense at N = 4096 (records[3]).
  const json& rec = records[3];
  const auto& row = rows[3];
  CHECK(row[col("pattern")] == "dense");
  CHECK(row[col("n")] == "4096");
  CHECK(row[col("nk")] == "4096");
  CHECK(row[col("block_q")] == "64");
  CHECK(row[col("tile_mode")] == "auto");
  CHECK(row[col("executor")] == "flash");
  CHECK(row[col("status")] == "ok");
  CHECK(row[col("source")] == "sweep");
  CHECK(row[col("attention.median")] == rec["attention"]["median"].dump());
  CHECK(std::stod(row[col("attention.median")]) == 2e-10 * 4096.0 * 4096.0);
  CHECK(row[col("resources.workspace_bytes")] == rec["resources"]["workspace_bytes"].dump());
  CHECK(row[col("predicted.computed_flops")] == rec["predicted"]["computed_flops"].dump());
  CHECK(row[col("resources.peak_rss_bytes")] == rec["resources"]["peak_rss_bytes"].dump());
  // dense allowed pairs 8·4096^2; density (derived) 1.
  CHECK(row[col("layout.allowed_pairs")] == "134217728");
  CHECK(std::stod(row[col("layout.density")]) == 1.0);
  // Arrays are joined with ';'; groups that were not measured give empty cells.
  CHECK(std::count(row[col("attention.seconds")].begin(), row[col("attention.seconds")].end(),
                   ';') == 2);
  CHECK(row[col("check.rel_l2_error")].empty());
  // A group has only its sub-columns, never a column of its own.
  CHECK(std::find(head.begin(), head.end(), "fidelity") == head.end());
  CHECK(std::find(head.begin(), head.end(), "check") == head.end());
  CHECK(rows[2][col("fidelity.recall_mean")] == "0.75");
  CHECK(rows[2][col("fidelity.inputs")] == "random");
  CHECK(row[col("fidelity.recall_mean")].empty());
  // The failed point: status and message (quoted, with its comma and quotes), empty measures
  // and its prediction.
  CHECK(rows[5][col("status")] == "oom");
  CHECK(rows[5][col("message")] == "killed: \"std::bad_alloc\", at 16384, limit 8 GiB");
  CHECK(rows[5][col("attention.median")].empty());
  CHECK(rows[5][col("predicted.memory_bytes")] == "1000000");

  // The same columns for the untyped records of earlier versions, the figures in the same cells.
  write_lines(dir.path() / "results.jsonl", scaling_records(1));
  spattn::experiments::write_reports(dir.path());
  const auto legacy = parse_csv(slurp(dir.path() / "results.csv"));
  REQUIRE(legacy.size() == rows.size());
  CHECK(legacy[0] == head);
  CHECK(legacy[3][col("attention.median")] == row[col("attention.median")]);
  CHECK(legacy[3][col("resources.peak_rss_bytes")] == row[col("resources.peak_rss_bytes")]);
  CHECK(legacy[5][col("message")] == rows[5][col("message")]);
}

TEST_CASE("report tolerates a truncated last line and is deterministic", "[report]") {
  const TempDir dir("spattn_report_trunc");
  const fs::path jsonl = dir.path() / "results.jsonl";
  // 12 complete lines (header, 10 points, 1 unknown kind), then an interrupted write on line 13.
  write_lines(jsonl, scaling_records(), R"({"kind":"point","key":"sliding/32768","ax)");
  const auto results = spattn::experiments::read_results(jsonl);
  CHECK(results.truncated_line == 13);
  CHECK(results.points.size() == 10);
  spattn::experiments::write_reports(dir.path());
  const std::string md1 = slurp(dir.path() / "table.md"), csv1 = slurp(dir.path() / "results.csv");
  CHECK(md1.find("Line 13 of results.jsonl is incomplete") != std::string::npos);
  spattn::experiments::write_reports(dir.path());
  CHECK(slurp(dir.path() / "table.md") == md1);
  CHECK(slurp(dir.path() / "results.csv") == csv1);
}

TEST_CASE("a malformed line in the middle is an error naming the line", "[report]") {
  const TempDir dir("spattn_report_bad");
  std::vector<json> records = scaling_records();
  const fs::path jsonl = dir.path() / "results.jsonl";
  {
    std::ofstream out(jsonl, std::ios::binary);
    out << records[0].dump() << "\n" << records[1].dump() << "\n{not json\n";
    for (std::size_t i = 2; i < records.size(); ++i) out << records[i].dump() << "\n";
  }
  CHECK_THROWS_WITH(spattn::experiments::read_results(jsonl), Catch::Contains("line 3"));
  CHECK_THROWS_AS(spattn::experiments::write_reports(dir.path()), spattn::UsageError);

  // A point record without its axes is as bad, and named the same way.
  json broken = records[2];
  broken.erase("axes");
  records[2] = broken;
  write_lines(jsonl, records);
  CHECK_THROWS_WITH(spattn::experiments::read_results(jsonl),
                    Catch::Contains("line 3") && Catch::Contains("axes"));
  CHECK_THROWS_AS(spattn::experiments::write_reports(dir.path() / "missing"), spattn::UsageError);
}

TEST_CASE("spattn report regenerates identical files", "[report][cli]") {
  const TempDir dir("spattn_report_cli");
  write_lines(dir.path() / "results.jsonl", scaling_records());
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md"), csv = slurp(dir.path() / "results.csv");
  fs::remove(dir.path() / "table.md");
  fs::remove(dir.path() / "results.csv");
  const auto r = spattn::test::run_cli(fmt::format("report '{}'", dir.path().string()));
  CHECK(r.code == 0);
  CHECK(r.out.find("table.md") != std::string::npos);
  CHECK(slurp(dir.path() / "table.md") == md);
  CHECK(slurp(dir.path() / "results.csv") == csv);

  // Errors: a missing directory, and a malformed middle line named by number.
  const auto missing =
      spattn::test::run_cli(fmt::format("report '{}'", (dir.path() / "nope").string()));
  CHECK(missing.code == 2);
  CHECK(missing.err.find("does not exist") != std::string::npos);
  {
    std::ofstream out(dir.path() / "results.jsonl", std::ios::app);
    out << "garbage\n" << scaling_records()[1].dump() << "\n";
  }
  const auto bad = spattn::test::run_cli(fmt::format("report '{}'", dir.path().string()));
  CHECK(bad.code == 2);
  CHECK(bad.err.find("line 13") != std::string::npos);  // after the 12 good lines
}

TEST_CASE("lra_table2 layout: speed and memory relative to dense", "[report]") {
  const TempDir dir("spattn_report_lra");
  std::vector<json> r = {header("lra_table2")};
  int index = 0;
  for (std::int64_t n : {1024, 2048, 3072, 4096})
    r.push_back(point(index++, "dense", n, "ok", dense(n)));
  for (std::int64_t n : {1024, 2048, 3072, 4096})
    r.push_back(point(index++, "sliding", n, "ok", sliding(n)));
  write_lines(dir.path() / "results.jsonl", r);
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);
  // Speed at 3K: 0.004·3072 = 12.288. Memory at 1K: 4096·N / (16·N^2) = 256/1024 = 0.25.
  CHECK(md_cell(md, "## Speed relative to dense", {"sliding"}, "3K") == "12.29x");
  CHECK(md_cell(md, "## Speed relative to dense", {"sliding"}, "1K") == "4.10x");
  CHECK(md_cell(md, "## Peak memory relative to dense", {"sliding"}, "1K") == "0.25x");
  // Dense row: absolute values (2e-10·1024^2 s = 0.2097152 ms; 16·1024^2 B = 16 MiB).
  CHECK(md_cell(md, "## Speed relative to dense", {"dense"}, "1K") == "0.210 ms");
  CHECK(md_cell(md, "## Peak memory relative to dense", {"dense"}, "1K") == "16.0 MiB");
}

TEST_CASE("flash_scaling layout: exponent per doubling and first N faster", "[report]") {
  const TempDir dir("spattn_report_flash");
  std::vector<json> r = {header("flash_scaling")};
  int index = 0;
  for (std::int64_t n = 128; n <= 1024; n *= 2)
    r.push_back(point(index++, "dense", n, "ok", dense(n)));
  for (std::int64_t n = 128; n <= 1024; n *= 2)
    r.push_back(point(index++, "sliding", n, "ok", sliding(n)));
  write_lines(dir.path() / "results.jsonl", r);
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);
  const std::string exp = "## Exponent per doubling of N";
  CHECK(md_cell(md, exp, {"dense"}, "128->256") == "2.00");
  CHECK(md_cell(md, exp, {"dense"}, "512->1K") == "2.00");
  CHECK(md_cell(md, exp, {"sliding"}, "256->512") == "1.00");
  CHECK(md_cell(md, exp, {"sliding"}, "overall (fit)") == "1.000");
  // sliding beats dense when 5e-8·N < 2e-10·N^2, i.e. N > 250: 128 is slower, 256 faster,
  // with speedup 0.004·256 = 1.024.
  const std::string beats = "## Where each sparse pattern first beats dense";
  CHECK(md_cell(md, beats, {"sliding"}, "first N faster") == "256");
  CHECK(md_cell(md, beats, {"sliding"}, "speedup") == "1.02x");
}

TEST_CASE("density layout: linear fit and cost of masking", "[report]") {
  const TempDir dir("spattn_report_density");
  std::vector<json> r = {header("density")};
  int index = 0;
  // t = 1 ms + 4 ms·density with every tile auto; 1.2 times that with every tile Partial.
  for (int pct = 10; pct <= 100; pct += 30) {
    Values v;
    v.density = pct / 100.0;
    v.seconds = 1e-3 + 4e-3 * v.density;
    v.allowed = v.computed = v.density * 4096.0 * 4096 * 8;
    v.rss = v.workspace = v.layout = 1e6;
    const std::string name = fmt::format("blocks {}%", pct);
    r.push_back(point(index++, name, 4096, "ok", v, "", "auto"));
    v.seconds *= 1.2;
    r.push_back(point(index++, name, 4096, "ok", v, "", "partial"));
  }
  write_lines(dir.path() / "results.jsonl", r);
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);
  const std::string fit = "## Linear fit t = a + b·density";
  CHECK(md_cell(md, fit, {"auto"}, "a (ms)") == "1.0000");
  CHECK(md_cell(md, fit, {"auto"}, "b (ms per unit density)") == "4.0000");
  CHECK(md_cell(md, fit, {"auto"}, "R^2") == "1.0000");
  CHECK(md_cell(md, fit, {"partial"}, "b (ms per unit density)") == "4.8000");
  CHECK(md_cell(md, "## Time against density", {"blocks 40%"}, "partial/auto") == "1.200");
  CHECK(md_cell(md, "## Time against density", {"blocks 40%"}, "time ms (auto)") == "2.600");
  CHECK(md.find("partial/auto time ratio mean 1.200") != std::string::npos);
}

TEST_CASE("longformer_fig1 and audit layouts", "[report]") {
  SECTION("time against window size") {
    const TempDir dir("spattn_report_lf");
    std::vector<json> r = {header("longformer_fig1")};
    int index = 0;
    for (std::int64_t n = 1024; n <= 4096; n *= 2) {
      r.push_back(point(index++, "dense", n, "ok", dense(n)));
      r.push_back(point(index++, "window 256", n, "ok", sliding(n)));
    }
    // At N = 2048: t = 0.1 ms + 0.001 ms per key of window.
    for (int w : {16, 64, 512}) {
      Values v = sliding(2048);
      v.seconds = 1e-4 + 1e-6 * w;
      r.push_back(point(index++, fmt::format("window {}", w), 2048, "ok", v));
    }
    write_lines(dir.path() / "results.jsonl", r);
    spattn::experiments::write_reports(dir.path());
    const std::string md = slurp(dir.path() / "table.md");
    INFO(md);
    CHECK(md_cell(md, "## Slopes against N", {"dense"}, "time slope") == "2.000");
    CHECK(md_cell(md, "## Slopes against N", {"window 256"}, "time slope") == "1.000");
    // window 256 at 2048 is 5e-8·2048 s = 0.1024 ms, the rest from the line above.
    const std::string ws = "## Time against window size at N = 2048";
    CHECK(md_cell(md, ws, {"16"}, "time ms (median)") == "0.116");
    CHECK(md_cell(md, ws, {"256"}, "time ms (median)") == "0.102");
    CHECK(md.find("a = 0.") != std::string::npos);
  }
  SECTION("audit: pair counts, time per pair, budget") {
    const TempDir dir("spattn_report_audit");
    std::vector<json> r = {header("audit", 1 << 30)};
    int index = 0;
    for (std::int64_t n = 1024; n <= 4096; n *= 2)
      r.push_back(point(index++, "dense", n, "ok", dense(n)));
    for (std::int64_t n = 1024; n <= 4096; n *= 2)
      r.push_back(point(index++, "sliding", n, "ok", sliding(n)));
    r.push_back({{"kind", "budget"},
                 {"pattern", "dense"},
                 {"spec", "dense"},
                 {"budget_bytes", 1 << 30},
                 {"max_n", 8192},
                 {"memory_bytes_at_max_n", 805306368}});
    write_lines(dir.path() / "results.jsonl", r);
    spattn::experiments::write_reports(dir.path());
    const std::string md = slurp(dir.path() / "table.md");
    INFO(md);
    // dense pairs = 8·N^2: 8·1024^2 = 8388608. Time per pair = 2e-10·N^2 / (8·N^2) s = 0.025 ns;
    // sliding: 5e-8·N / (8·512·N) s = 0.0122 ns.
    CHECK(md_cell(md, "## Allowed pairs", {"dense"}, "1K") == "8388608");
    CHECK(md_cell(md, "## Time per allowed pair (ns)", {"dense"}, "2K") == "0.0250");
    CHECK(md_cell(md, "## Time per allowed pair (ns)", {"sliding"}, "4K") == "0.0122");
    const std::string s = "## Slopes against N and the largest N";
    CHECK(md_cell(md, s, {"dense"}, "pairs slope") == "2.000");
    CHECK(md_cell(md, s, {"sliding"}, "pairs slope") == "1.000");
    CHECK(md_cell(md, s, {"dense"}, "max N") == "8192");
    CHECK(md_cell(md, s, {"dense"}, "budget") == "1.00 GiB");
    CHECK(md_cell(md, s, {"sliding"}, "max N") == "-");
  }
}

TEST_CASE("scaling report: a pattern with its own block size shares the baseline's table",
          "[report]") {
  // dense on 64 x 64 tiles, sliding on 16 x 16 tiles (a per-pattern block): each pattern has one
  // block size, so the block is part of the pattern and sliding still gets a speedup vs dense.
  const TempDir dir("spattn_report_block");
  std::vector<json> r = {header("scaling")};
  r.push_back(point(0, "dense", 2048, "ok", dense(2048), "", "auto", 64));
  r.push_back(point(1, "sliding", 2048, "ok", sliding(2048), "", "auto", 16));
  write_lines(dir.path() / "results.jsonl", r);
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);
  // 2e-10·2048^2 / (5e-8·2048) = 8.192.
  CHECK(md_cell(md, "## Time, speed and memory per N", {"sliding", "2048"}, "speedup vs dense") ==
        "8.19x");
  CHECK(md.find("block=16") == std::string::npos);

  // Two block sizes for the same pattern: the block is a real axis again, one table each, and
  // sliding at block 16 has no dense point beside it.
  r.push_back(point(2, "sliding", 2048, "ok", sliding(2048), "", "auto", 64));
  write_lines(dir.path() / "results.jsonl", r);
  spattn::experiments::write_reports(dir.path());
  const std::string md2 = slurp(dir.path() / "table.md");
  INFO(md2);
  CHECK(md2.find("block=16") != std::string::npos);
  CHECK(md2.find("block=64") != std::string::npos);
}

TEST_CASE("scaling report: noisy timings are flagged, fidelity names each row's baseline",
          "[report]") {
  namespace ex = spattn::experiments;
  // N = 256: dense 0.60/0.67/0.70 ms (max/min 7/6 = 1.17); bigbird 0.62/5.0/9.5 ms (max/min
  // 15.32: noisy), so its speedup 0.67/5.0 = 0.134 is marked; causal compared with causal.
  auto with_times = [](Measurement m, std::vector<double> ms, const std::string& baseline) {
    for (double& t : ms) t /= 1e3;
    m.attention = ex::AttentionTimes{1, ms};
    m.fidelity = ex::FidelityFigures{0.25, 0.5, 0.125, "synthetic", baseline, {}, {}, {}};
    return json::parse(ex::to_json(m).dump());
  };
  json h = header("scaling");
  h["overrides"] = {{"repeats", 3}, {"threads", 1}};
  const std::vector<json> records = {
      h, with_times(measurement(0, "dense", 256, "ok", dense(256)), {0.60, 0.67, 0.70}, "dense"),
      with_times(measurement(1, "bigbird", 256, "ok", sliding(256)), {0.62, 5.0, 9.5}, "dense"),
      with_times(measurement(2, "causal", 256, "ok", sliding(256)), {0.30, 0.31, 0.32}, "causal")};
  const TempDir dir("spattn_report_noisy");
  write_lines(dir.path() / "results.jsonl", records);
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);
  const std::string per_n = "## Time, speed and memory per N";
  CHECK(md_cell(md, per_n, {"dense", "256"}, "max/min") == "1.17");
  CHECK(md_cell(md, per_n, {"bigbird", "256"}, "max/min") == "15.32 noisy");
  CHECK(md_cell(md, per_n, {"bigbird", "256"}, "speedup vs dense") == "0.13x (noisy)");
  CHECK(md_cell(md, per_n, {"causal", "256"}, "speedup vs dense") == "2.16x");
  CHECK(md_cell(md, per_n, {"dense", "256"}, "fidelity baseline") == "dense");
  CHECK(md_cell(md, per_n, {"causal", "256"}, "fidelity baseline") == "causal");
  CHECK(md_cell(md, per_n, {"causal", "256"}, "rel L2 vs baseline") == "2.50e-01");
  CHECK(md.find("noisy: the slowest timed call took more than 1.5x the fastest") !=
        std::string::npos);
  CHECK(md.find("Set on the command line for every point: repeats 3, threads 1.") !=
        std::string::npos);
  // The layouts' own tables mark them too.
  std::vector<json> lra = records;
  lra[0]["report"]["layout"] = "lra_table2";
  write_lines(dir.path() / "results.jsonl", lra);
  spattn::experiments::write_reports(dir.path());
  const std::string md2 = slurp(dir.path() / "table.md");
  CHECK(md_cell(md2, "## Speed relative to dense", {"bigbird"}, "256") == "0.13x (noisy)");
  CHECK(md_cell(md2, "## Speed relative to dense", {"causal"}, "256") == "2.16x");
}

TEST_CASE("reports print published figures beside the measured ones", "[report]") {
  // The scaling sweep (dense 2e-10·N^2 s, sliding 5e-8·N s) with figures "published" for it.
  std::vector<json> records = scaling_records();
  records[0]["report"]["published"] = {{{"pattern", "sliding"},
                                        {"source", "Paper A, Table 2"},
                                        {"quantity", "speedup"},
                                        {"n", {1024, 2048, 4096}},
                                        {"values", {2, 4, 8}}},
                                       {{"pattern", "dense"},
                                        {"source", "Paper B, Table 18"},
                                        {"quantity", "time_ms"},
                                        {"n", {1024, 2048, 4096}},
                                        {"values", {1, 3, 12}}},
                                       {{"pattern", "sliding"},
                                        {"source", "Survey, Table 1"},
                                        {"quantity", "pairs_slope"},
                                        {"n", json::array()},
                                        {"values", {1.5}}}};
  const TempDir dir("spattn_report_published");
  write_lines(dir.path() / "results.jsonl", records);
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);
  // Measured speedup 0.004·N: 4.096x at 1K (2.05 times the published 2x), growth 4x over 1K..4K.
  const std::string a = "### sliding: Paper A, Table 2";
  CHECK(md_cell(md, a, {"1024"}, "measured speedup") == "4.10x");
  CHECK(md_cell(md, a, {"1024"}, "measured / published") == "2.05");
  CHECK(md_cell(md, a, {"4096"}, "published speedup") == "8.00x");
  CHECK(md_cell(md, a, {"growth, first to last N measured"}, "published speedup") == "4.00x");
  CHECK(md_cell(md, a, {"growth, first to last N measured"}, "measured speedup") == "4.00x");
  // Exponents: published log2(3) = 1.58 then 2.00; measured 2.00 (t ∝ N^2).
  const std::string b = "### dense: Paper B, Table 18";
  CHECK(md_cell(md, b, {"1024"}, "published exponent") == "-");
  CHECK(md_cell(md, b, {"2048"}, "published exponent") == "1.58");
  CHECK(md_cell(md, b, {"4096"}, "published exponent") == "2.00");
  CHECK(md_cell(md, b, {"4096"}, "measured exponent") == "2.00");
  const std::string c = "### sliding: Survey, Table 1";
  CHECK(md_cell(md, c, {"1.50"}, "allowed pairs slope") == "1.000");
  CHECK(md_cell(md, c, {"1.50"}, "time slope") == "1.000");
}

TEST_CASE("selectors report: end-to-end speedup with the selection time, and the crossover N",
          "[report]") {
  namespace ex = spattn::experiments;
  // dense: 2e-10 N^2 s. The selector: a N s in all, half attention, half selection, with
  // a = 2e-10 x 4096: total / dense = 4096 / N, so it is faster from N = 8192 on and the
  // log-log line reaches 1 at N = 4096 exactly.
  const double a = 2e-10 * 4096;
  std::vector<json> r = {header("selectors")};
  int index = 0;
  for (std::int64_t n = 1024; n <= 16384; n *= 2) {
    r.push_back(point(index++, "dense", n, "ok", dense(n)));
    Values v = sliding(n);
    v.seconds = 0.5 * a * static_cast<double>(n);
    Measurement m = measurement(index++, "sel", n, "ok", v);
    m.selection = ex::SelectionFigures{0.5 * a * static_cast<double>(n) * 1e3, 1e6, 1e6};
    ex::FidelityFigures f;
    f.recall_mean = 0.75;
    f.recall_min = 0.5;
    f.oracle_recall_mean = 0.875;
    f.needle_hit = 0.5;
    f.inputs = "planted";
    f.baseline = "causal";
    m.fidelity = f;
    r.push_back(json::parse(ex::to_json(m).dump()));
  }
  const TempDir dir("spattn_report_selectors");
  write_lines(dir.path() / "results.jsonl", r);
  spattn::experiments::write_reports(dir.path());
  const std::string md = slurp(dir.path() / "table.md");
  INFO(md);
  CHECK_THAT(md, Catch::Contains("faster from N = 8192 on; crossing near N = 4096"));
  // N = 16384: speedup 16384 / 4096 = 4; selection / dense time = 0.5 x 4096 / 16384.
  CHECK_THAT(md, Catch::Contains("4.00x"));
  CHECK_THAT(md, Catch::Contains("0.125"));
  CHECK_THAT(md, Catch::Contains("0.8750"));  // the oracle ceiling column
}
