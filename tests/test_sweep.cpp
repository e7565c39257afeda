// The sweep driver: child processes (exit codes, signals, timeouts, limits, output capture),
// results.jsonl durability, and whole sweeps run, interrupted, killed and resumed.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

// SPATTN_CLI_PATH, the spattn binary, comes from tests/CMakeLists.txt as for the sources that
// include cli_runner.hpp.
#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measure.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/process.hpp"
#include "spattn/experiments/results.hpp"
#include "spattn/patterns/error.hpp"
#include "temp_dir.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using spattn::experiments::ChildOptions;
using spattn::experiments::ChildResult;
using spattn::experiments::run_child;
using spattn::test::TempDir;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

ChildResult sh(const std::string& script, double timeout = 0, std::int64_t as_bytes = 0) {
  ChildOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.timeout_seconds = timeout;
  o.address_space_bytes = as_bytes;
  return run_child(o);
}

// Every line of a results file parsed independently of the library's reader; fails the test on
// a line that is not a JSON object or a file that does not end in a newline.
std::vector<nlohmann::json> parse_lines(const fs::path& p) {
  const std::string text = read_file(p);
  REQUIRE(!text.empty());
  REQUIRE(text.back() == '\n');
  std::vector<nlohmann::json> out;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    const nlohmann::json j = nlohmann::json::parse(text.substr(begin, end - begin), nullptr, false);
    INFO(text.substr(begin, end - begin));
    REQUIRE((!j.is_discarded() && j.is_object()));
    out.push_back(j);
    begin = end + 1;
  }
  return out;
}

// The single run directory under out/<name>/.
fs::path only_run_dir(const fs::path& out, const std::string& name) {
  std::vector<fs::path> dirs;
  for (const auto& d : fs::directory_iterator(out / name)) dirs.push_back(d.path());
  REQUIRE(dirs.size() == 1);
  return dirs.front();
}

// A process started without waiting for it, its stdout and stderr going to files.
struct Spawned {
  pid_t pid = -1;
  int wait() {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  }
};

Spawned spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Spawned s;
  REQUIRE(::posix_spawn(&s.pid, argv[0], &fa, nullptr, argv.data(), environ) == 0);
  posix_spawn_file_actions_destroy(&fa);
  return s;
}

// Waits until `file` holds at least `lines` newline characters (or 30 s pass).
bool wait_for_lines(const fs::path& file, int lines) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    const std::string text = fs::exists(file) ? read_file(file) : "";
    if (std::count(text.begin(), text.end(), '\n') >= lines) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// Runs a command to completion (60 s at most) and returns its exit code.
int run(const std::vector<std::string>& argv, std::string* out = nullptr,
        std::string* err = nullptr) {
  ChildOptions o;
  o.argv = argv;
  o.timeout_seconds = 60;
  const ChildResult r = run_child(o);
  if (out) *out = r.out;
  if (err) *err = r.err;
  INFO(r.err);
  REQUIRE(r.end == ChildResult::End::Exited);
  return r.exit_code;
}

// (pattern name, n) of every point record, counted.
std::map<std::pair<std::string, std::int64_t>, int> point_counts(
    const std::vector<nlohmann::json>& records) {
  std::map<std::pair<std::string, std::int64_t>, int> counts;
  for (const nlohmann::json& r : records)
    if (r.at("kind") == "point")
      ++counts[{r.at("axes").at("pattern").get<std::string>(),
                r.at("axes").at("n").get<std::int64_t>()}];
  return counts;
}

}  // namespace

TEST_CASE("run_child reports exit codes, output and stderr", "[sweep]") {
  const ChildResult r = sh("printf 'a line\\nlast'; echo oops >&2; exit 3");
  CHECK(r.end == ChildResult::End::Exited);
  CHECK(r.exit_code == 3);
  CHECK(r.out == "a line\nlast");
  CHECK(r.err == "oops\n");
  CHECK(r.peak_rss_bytes > 0);

  // 2 MB on each stream: the parent must drain both while waiting or the child blocks forever.
  ChildOptions o;
  o.argv = {"/bin/sh", "-c", "head -c 2000000 /dev/zero; head -c 2000000 /dev/zero >&2"};
  o.timeout_seconds = 30;
  o.max_stderr_bytes = 1000;
  const ChildResult big = run_child(o);
  CHECK(big.end == ChildResult::End::Exited);
  CHECK(big.out.size() == 2000000);
  CHECK(big.err.size() == 1000);  // the tail only

  ChildOptions missing;
  missing.argv = {"/nonexistent/program"};
  CHECK_THROWS_WITH(run_child(missing), Catch::Contains("/nonexistent/program"));
}

