// End-to-end tests of the spattn CLI binary: exit codes, error messages, stats --json against a
// brute-force count, the pattern catalogue, and a mask file read back against allows().
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "cli_runner.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/registry.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

// A fresh temporary directory per test, removed at scope exit.
struct TempDir : spattn::test::TempDir {
  TempDir() : spattn::test::TempDir("spattn_cli") {}
};

using Result = spattn::test::CliResult;

Result run(const std::string& args) {
  return spattn::test::run_cli(args);
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

}  // namespace

TEST_CASE("cli: exit codes and error messages", "[cli]") {
  SECTION("--version") {
    const Result r = run("--version");
    CHECK(r.code == 0);
    CHECK(r.out.find("spattn") != std::string::npos);
  }
  SECTION("no subcommand prints help and exits 2") {
    const Result r = run("");
    CHECK(r.code == 2);
    CHECK(r.err.find("patterns") != std::string::npos);
    CHECK(r.err.find("mask") != std::string::npos);
    CHECK(r.err.find("stats") != std::string::npos);
  }
  SECTION("a good command exits 0") {
    const Result r = run("stats causal --n 10");
    CHECK(r.code == 0);
    CHECK(r.err.empty());
  }
  SECTION("a bad spec exits 2 and names the column") {
    // "sliding(4" ends after 9 characters: the missing ')' is at column 10.
    Result r = run("stats " + quote("sliding(4") + " --n 10");
    CHECK(r.code == 2);
    CHECK(r.err.rfind("spattn: error: ", 0) == 0);
    CHECK(r.err.find("column 10") != std::string::npos);
    // "causal | " is 9 characters: the unknown name starts at column 10.
    r = run("stats " + quote("causal | slidin(3)") + " --n 10");
    CHECK(r.code == 2);
    CHECK(r.err.find("column 10") != std::string::npos);
    CHECK(r.err.find("sliding") != std::string::npos);  // the suggestion
  }
  SECTION("an unknown option exits 2") {
    const Result r = run("stats causal --n 10 --bogus");
    CHECK(r.code == 2);
    CHECK(r.err.rfind("spattn: error: ", 0) == 0);
    CHECK(r.err.find("--bogus") != std::string::npos);
  }
  SECTION("bad option values exit 2") {
    CHECK(run("stats causal").code == 2);                           // --n missing
    CHECK(run("stats causal --n 0").code == 2);                     // out of range
    CHECK(run("stats causal --n 10 --block 24").code == 2);         // not a tile size
    CHECK(run("mask causal --n 10 --level pixels").code == 2);      // not a level
    CHECK(run("mask causal --n 10 --heads 2 --head 2").code == 2);  // no such head
  }
  SECTION("refused work exits 1 and suggests the block level") {
    TempDir dir;
    const Result r = run("mask causal --n 100000 --format npy --out " + quote(dir.file("big.npy")));
    CHECK(r.code == 1);
    CHECK(r.err.find("--level block") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.file("big.npy")));
  }
}

TEST_CASE("cli: stats --json counts match a brute-force count", "[cli]") {
  const std::string spec = "heads(0: sliding(7) | sink(2); 1: window(3, 0) - strided(4))";
  const spattn::Geometry g{100, 130, 2, 16, 32};
  const Result r =
      run("stats " + quote(spec) + " --n 100 --nk 130 --heads 2 --block-q 16 --block-k 32 --json");
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);

  const auto pattern = spattn::parse_spec(spec);
  std::int64_t allowed = 0;
  for (int h = 0; h < g.heads; ++h)
    for (std::int64_t i = 0; i < g.nq; ++i)
      for (std::int64_t k = 0; k < g.nk; ++k) allowed += pattern->allows(g, h, i, k) ? 1 : 0;

  // One line: the Measurement record, read back by its parser.
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  const auto m = spattn::experiments::measurement_from_json(j, "stats --json");
  CHECK(m.source == "stats");
  CHECK(m.layout->allowed_pairs == allowed);
  CHECK(*m.density() == Approx(static_cast<double>(allowed) / (2.0 * 100 * 130)));
  CHECK(j.at("layout").at("density").get<double>() == *m.density());
  CHECK(m.axes.n == 100);
  CHECK(m.axes.nk == 130);
  CHECK(m.axes.heads == 2);
  CHECK(m.axes.block_q == 16);
  CHECK(m.axes.block_k == 32);
  CHECK(m.layout->distinct_head_layouts == 2);
  CHECK(j.at("layout").at("build") == "analytic");
  CHECK_FALSE(m.layout->scanned);
  const auto computed = m.layout->computed_pairs;
  CHECK(computed >= allowed);
  CHECK(*m.efficiency() == Approx(static_cast<double>(allowed) / static_cast<double>(computed)));
  CHECK(m.layout->kept_tiles == m.layout->full_tiles + m.layout->partial_tiles);
  // The prediction: 4 d flops per allowed pair, d = 64 unless --d; no attention was run.
  CHECK(m.predicted->useful_flops == 4.0 * 64 * static_cast<double>(allowed));
  CHECK_FALSE(m.attention);
  const Result d = run("stats " + quote(spec) +
                       " --n 100 --nk 130 --heads 2 --block-q 16 --block-k 32 --json --d 8");
  REQUIRE(d.code == 0);
  CHECK(nlohmann::json::parse(d.out)["predicted"]["useful_flops"] ==
        4.0 * 8 * static_cast<double>(allowed));

  // The table names the same count.
  const Result t = run("stats " + quote(spec) +
                       " --n 100 --nk 130 --heads 2 --block-q 16 "
                       "--block-k 32");
  REQUIRE(t.code == 0);
  CHECK(t.out.find(std::to_string(allowed)) != std::string::npos);
  CHECK(t.out.find("analytic") != std::string::npos);
}

TEST_CASE("cli: patterns lists every registered pattern", "[cli]") {
  const Result text = run("patterns");
  REQUIRE(text.code == 0);
  const Result js = run("patterns --json");
  REQUIRE(js.code == 0);
  const auto j = nlohmann::json::parse(js.out);
  std::set<std::string> listed;
  for (const auto& p : j.at("patterns")) listed.insert(p.at("name").get<std::string>());

  std::set<std::string> registered;
  for (const spattn::PatternInfo* info : spattn::Registry::global().all()) {
    registered.insert(info->name);
    INFO(info->name);
    CHECK(text.out.find("\n" + info->name) != std::string::npos);
    CHECK(text.out.find(info->rule) != std::string::npos);
  }
  CHECK(listed == registered);
  // The combinator syntax and the precedence note.
  for (const char* s : {"a | b", "a & b", "a - b", "heads(0..3: A; 4..7: B)", "binds tightest"})
    CHECK(text.out.find(s) != std::string::npos);
  CHECK(j.at("combinators").size() >= 4);
}

TEST_CASE("cli: mask writes files that match allows()", "[cli]") {
  TempDir dir;
  const std::string spec = "heads(0: causal; 1: sliding(5) | sink(2))";
  const spattn::Geometry g{20, 27, 2, 16, 16};
  const auto pattern = spattn::parse_spec(spec);
  const std::string path = dir.file("m.npy");
  const Result r = run("mask " + quote(spec) +
                       " --n 20 --nk 27 --heads 2 --block 16 --format npy --out " + quote(path));
  REQUIRE(r.code == 0);
  CHECK(r.out.find(path) != std::string::npos);
  const spattn::NpyArray a = spattn::read_npy(path);
  REQUIRE(a.shape == std::vector<std::int64_t>{2, 20, 27});
  for (int h = 0; h < 2; ++h)
    for (std::int64_t i = 0; i < g.nq; ++i)
      for (std::int64_t k = 0; k < g.nk; ++k)
        REQUIRE(a.data[static_cast<std::size_t>((h * g.nq + i) * g.nk + k)] ==
                (pattern->allows(g, h, i, k) ? 1 : 0));

  // ASCII to stdout, one selected head.
  const Result art = run("mask " + quote(spec) + " --n 20 --nk 27 --heads 2 --head 1");
  REQUIRE(art.code == 0);
  std::string expected_row;  // the last query's row on head 1, from the oracle
  for (std::int64_t k = 0; k < g.nk; ++k) expected_row += pattern->allows(g, 1, 19, k) ? '#' : '.';
  CHECK(art.out.find("head 1:\n") != std::string::npos);
  CHECK(art.out.find("head 0:") == std::string::npos);
  CHECK(art.out.find(expected_row + "\n") != std::string::npos);

  // PNG of the block level.
  const std::string png = dir.file("m.png");
  const Result p = run("mask " + quote(spec) +
                       " --n 20 --nk 27 --heads 2 --block 16 --level "
                       "block --format png --out " +
                       quote(png));
  REQUIRE(p.code == 0);
  CHECK(fs::file_size(png) > 0);

  // Without --format, the --out extension chooses it.
  const std::string inferred = dir.file("inferred.png");
  REQUIRE(run("mask causal --n 8 --out " + quote(inferred)).code == 0);
  std::ifstream in(inferred, std::ios::binary);
  std::string magic(8, '\0');
  in.read(magic.data(), 8);
  CHECK(magic == "\x89PNG\r\n\x1a\n");
}