TEST_CASE("run_child reports signals and kills the process group at the timeout", "[sweep]") {
  const ChildResult seg = sh("kill -SEGV $$");
  CHECK(seg.end == ChildResult::End::Signaled);
  CHECK(seg.signal == SIGSEGV);
  CHECK(spattn::experiments::signal_description(SIGSEGV).find("SIGSEGV") == 0);

  // The shell's own child (sleep) is in the same process group and must die with it, else it
  // would hold the pipe open and the parent would wait for it.
  const auto t0 = std::chrono::steady_clock::now();
  const ChildResult slow = sh("sleep 30 & sleep 30; echo never", 0.3);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(slow.end == ChildResult::End::TimedOut);
  CHECK(slow.out.empty());
  CHECK(slow.wall_seconds >= 0.3);
  CHECK(took < 10);
}

TEST_CASE("run_child measures peak RSS and applies the address-space limit", "[sweep]") {
  ChildOptions o;
  o.timeout_seconds = 30;
  o.argv = {SPATTN_SWEEP_TEST_WORKER, "touch", "200"};
  const ChildResult touched = run_child(o);
  REQUIRE(touched.end == ChildResult::End::Exited);
  CHECK(touched.exit_code == 0);
  CHECK(touched.peak_rss_bytes >= std::int64_t{200} << 20);  // every page of 200 MiB was written
  if (spattn::experiments::address_space_limit_supported()) {
    o.address_space_bytes = std::int64_t{128} << 20;
    const ChildResult limited = run_child(o);
    REQUIRE(limited.end == ChildResult::End::Exited);
    CHECK(limited.exit_code == 3);  // malloc of 200 MiB fails under a 128 MiB limit
  }
}

TEST_CASE("results files: a truncated last line is ignored, then cut before appending", "[sweep]") {
  const TempDir dir("spattn_sweep_jsonl");
  const fs::path file = dir.path() / "results.jsonl";
  write_file(file, "{\"kind\":\"header\"}\n{\"kind\":\"point\",\"key\":\"a\"}\n{\"kind\":\"poi");
  const auto f = spattn::experiments::read_json_lines(file);
  REQUIRE(f.records.size() == 2);
  CHECK(f.records[1]["key"] == "a");
  CHECK(f.partial_tail);
  // {"kind":"header"} is 17 characters, {"kind":"point","key":"a"} 26, each with its newline.
  CHECK(f.complete_bytes == 18 + 27);
  {
    spattn::experiments::ResultsWriter w(file);
    CHECK_THROWS_WITH(spattn::experiments::ResultsWriter(file), Catch::Contains("in use"));
    w.append({{"kind", "point"}, {"key", "b"}});
  }
  CHECK(read_file(file) ==
        "{\"kind\":\"header\"}\n{\"kind\":\"point\",\"key\":\"a\"}\n{\"key\":\"b\",\"kind\":"
        "\"point\"}\n");
  write_file(file, "{\"kind\":\"header\"}\nnot json\n{}\n");
  CHECK_THROWS_WITH(spattn::experiments::read_json_lines(file), Catch::Contains("line 2:"));
}