TEST_CASE("cli: integer options are decimal and in range; empty values and FIFOs are refused",
          "[cli]") {
  // Leading zeros are decimal (CLI11 alone reads "010" as octal 8); anything else is refused.
  const Result z = run("stats causal --n 0100 --heads 010 --json");
  REQUIRE(z.code == 0);
  const auto j = nlohmann::json::parse(z.out);
  CHECK(j["axes"]["n"] == 100);
  CHECK(j["axes"]["heads"] == 10);
  struct Bad {
    std::string args, says;
  };
  const Bad bad[] = {
      {"stats causal --n 0x100", "--n: '0x100' is not a decimal integer 1..1099511627776"},
      {"stats causal --n 64 --nk 0", "--nk: 0 is out of range: allowed a decimal integer 1.."},
      {"stats causal --n 64 --threads 65537", "--threads: 65537 is out of range"},
      {"stats causal --n 64 --heads 1e3", "--heads: '1e3' is not a decimal integer 1..4096"},
      {"run causal --n 16 --seed -1", "--seed: -1 is out of range"},
      {"run causal --n 16 --seed 18446744073709551616", "--seed: 18446744073709551616 is out"},
      {"run causal --n 16 --repeats 1000000000", "--repeats: 1000000000 is out of range"},
      {"run causal --n 16 --d 257", "--d: 257 is out of range: allowed a decimal integer 1..256"},
      {"mask causal --n 16 --max-elements 0", "--max-elements: 0 is out of range"},
      {"mask causal --n 16 --out ''", "--out"},
      {"run causal --n 16 --save ''", "--save"},
      {"run causal --n 16 --memory-budget ''", "--memory-budget"},
  };
  for (const Bad& b : bad) {
    INFO(b.args);
    const Result r = run(b.args);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(b.says));
  }
  // A FIFO would block the open until some writer appears: refused by its kind instead.
  TempDir dir;
  const std::string fifo = dir.file("fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  for (const std::string& args : {fmt::format("stats 'blocks(file=\"{}\")' --n 64", fifo),
                                  fmt::format("stats --from-deepspeed '{}' --n 64", fifo)}) {
    INFO(args);
    const Result r = run(args);
    CHECK(r.code == 2);
    CHECK_THAT(r.err,
               Catch::Contains("is a FIFO (named pipe)") && Catch::Contains("give a regular file"));
  }
}

TEST_CASE("cli: resume headers, --resume DIR/results.jsonl, upper-case extensions, point files",
          "[cli]") {
  TempDir dir;
  const fs::path run_dir = fs::path(dir.file("t")) / "stamp";
  fs::create_directories(run_dir);
  const std::string toml = R"(name = \"t\"\nseq_len = [64]\npatterns = [\"causal\"]\n)";
  auto header = [&](const std::string& quick, const std::string& text) {
    std::ofstream(run_dir / "results.jsonl")
        << R"({"kind":"header","experiment":"t","stamp":"stamp","quick":)" << quick
        << R"(,"experiment_toml":)" << text << "}\n";
  };
  header("\"yes\"", "\"" + toml + "\"");
  Result r = run("sweep --resume " + quote(run_dir.string()));
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("line 1 (the header): 'quick' must be true or false, found "
                                    "\"yes\""));
  header("false", "5");
  // The results file itself names its run directory.
  r = run("sweep --resume " + quote((run_dir / "results.jsonl").string()));
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("'experiment_toml' must be the experiment file's text, "
                                    "found 5"));

  // mask.NPY is a .npy file like mask.npy.
  const std::string upper = dir.file("mask.NPY");
  REQUIRE(run("mask causal --n 16 --out " + quote(upper)).code == 0);
  const spattn::NpyArray a = spattn::read_npy(upper);
  CHECK(a.shape == std::vector<std::int64_t>{1, 16, 16});

  // The hidden point worker: a directory is not a point file (exit 2, not a stream error).
  r = run("point " + quote(dir.path().string()));
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("is a directory, not a point file"));
}

TEST_CASE("cli: {n}-relative spec arguments as in experiment files", "[cli]") {
  // strided({n}/8) & causal at n = 64: query i sees floor(i/8) + 1 keys, 8 * (1 + ... + 8).
  Result r = run("stats " + quote("strided({n}/8) & causal") + " --n 64 --json");
  REQUIRE(r.code == 0);
  auto j = nlohmann::json::parse(r.out);
  std::int64_t want = 0;
  for (std::int64_t i = 0; i < 64; ++i)
    for (std::int64_t k = 0; k <= i; ++k) want += (i - k) % 8 == 0 ? 1 : 0;
  CHECK(want == 288);
  CHECK(j.at("layout").at("allowed_pairs") == want);
  CHECK(j.at("axes").at("spec") == "strided(8) & causal");
  CHECK(j.at("axes").at("pattern") == "strided({n}/8) & causal");  // the name as written

  // {sqrt_n} with --n 100 is 10: sliding(10) keeps 1 + ... + 10 + 90 * 10 pairs.
  r = run("stats " + quote("sliding({sqrt_n})") + " --n 100 --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out).at("layout").at("allowed_pairs") == 55 + 900);

  // mask and run fill them in too.
  r = run("mask " + quote("window({n}/8)") + " --n 16 --block 16 --level element --format ascii");
  REQUIRE(r.code == 0);
  CHECK(r.out.find("window(2, 2)") != std::string::npos);
  r = run("run " + quote("sliding({sqrt_n}*4)") + " --n 64 --d 8 --repeats 1 --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out).at("axes").at("spec") == "sliding(32)");

  r = run("stats " + quote("sliding({m})") + " --n 64");
  CHECK(r.code == 2);
  CHECK(r.err.find("unknown placeholder '{m}'") != std::string::npos);
  r = run("stats " + quote("sliding({n}/0)") + " --n 64");
  CHECK(r.code == 2);
  CHECK(r.err.find("'{n}/0' is not allowed") != std::string::npos);
}

TEST_CASE("cli: unknown options are named with the closest one the command has", "[cli]") {
  struct Case {
    std::string args, message;
  };
  const Case cases[] = {
      {"stats causal --n 64 --head 2",
       "unknown option '--head' for 'spattn stats' (did you mean '--heads'?)"},
      // Reported even though --n is missing, and case or '_' for '-' is a near miss.
      {"stats causal --N 64", "unknown option '--N' for 'spattn stats' (did you mean '--n'?)"},
      {"stats causal --seq-len 64",
       "unknown option '--seq-len' for 'spattn stats' (did you mean '--n'?)"},
      {"run causal --n 16 --head_dim 8",
       "unknown option '--head_dim' for 'spattn run' (did you mean '--head-dim'?)"},
      {"mask causal --n 16 --lvl block",
       "unknown option '--lvl' for 'spattn mask' (did you mean '--level'?)"},
      {"sweep x.toml --quik",
       "unknown option '--quik' for 'spattn sweep' (did you mean '--quick'?)"},
      {"--plugni x.so stats causal --n 4",
       "unknown option '--plugni' for 'spattn' (did you mean '--plugin'?)"},
      {"stats causal --n 16 --zzzzzz", "unknown option '--zzzzzz' for 'spattn stats';"},
  };
  for (const Case& c : cases) {
    INFO(c.args);
    const Result r = run(c.args);
    CHECK(r.code == 2);
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK(r.out.empty());
  }
  // mask has a --head of its own.
  CHECK(run("mask causal --n 4 --head 0").code == 0);
}

TEST_CASE("cli: --head-dim, tile sizes in the help, and mask file extensions", "[cli]") {
  // --head-dim is --d, as head_dim in experiment files.
  Result r = run("stats causal --n 64 --head-dim 8 --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out).at("axes").at("head_dim") == 8);
  r = run("run causal --n 32 --head-dim 8 --repeats 1 --json");
  REQUIRE(r.code == 0);
  CHECK(nlohmann::json::parse(r.out).at("axes").at("head_dim") == 8);

  // Every tile size option lists the allowed sizes in the help and in its error.
  r = run("stats --help");
  REQUIRE(r.code == 0);
  for (const std::string opt : {"--block ", "--block-q ", "--block-k "}) {
    const std::size_t at = r.out.find("  " + opt);
    REQUIRE(at != std::string::npos);
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    INFO(line);
    CHECK(line.find("16|32|64|128") != std::string::npos);
    CHECK(line.find("1..128") == std::string::npos);
  }
  r = run("stats causal --n 16 --block-q 48");
  CHECK(r.code == 2);
  CHECK(r.err.find("--block-q: 48 is not a tile size: use 16, 32, 64 or 128") != std::string::npos);

  // An --out extension that is no mask format is refused, naming the formats; no file written.
  TempDir dir;
  r = run("mask causal --n 16 --out " + quote(dir.file("m.jpg")));
  CHECK(r.code == 2);
  CHECK(r.err.find("'.jpg' is not a mask format: use .npy (array), .png (picture) or .txt") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(dir.file("m.jpg")));
  // .txt, no extension, or an explicit --format still write.
  CHECK(run("mask causal --n 4 --out " + quote(dir.file("m.txt"))).code == 0);
  CHECK(run("mask causal --n 4 --out " + quote(dir.file("m"))).code == 0);
  CHECK(run("mask causal --n 4 --format ascii --out " + quote(dir.file("m.art"))).code == 0);
  std::ifstream art(dir.file("m.txt"));
  std::string text((std::istreambuf_iterator<char>(art)), std::istreambuf_iterator<char>());
  CHECK(text.find("#...\n##..\n###.\n####\n") != std::string::npos);
}