TEST_CASE("a sweep records crashed, timeout and oom points and goes on", "[sweep]") {
  const TempDir dir("spattn_sweep_statuses");
  const fs::path toml = dir.path() / "statuses.toml";
  write_file(toml, R"toml(name = "statuses"
seq_len = [128]
head_dim = 16
heads = 1
block = 32
repeats = 1
warmup = 0
timeout = 1.5
memory = "1GiB"
patterns = [
  {name = "crash", spec = "test_crash()"},
  {name = "hang", spec = "test_hang()"},
  {name = "hog", spec = "test_hog()"},
  {name = "fine", spec = "sliding(32)"},
  {name = "after", spec = "causal", max_n = 1000000},
]
[quick]
seq_len = [64]
)toml");
  // "fine" and "after" come after the failures: the sweep went on and ran them.
  const fs::path out = dir.path() / "out";
  std::string stdout_text, stderr_text;
  const int code = run({SPATTN_SWEEP_TEST_WORKER, "sweep", toml.string(), out.string()},
                       &stdout_text, &stderr_text);
  INFO(stderr_text);
  REQUIRE(code == 0);
  const fs::path run_dir = only_run_dir(out, "statuses");
  const std::vector<nlohmann::json> lines = parse_lines(run_dir / "results.jsonl");
  REQUIRE(lines.size() == 6);  // header + 5 patterns x 1 seq_len
  CHECK(lines[0]["kind"] == "header");
  CHECK(lines[0]["experiment"] == "statuses");
  CHECK(lines[0]["quick"] == false);
  CHECK(lines[0]["experiment_toml"] == read_file(toml));
  std::map<std::string, nlohmann::json> by_name;
  for (std::size_t i = 1; i < lines.size(); ++i) by_name[lines[i]["axes"]["pattern"]] = lines[i];
  REQUIRE(by_name.size() == 5);
  CHECK(by_name["crash"]["status"] == "crashed");
  CHECK_THAT(by_name["crash"]["message"].get<std::string>(), Catch::Contains("SIGABRT"));
  CHECK(by_name["hang"]["status"] == "timeout");
  CHECK(by_name["hang"]["resources"]["wall_seconds"].get<double>() >= 1.5);
  // With ASan there is no address-space limit: the hog then throws bad_alloc itself.
  CHECK(by_name["hog"]["status"] == "oom");
  for (const char* ok : {"fine", "after"}) {
    INFO(ok);
    CHECK(by_name[ok]["status"] == "ok");
    CHECK(by_name[ok]["message"] == "");
    CHECK(by_name[ok]["attention"].is_object());
    CHECK(by_name[ok]["resources"]["peak_rss_bytes"].get<std::int64_t>() > 0);
    CHECK(by_name[ok]["predicted"].is_object());
  }
  // Every point record is a Measurement (schema 2) of its point.
  for (const auto& [name, line] : by_name) {
    INFO(name);
    CHECK(line["schema"] == 2);
    const auto m = spattn::experiments::measurement_from_json(line, name);
    CHECK(m.source == "sweep");
    CHECK(m.axes.pattern == name);
    CHECK(m.axes.n == 128);
    CHECK(m.axes.nk == 128);
    CHECK(m.axes.block_q == 32);
    CHECK(m.resources.wall_seconds.has_value());
    CHECK(m.predicted.has_value());  // every pattern here predicts in the parent
    CHECK(m.attention.has_value() == (m.status == spattn::experiments::Status::Ok));
  }
  // Causal over 128 tokens, one head: 128 * 129 / 2 = 8256 allowed pairs.
  CHECK(by_name["after"]["layout"]["allowed_pairs"] == 8256);
  CHECK(by_name["after"]["attention"]["repeats"] == 1);
  CHECK(by_name["after"]["axes"]["n"] == 128);
  CHECK(by_name["after"]["axes"]["head_dim"] == 16);
  const nlohmann::json meta = nlohmann::json::parse(read_file(run_dir / "meta.json"));
  CHECK(meta["experiment_toml"] == read_file(toml));
  CHECK(!meta["compiler"]["id"].get<std::string>().empty());
  CHECK(!meta["cpu"]["model"].get<std::string>().empty());
  CHECK(meta["threads"].get<int>() >= 1);
  CHECK(!fs::exists(run_dir / ".point.json"));
}

TEST_CASE("an interrupted sweep leaves a valid file and resumes the missing points once",
          "[sweep]") {
  const TempDir dir("spattn_sweep_interrupt");
  const fs::path toml = dir.path() / "interrupt.toml";
  // Points in order: first (n=64, 128), hang (64, 128), last (64, 128). The interrupt comes
  // while `hang` runs: 2 points recorded, the running one not.
  write_file(toml, R"toml(name = "interrupt"
seq_len = [64, 128]
head_dim = 16
heads = 1
block = 32
repeats = 1
warmup = 0
timeout = 1
patterns = [{name = "first", spec = "causal"}, {name = "hang", spec = "test_hang()"},
            {name = "last", spec = "sliding(16)"}]
)toml");
  const fs::path out = dir.path() / "out";
  Spawned s = spawn({SPATTN_SWEEP_TEST_WORKER, "sweep", toml.string(), out.string()},
                    dir.path() / "stdout", dir.path() / "stderr");
  fs::path results;
  for (int k = 0; k < 3000 && results.empty(); ++k) {
    std::error_code ec;
    if (fs::exists(out / "interrupt", ec))
      for (const auto& d : fs::directory_iterator(out / "interrupt", ec))
        results = d.path() / "results.jsonl";
    if (results.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(!results.empty());
  REQUIRE(wait_for_lines(results, 3));  // header + the two `first` points
  ::kill(s.pid, SIGINT);
  CHECK(s.wait() == 130);
  const std::vector<nlohmann::json> before = parse_lines(results);
  REQUIRE(before.size() == 3);
  CHECK(point_counts(before).size() == 2);

  std::string err;
  REQUIRE(run({SPATTN_SWEEP_TEST_WORKER, "sweep", toml.string(), out.string(),
               results.parent_path().string()},
              nullptr, &err) == 0);
  const std::vector<nlohmann::json> after = parse_lines(results);
  CHECK(after.size() == 7);  // header + 3 patterns x 2 seq_len, none twice
  const auto counts = point_counts(after);
  CHECK(counts.size() == 6);
  for (const auto& [k, c] : counts) CHECK(c == 1);
  for (const nlohmann::json& r : after)
    if (r["kind"] == "point")
      CHECK(r["status"] == (r["axes"]["pattern"] == "hang" ? "timeout" : "ok"));
}

TEST_CASE("spattn sweep killed with SIGKILL at random moments resumes every point once",
          "[sweep]") {
  const TempDir dir("spattn_sweep_sigkill");
  const fs::path toml = dir.path() / "kill.toml";
  write_file(toml, R"toml(name = "kill"
seq_len = [512, 1024, 2048, 4096]
head_dim = 32
heads = 2
block = 64
repeats = 4
warmup = 1
patterns = ["causal", "sliding(128)", "dense"]
[report]
budget = "32MiB"
)toml");
  const fs::path out = dir.path() / "out";
  // Three kills at moments drawn from a fixed seed (reproducible, yet aligned with nothing the
  // sweep does): the first run, then two resumed runs; a last resume completes the sweep. The
  // whole sweep takes about 1 s on an idle 2-core machine, several times the longest delay.
  std::mt19937 rng(20261128);
  std::uniform_int_distribution<int> delay_ms(20, 300);
  fs::path run_dir;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> argv = {SPATTN_CLI_PATH, "sweep", "--no-report"};
    if (round == 0) {
      argv.insert(argv.end(), {toml.string(), "--out", out.string()});
    } else {
      argv.insert(argv.end(), {"--resume", run_dir.string()});
    }
    Spawned s = spawn(argv, dir.path() / "stdout", dir.path() / "stderr");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    ::kill(s.pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(s.pid, &status, 0) == s.pid);
    if (round == 0) {
      REQUIRE(WIFSIGNALED(status));  // it was still running
      run_dir = only_run_dir(out, "kill");
    }
    INFO(read_file(dir.path() / "stderr"));
    parse_lines(run_dir / "results.jsonl");  // valid after every kill
  }
  // A write cut short leaves a line without its newline: resume must drop it, not keep it.
  {
    std::ofstream f(run_dir / "results.jsonl", std::ios::app | std::ios::binary);
    f << R"({"kind":"point","key":"pattern=dense;n=)";
  }
  std::string sout, serr;
  const int code =
      run({SPATTN_CLI_PATH, "sweep", "--resume", run_dir.string(), "--no-report"}, &sout, &serr);
  INFO(serr);
  REQUIRE(code == 0);
  const std::vector<nlohmann::json> lines = parse_lines(run_dir / "results.jsonl");
  REQUIRE(lines.size() == 1 + 12 + 3);  // header, 3 patterns x 4 seq_len, a budget per pattern
  CHECK(lines[0]["kind"] == "header");
  const auto counts = point_counts(lines);
  CHECK(counts.size() == 12);
  for (const auto& [k, c] : counts) CHECK(c == 1);
  std::map<std::string, nlohmann::json> budgets;
  // Every point record parses as a Measurement whose key is its point's key (point_key), the
  // one resume matched on, with the point's index and axes.
  const auto e = spattn::experiments::load_experiment(toml);
  std::map<std::string, spattn::experiments::SweepPoint> by_key;
  for (const auto& q : spattn::experiments::expand_points(e, false))
    by_key[spattn::experiments::point_key(q)] = q;
  for (const nlohmann::json& r : lines) {
    if (r["kind"] == "point") {
      CHECK(r["status"] == "ok");
      const auto m = spattn::experiments::measurement_from_json(r, "results.jsonl");
      REQUIRE(by_key.count(m.key) == 1);
      const spattn::experiments::SweepPoint& q = by_key.at(m.key);
      CHECK(m.index == q.index);
      CHECK(m.axes.pattern == q.pattern.name);
      CHECK(m.axes.spec == q.pattern.spec);
      CHECK(m.axes.n == q.n);
      CHECK(m.attention.has_value());
      CHECK(m.layout.has_value());
    }
    if (r["kind"] == "budget") budgets[r["pattern"]] = r;
  }
  REQUIRE(budgets.size() == 3);
  // Each budget record's max_n fits 32 MiB by the prediction and twice it does not (or 2^24).
  for (const auto& [name, record] : budgets) {
    INFO(name);
    const std::int64_t budget = std::int64_t{32} << 20, max_n = record["max_n"];
    CHECK(record["budget_bytes"] == budget);
    REQUIRE(max_n >= 1024);
    spattn::experiments::SweepPoint p;
    for (const auto& q : spattn::experiments::expand_points(e, false))
      if (q.pattern.name == name) p = q;
    p.settings.memory_bytes = budget;
    p.n = max_n;
    const auto at_max = spattn::experiments::predict_point(p);
    CHECK(at_max.memory_bytes <= budget);
    CHECK(record["memory_bytes_at_max_n"] == at_max.memory_bytes);
    if (max_n < (std::int64_t{1} << 24)) {
      p.n = 2 * max_n;
      bool fits = true;
      try {
        fits = spattn::experiments::predict_point(p).memory_bytes <= budget;
      } catch (const spattn::BudgetError&) {
        fits = false;
      }
      CHECK(!fits);
    }
  }
}

TEST_CASE("spattn sweep: Ctrl-C says how to resume, and --dry-run runs nothing", "[sweep]") {
  const TempDir dir("spattn_sweep_cli");
  const fs::path toml = dir.path() / "cli.toml";
  write_file(toml, R"toml(name = "cli"
seq_len = [1024, 2048, 4096]
head_dim = 64
heads = 4
repeats = 5
patterns = ["dense", {name = "local", spec = "sliding(256)"}]
)toml");
  const fs::path out = dir.path() / "out";
  std::string listing, err;
  REQUIRE(run({SPATTN_CLI_PATH, "sweep", toml.string(), "--out", out.string(), "--dry-run"},
              &listing, &err) == 0);
  CHECK(!fs::exists(out));
  // One row per point: 2 patterns x 3 seq_len.
  int rows = 0;
  for (const char* name : {" dense ", " local "})
    for (std::size_t at = listing.find(name); at != std::string::npos;
         at = listing.find(name, at + 1))
      ++rows;
  CHECK(rows == 6);
  CHECK_THAT(listing, Catch::Contains("6 points: 6 would run"));

  Spawned s = spawn({SPATTN_CLI_PATH, "sweep", toml.string(), "--out", out.string()},
                    dir.path() / "stdout", dir.path() / "stderr");
  // The header is the first line; dense at 4096 alone takes far longer than the wait.
  fs::path results;
  for (int k = 0; k < 3000 && results.empty(); ++k) {
    std::error_code ec;
    if (fs::exists(out / "cli", ec))
      for (const auto& d : fs::directory_iterator(out / "cli", ec))
        results = d.path() / "results.jsonl";
    if (results.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(!results.empty());
  REQUIRE(wait_for_lines(results, 1));
  ::kill(s.pid, SIGINT);
  CHECK(s.wait() == 130);
  const std::string stderr_text = read_file(dir.path() / "stderr");
  CHECK_THAT(stderr_text,
             Catch::Contains("spattn sweep --resume " + results.parent_path().string()));
  const std::vector<nlohmann::json> lines = parse_lines(results);
  CHECK(lines.size() < 7);
  CHECK(lines[0]["kind"] == "header");
}
