// Experiment files: parsing every key, geometric ranges, point expansion (order, count, max_n
// and block overrides, [quick]), the point JSON round trip, one clear error (message and TOML
// line) for each kind of malformed file, the executor axis and its key rule, and every row of the
// axis table read, overridden by [quick], keyed and sent in point JSON.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "spattn/experiments/experiment.hpp"
#include "spattn/patterns/error.hpp"
#include "temp_dir.hpp"

using namespace spattn;
using namespace spattn::experiments;
using Catch::Matchers::Contains;

namespace {

// Parses `text` expecting a UsageError whose message contains `fragment` and names `line`
// ("bad.toml:LINE:"; line 0: an error about the whole file, "bad.toml: ").
void expect_error(const std::string& text, const std::string& fragment, int line) {
  INFO("file:\n" << text);
  try {
    (void)parse_experiment(text, "bad.toml");
    FAIL("parse_experiment accepted the file");
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK_THAT(msg, Contains(fragment));
    if (line > 0)
      CHECK(msg.rfind(fmt::format("bad.toml:{}:", line), 0) == 0);
    else
      CHECK(msg.rfind("bad.toml: ", 0) == 0);
  }
}

// Three valid lines that the malformed files below extend (so a bad key added next is line 4).
const std::string kBase = "name = \"t\"\nseq_len = [1024]\npatterns = [\"dense\"]\n";

const std::string kFull = R"toml(# every key of the schema
name = "full-test.v1"
description = "every key"
seq_len = {from = 1024, to = 8192, factor = 2}
head_dim = [64, 128]
heads = 8
kv_heads = [0, 2]
batch = 1
threads = [1, 2]
block = [64, 128]
tile_mode = ["auto", "partial"]
repeats = 3
warmup = 2
timeout = 30.5
memory = "1.5GiB"
seed = 42
check = true
check_max_n = 1024
fidelity = true
fidelity_max_n = 4096
inputs = "synthetic"
predict_gflops = 50
patterns = [
  "dense",
  {name = "local", spec = "sliding(512) | sink(4)", max_n = 4096},
  {spec = "causal", block = 32},
]

[quick]
seq_len = [1024, 2048]
repeats = 1
warmup = 0
threads = 1
inputs = {kind = "npy", dir = "qkv"}

[report]
layout = "scaling"
baseline = "dense"
budget = "2GiB"
)toml";

}  // namespace

TEST_CASE("experiment file: every key is read", "[toml]") {
  const Experiment e = parse_experiment(kFull, "full.toml");
  CHECK(e.name == "full-test.v1");
  CHECK(e.description == "every key");
  CHECK(e.source_text == kFull);
  CHECK(e.source_path == "full.toml");
  CHECK(e.axes.ints("seq_len") == std::vector<std::int64_t>{1024, 2048, 4096, 8192});
  CHECK(e.axes.ints("head_dim") == std::vector<std::int64_t>{64, 128});
  CHECK(e.axes.ints("heads") == std::vector<std::int64_t>{8});
  CHECK(e.axes.ints("kv_heads") == std::vector<std::int64_t>{0, 2});
  CHECK(e.axes.ints("batch") == std::vector<std::int64_t>{1});
  CHECK(e.axes.ints("threads") == std::vector<std::int64_t>{1, 2});
  CHECK(e.axes.ints("block") == std::vector<std::int64_t>{64, 128});
  CHECK(e.axes.names("tile_mode") == std::vector<std::string>{"auto", "partial"});

  const Settings& s = e.settings;
  CHECK(s.repeats == 3);
  CHECK(s.warmup == 2);
  CHECK(s.timeout_seconds == 30.5);
  CHECK(s.memory_bytes == 3 * (std::int64_t{1} << 29));  // 1.5 * 2^30
  CHECK(s.seed == 42);
  CHECK(s.check);
  CHECK(s.check_max_n == 1024);
  CHECK(s.fidelity);
  CHECK(s.fidelity_max_n == 4096);
  CHECK(s.inputs.kind == "synthetic");
  CHECK(s.inputs.npy_dir.empty());
  CHECK(s.predict_gflops == 50);

  REQUIRE(e.patterns.size() == 3);
  CHECK(e.patterns[0].name == "dense");
  CHECK(e.patterns[0].spec == "dense");
  CHECK(e.patterns[0].max_n == 0);
  CHECK(e.patterns[0].block == 0);
  CHECK(e.patterns[0].line == 24);
  CHECK(e.patterns[1].name == "local");
  CHECK(e.patterns[1].spec == "sliding(512) | sink(4)");
  CHECK(e.patterns[1].max_n == 4096);
  CHECK(e.patterns[1].line == 25);
  CHECK(e.patterns[2].name == "causal");  // default name: the spec
  CHECK(e.patterns[2].block == 32);
  CHECK(e.patterns[2].line == 26);

  // [quick]: the given keys replace, the others are inherited.
  CHECK(e.quick_axes.ints("seq_len") == std::vector<std::int64_t>{1024, 2048});
  CHECK(e.quick_axes.ints("threads") == std::vector<std::int64_t>{1});
  CHECK(e.quick_axes["head_dim"] == e.axes["head_dim"]);
  CHECK(e.quick_axes["kv_heads"] == e.axes["kv_heads"]);
  CHECK(e.quick_axes["block"] == e.axes["block"]);
  CHECK(e.quick_axes["tile_mode"] == e.axes["tile_mode"]);
  const Settings& q = e.quick_settings;
  CHECK(q.repeats == 1);
  CHECK(q.warmup == 0);
  CHECK(q.inputs.kind == "npy");
  CHECK(q.inputs.npy_dir == "qkv");  // parse_experiment keeps it as written
  CHECK(q.seed == 42);
  CHECK(q.timeout_seconds == 30.5);
  CHECK(q.memory_bytes == s.memory_bytes);
  CHECK(q.check);

  CHECK(e.report.layout == "scaling");
  CHECK(e.report.baseline == "dense");
  CHECK(e.report.budget_bytes == std::int64_t{2} << 30);
}

TEST_CASE("experiment file: non-ASCII text in strings and comments", "[toml]") {
  // A byte order mark, then UTF-8 in a comment, a basic, a literal and a multi-line string, and
  // in a pattern name; quotes and escapes inside strings must not end them early.
  const std::string text =
      "\xef\xbb\xbf# caf\xc3\xa9 \xce\xa9\nname = \"t\"\nseq_len = [1024]\n"
      "description = \"\"\"x \\\" \"\" \xc2\xa7\n\xc3\xa9\"\"\"\n"
      "patterns = [{name = 'caf\xc3\xa9 \"q\"', spec = \"dense\"}]  # \xc2\xa7\n"
      "[report]\nbaseline=\"caf\xc3\xa9 \\\"q\\\"\"\n";
  const Experiment e = parse_experiment(text, "u.toml");
  CHECK(e.description == "x \" \"\" \xc2\xa7\n\xc3\xa9");
  REQUIRE(e.patterns.size() == 1);
  CHECK(e.patterns[0].name == "caf\xc3\xa9 \"q\"");
  CHECK(e.patterns[0].line == 6);
}

TEST_CASE("experiment file: defaults of a minimal file", "[toml]") {
  const Experiment e = parse_experiment(kBase, "min.toml");
  const Settings defaults;
  CHECK(e.description.empty());
  CHECK(e.axes.ints("head_dim") == std::vector<std::int64_t>{64});
  CHECK(e.axes.ints("heads") == std::vector<std::int64_t>{8});
  CHECK(e.axes.ints("kv_heads") == std::vector<std::int64_t>{0});
  CHECK(e.axes.ints("threads") == std::vector<std::int64_t>{0});
  CHECK(e.axes.ints("block") == std::vector<std::int64_t>{64});
  CHECK(e.axes.names("tile_mode") == std::vector<std::string>{"auto"});
  CHECK(e.axes.names("executor") == std::vector<std::string>{"flash"});
  CHECK(e.quick_axes == e.axes);
  CHECK(e.settings.repeats == defaults.repeats);
  CHECK(e.settings.memory_bytes == 0);
  CHECK(e.settings.inputs.kind == "random");
  CHECK(e.report.layout == "scaling");
  CHECK(e.report.baseline == "dense");
  CHECK(e.report.budget_bytes == 0);
  const auto points = expand_points(e, false);
  REQUIRE(points.size() == 1);
  // threads 0 (all cores) stays 0 in the key; kv_heads 0 resolves to heads.
  CHECK(points[0].key ==
        "pattern=dense;n=1024;d=64;h=8;hkv=8;b=1;t=0;block=64;tile=auto;"
        "inputs=random");
  CHECK(points[0].kv_heads == 8);
  CHECK(points[0].threads == 0);
  CHECK(points[0].executor == Executor::Flash);
}

TEST_CASE("experiment file: geometric ranges", "[toml]") {
  auto seq = [](const std::string& range) {
    return parse_experiment("name = \"r\"\npatterns = [\"dense\"]\nseq_len = " + range + "\n",
                            "r.toml")
        .axes.ints("seq_len");
  };
  // 1000 * 3^k <= 100000: 1000, 3000, 9000, 27000, 81000 (the next, 243000, is past `to`).
  CHECK(seq("{from = 1000, to = 100000, factor = 3}") ==
        std::vector<std::int64_t>{1000, 3000, 9000, 27000, 81000});
  // factor defaults to 2; `to` itself is included when reached exactly.
  CHECK(seq("{from = 256, to = 2048}") == std::vector<std::int64_t>{256, 512, 1024, 2048});
  CHECK(seq("{from = 5, to = 5}") == std::vector<std::int64_t>{5});
  // Float factor 1.5: 1024, 1536, 2304, 3456 (5184 > 4096).
  CHECK(seq("{from = 1024, to = 4096, factor = 1.5}") ==
        std::vector<std::int64_t>{1024, 1536, 2304, 3456});
  // Factor sqrt(2), rounded to integers: 1024, 1448.2, 2048, 2896.3, 4096.
  CHECK(seq("{from = 1024, to = 4096, factor = 1.4142135623730951}") ==
        std::vector<std::int64_t>{1024, 1448, 2048, 2896, 4096});
  // 2^0 .. 2^40 is 41 values, within the 64-value limit.
  CHECK(seq("{from = 1, to = 1099511627776}").size() == 41);
  // A single integer is a one-value axis.
  CHECK(seq("77") == std::vector<std::int64_t>{77});
}

TEST_CASE("experiment file: expansion order and count", "[toml]") {
  const Experiment e = parse_experiment(R"toml(name = "order"
seq_len = [256, 128]
patterns = [{name = "a", spec = "causal"}, {name = "b", spec = "dense", max_n = 200}]
heads = [4, 2]
kv_heads = [0, 1]
threads = [0, 3]
block = [16, 32]
tile_mode = ["partial", "auto"]
)toml",
                                        "o.toml");
  // Written out by hand in the documented order: patterns, seq_len, head_dim, heads, kv_heads,
  // batch, threads, block, tile_mode (each in the order given in the file). Pattern b stops at
  // max_n = 200, so it has n = 128 only.
  std::vector<std::string> expected;
  for (const std::string pat : {"a", "b"})
    for (const int n : {256, 128}) {
      if (pat == "b" && n > 200) continue;
      for (const int h : {4, 2})
        for (const int kv : {0, 1})
          for (const int t : {0, 3})
            for (const int blk : {16, 32})
              for (const std::string tile : {"partial", "auto"})
                expected.push_back(fmt::format(
                    "pattern={};n={};d=64;h={};hkv={};b=1;t={};block={};tile={};inputs=random", pat,
                    n, h, kv == 0 ? h : kv, t, blk, tile));
    }
  // a: 2 n * 2 h * 2 kv * 2 t * 2 block * 2 tile = 64; b: 1 n * 32 = 32.
  REQUIRE(expected.size() == 96);
  const auto points = expand_points(e, false);
  REQUIRE(points.size() == expected.size());
  for (std::size_t i = 0; i < points.size(); ++i) {
    CHECK(points[i].key == expected[i]);
    CHECK(points[i].index == static_cast<int>(i));
    CHECK(point_key(points[i]) == points[i].key);
  }
}

TEST_CASE("experiment file: max_n, block override and [quick] in the expansion", "[toml]") {
  const Experiment e = parse_experiment(kFull, "full.toml");
  // Axes other than seq_len and block: head_dim 2 * heads 1 * kv_heads 2 * batch 1 * threads 2 *
  // tile_mode 2 = 16 combinations.
  //   dense:  4 seq_len * 2 blocks * 16 = 128
  //   local:  3 seq_len (max_n 4096 drops 8192) * 2 blocks * 16 = 96
  //   causal: 4 seq_len * 1 block (its own block = 32) * 16 = 64
  const auto full = expand_points(e, false);
  REQUIRE(full.size() == 128 + 96 + 64);
  std::set<std::string> keys;
  for (const SweepPoint& p : full) {
    keys.insert(p.key);
    CHECK(p.settings.repeats == 3);
    CHECK(p.settings.inputs.kind == "synthetic");
    if (p.pattern.name == "local") CHECK(p.n <= 4096);
    if (p.pattern.name == "causal")
      CHECK(p.block == 32);
    else
      CHECK((p.block == 64 || p.block == 128));
    CHECK((p.kv_heads == 8 || p.kv_heads == 2));
  }
  CHECK(keys.size() == full.size());
  CHECK(full[0].pattern.name == "dense");
  CHECK(full[128].pattern.name == "local");
  CHECK(full[128 + 96].pattern.name == "causal");

  // [quick]: seq_len {1024, 2048}, threads {1}: the other axes give 2 * 1 * 2 * 1 * 1 * 2 = 8.
  //   dense 2 * 2 * 8 = 32, local 2 * 2 * 8 = 32, causal 2 * 1 * 8 = 16.
  const auto quick = expand_points(e, true);
  REQUIRE(quick.size() == 80);
  for (const SweepPoint& p : quick) {
    CHECK(p.n <= 2048);
    CHECK(p.threads == 1);
    CHECK(p.settings.repeats == 1);
    CHECK(p.settings.warmup == 0);
    CHECK(p.settings.inputs.kind == "npy");
    CHECK_THAT(p.key, Contains(";inputs=npy:qkv"));
  }
}

TEST_CASE("experiment file: points round-trip through JSON", "[toml]") {
  const Experiment e = parse_experiment(kFull, "full.toml");
  std::vector<SweepPoint> points = expand_points(e, false);
  const auto quick = expand_points(e, true);
  points.insert(points.end(), quick.begin(), quick.end());
  SweepPoint odd = points.back();  // extreme values that the loader does not produce
  odd.settings.seed = std::numeric_limits<std::uint64_t>::max();
  odd.settings.timeout_seconds = 0.1;
  odd.settings.predict_gflops = 1.0 / 3.0;
  odd.settings.memory_bytes = (std::int64_t{1} << 62) - 1;
  odd.pattern.name = "weird \"name\"; with = signs";
  odd.executor = Executor::Textbook;
  odd.nk = odd.n + 7;
  odd.block_k = 32;
  odd.key = point_key(odd);
  points.push_back(odd);
  for (const SweepPoint& p : points) {
    const std::string text = point_to_json(p).dump();
    const SweepPoint r = point_from_json(nlohmann::json::parse(text));
    INFO(text);
    CHECK(r.index == p.index);
    CHECK(r.key == p.key);
    CHECK(r.pattern.name == p.pattern.name);
    CHECK(r.pattern.spec == p.pattern.spec);
    CHECK(r.pattern.max_n == p.pattern.max_n);
    CHECK(r.pattern.block == p.pattern.block);
    CHECK(r.pattern.line == p.pattern.line);
    CHECK(r.n == p.n);
    CHECK(r.head_dim == p.head_dim);
    CHECK(r.heads == p.heads);
    CHECK(r.kv_heads == p.kv_heads);
    CHECK(r.batch == p.batch);
    CHECK(r.threads == p.threads);
    CHECK(r.block == p.block);
    CHECK(r.tile_mode == p.tile_mode);
    CHECK(r.executor == p.executor);
    CHECK(r.nk == p.nk);
    CHECK(r.block_k == p.block_k);
    const Settings &a = r.settings, &b = p.settings;
    CHECK(a.repeats == b.repeats);
    CHECK(a.warmup == b.warmup);
    CHECK(a.timeout_seconds == b.timeout_seconds);
    CHECK(a.memory_bytes == b.memory_bytes);
    CHECK(a.seed == b.seed);
    CHECK(a.check == b.check);
    CHECK(a.check_max_n == b.check_max_n);
    CHECK(a.fidelity == b.fidelity);
    CHECK(a.fidelity_max_n == b.fidelity_max_n);
    CHECK(a.inputs.kind == b.inputs.kind);
    CHECK(a.inputs.npy_dir == b.inputs.npy_dir);
    CHECK(a.predict_gflops == b.predict_gflops);
  }
}

TEST_CASE("point JSON: malformed points are refused", "[toml]") {
  const nlohmann::json good = point_to_json(expand_points(parse_experiment(kBase, "b"), false)[0]);
  auto expect_bad = [](const nlohmann::json& j, const std::string& fragment) {
    INFO(j.dump());
    try {
      (void)point_from_json(j);
      FAIL("accepted");
    } catch (const UsageError& e) {
      CHECK_THAT(std::string(e.what()), Contains(fragment));
    }
  };
  nlohmann::json j = good;
  j.erase("n");
  expect_bad(j, "field 'n' is missing");
  j = good;
  j["n"] = "1024";
  expect_bad(j, "field 'n' must be an integer");
  j = good;
  j["n"] = 0;
  expect_bad(j, "field 'n' must be an integer 1..");
  j = good;
  j["kv_heads"] = 3;
  expect_bad(j, "not a multiple of kv_heads = 3");
  j = good;
  j["block"] = 48;
  expect_bad(j, "field 'block' must be 16, 32, 64 or 128");
  j = good;
  j["tile_mode"] = "full";
  expect_bad(j, "field 'tile_mode'");
  j = good;
  j["executor"] = "cuda";
  expect_bad(j, "field 'executor' must be one of flash, textbook");
  j = good;
  j.erase("executor");
  expect_bad(j, "field 'executor' is missing");
  j = good;
  j["settings"]["seed"] = -1;
  expect_bad(j, "settings.seed");
  j = good;
  j["settings"]["inputs"]["kind"] = "npy";
  expect_bad(j, "settings.inputs.npy_dir");
  j = good;
  j["settings"]["timeout_seconds"] = 0;
  expect_bad(j, "settings.timeout_seconds");
  j = good;
  j["settings"]["check"] = 1;
  expect_bad(j, "settings.check' must be true or false");
  expect_bad(nlohmann::json::array(), "must be an object");
}

TEST_CASE("experiment file: load_experiment reads a file and resolves npy dirs", "[toml]") {
  test::TempDir dir("spattn_toml");
  const std::string path = dir.file("exp.toml");
  {
    std::ofstream out(path);
    out << kBase << "inputs = \"npy:captured\"\n[quick]\ninputs = \"npy:/abs/dir\"\n";
  }
  const Experiment e = load_experiment(path);
  CHECK(e.source_path == path);
  CHECK(e.settings.inputs.npy_dir == (dir.path() / "captured").lexically_normal().string());
  CHECK(e.quick_settings.inputs.npy_dir == "/abs/dir");
  try {
    (void)load_experiment(dir.file("missing.toml"));
    FAIL("accepted a missing file");
  } catch (const UsageError& err) {
    CHECK_THAT(std::string(err.what()), Contains("missing.toml does not exist"));
  }
}

TEST_CASE("experiment file: malformed files give one clear error with the line", "[toml]") {
  // Unknown keys at every level.
  expect_error(kBase + "repeat = 3\n",
               "unknown key \"repeat\" in the top level (did you mean "
               "'repeats'?)",
               4);
  expect_error(
      "name = \"t\"\nseq_len = [1024]\npatterns = [\n  {spec = \"dense\", maxn = 10},\n]\n",
      "unknown key \"maxn\" in patterns[0]", 4);
  expect_error(kBase + "[quick]\nname = \"x\"\n", "unknown key \"name\" in [quick] (line 4)", 5);
  expect_error(kBase + "[report]\nlayuot = \"audit\"\n",
               "unknown key \"layuot\" in [report] (line 4) (did you mean 'layout'?)", 5);
  expect_error("name = \"t\"\npatterns = [\"dense\"]\nseq_len = {from = 1, to = 8, step = 2}\n",
               "unknown key \"step\" in seq_len", 3);
  expect_error(kBase + "inputs = {kind = \"npy\", path = \"x\"}\n",
               "unknown key \"path\" in inputs", 4);
  expect_error(kBase + "[quick.extra]\nrepeats = 1\n", "unknown key \"extra\" in [quick]", 4);

  // Wrong types.
  expect_error(kBase + "heads = \"8\"\n", "heads must be an integer 1..4096, got string \"8\"", 4);
  expect_error(kBase + "repeats = 2.5\n", "repeats must be an integer", 4);
  expect_error(kBase + "check = \"yes\"\n", "check must be true or false", 4);
  expect_error("name = \"t\"\npatterns = [\"dense\"]\nseq_len = [\n  1024,\n  \"2048\",\n]\n",
               "seq_len[1] must be an integer", 5);
  expect_error(kBase + "seed = 1979-05-27\n", "seed must be an integer >= 0, got date", 4);
  expect_error(kBase + "quick = 5\n", "quick must be a table", 4);
  expect_error("name = \"t\"\nseq_len = [1024]\npatterns = [\"dense\", 3]\n",
               "patterns[1] must be a spec string or a table", 3);
  expect_error("name = 7\nseq_len = [1024]\npatterns = [\"dense\"]\n", "name must be a string", 1);

  // Impossible values.
  expect_error(kBase + "batch = -1\n", "batch = -1 is out of range: allowed 1..65536", 4);
  expect_error("name = \"t\"\npatterns = [\"dense\"]\nseq_len = [0]\n",
               "seq_len[0] = 0 is out of range", 3);
  expect_error(kBase + "head_dim = 512\n", "head_dim = 512 is out of range: allowed 1..256", 4);
  expect_error(kBase + "heads = 12\nkv_heads = 8\n", "heads = 12 is not a multiple of kv_heads = 8",
               5);
  expect_error(kBase + "heads = 8\nkv_heads = [0, 8]\n", "both mean 8 K/V heads", 5);
  expect_error(kBase + "kv_heads = 4\n[quick]\nheads = 6\n",
               "with [quick] (line 5) applied: heads = 6 is not a multiple of kv_heads = 4", 4);
  expect_error(kBase + "block = 48\n", "block = 48 is not a block size: use 16, 32, 64 or 128", 4);
  expect_error(kBase + "tile_mode = \"masked\"\n",
               "tile_mode = \"masked\" is not allowed: use one of auto, partial", 4);
  expect_error(kBase + "timeout = nan\n", "timeout = nan is out of range", 4);
  expect_error(kBase + "name = \"x\"\n", "TOML syntax error", 4);  // redefinition
  expect_error("name = \"../up\"\nseq_len = [1024]\npatterns = [\"dense\"]\n",
               "name = \"../up\" is not allowed", 1);
  expect_error("name = \"t\"\nseq_len = [1024]\npatterns = [{spec = \"dense\", max_n = 0}]\n",
               "patterns[0].max_n = 0 is out of range", 3);
  expect_error("name = \"t\"\nseq_len = [4096]\npatterns = [{spec = \"dense\", max_n = 1024}]\n",
               "expands to no point", 2);
  expect_error("name = \"t\"\nseq_len = [1024]\npatterns = []\n", "patterns is an empty array", 3);
  expect_error(kBase + "threads = []\n", "threads is an empty array", 4);
  expect_error("name = \"t\"\nseq_len = [1024, 2048, 1024]\npatterns = [\"dense\"]\n",
               "seq_len[2] repeats the value of seq_len[0]", 2);

  // Ranges.
  expect_error("name = \"t\"\npatterns = [\"dense\"]\nseq_len = {from = 4096, to = 1024}\n",
               "seq_len is an empty range: to = 1024 is less than from = 4096", 3);
  expect_error(
      "name = \"t\"\npatterns = [\"dense\"]\nseq_len = {from = 1, to = 1099511627776, "
      "factor = 1.2}\n",
      "has more than 64 values", 3);
  expect_error(
      "name = \"t\"\npatterns = [\"dense\"]\nseq_len = {from = 1, to = 100, factor = 1.1}\n",
      "gives the value 1 twice after rounding", 3);
  expect_error("name = \"t\"\npatterns = [\"dense\"]\nseq_len = {from = 1, to = 100, factor = 1}\n",
               "seq_len.factor = 1 is out of range: allowed 2..", 3);
  expect_error("name = \"t\"\npatterns = [\"dense\"]\nseq_len = {to = 100}\n",
               "a range needs both 'from' and 'to'", 3);

  // Byte counts.
  expect_error(kBase + "memory = \"2 GigaBytes\"\n", "has an unknown unit \"gigabytes\"", 4);
  expect_error(kBase + "memory = \"lots\"\n", "does not start with a number", 4);
  expect_error(kBase + "memory = \"0.5B\"\n", "is out of range: allowed 1 byte", 4);
  expect_error(kBase + "memory = 1.5\n", "memory must be a positive integer (bytes) or a string",
               4);
  expect_error(kBase + "[report]\nbudget = \"1GiB 2\"\n", "has text after the unit", 5);

  // Specs: the spec parser's own message is included.
  expect_error(
      "name = \"t\"\nseq_len = [1024]\npatterns = [\n\"sliding(512) |\"]\n",
      "does not parse: spec error at column 15: expected a pattern name or '(', found end of spec",
      4);
  expect_error("name = \"t\"\nseq_len = [1024]\npatterns = [\"slidng(512)\"]\n",
               "unknown pattern 'slidng': did you mean 'sliding'", 3);
  expect_error("name = \"t\"\nseq_len = [1024]\npatterns = [\"sliding(0)\"]\n",
               "w = 0 is out of range", 3);
  expect_error(
      "name = \"t\"\nseq_len = [1024]\npatterns = [\"causal\", {name = \"causal\", spec = "
      "\"dense\"}]\n",
      "patterns[1] has the same name \"causal\" as patterns[0] (line 3)", 3);
  expect_error(kBase + "[report]\nbaseline = \"full\"\n",
               "report.baseline = \"full\" names no pattern; the pattern names are \"dense\"", 5);
  expect_error(kBase + "inputs = \"npy:\"\n", "inputs = \"npy:\" is not allowed", 4);
  expect_error(kBase + "inputs = {kind = \"npy\"}\n", "kind \"npy\" needs 'dir'", 4);

  // Size limits: a huge array and too many points are errors, not hours of work.
  std::string huge = "name = \"t\"\npatterns = [\"dense\"]\nseq_len = [";
  for (int i = 1; i <= 100000; ++i) huge += std::to_string(i) + (i < 100000 ? "," : "]\n");
  expect_error(huge, "seq_len has 100000 values, more than the limit of 64 per axis", 3);
  // 41 seq_len * 64 head_dim * 41 threads = 107584 points > 100000.
  std::string many =
      "name = \"t\"\npatterns = [\"dense\"]\nseq_len = {from = 1, to = "
      "1099511627776}\nhead_dim = [";
  for (int d = 1; d <= 64; ++d) many += std::to_string(d) + (d < 64 ? "," : "]\nthreads = [");
  for (int t = 0; t <= 40; ++t) many += std::to_string(t) + (t < 40 ? "," : "]\n");
  expect_error(many, "expands to more than 100000 points", 3);

  // Non-ASCII text outside strings and comments (toml++ 3.3 reaches undefined behaviour on some
  // of it), and right after a line-ending backslash in a multi-line string.
  expect_error(kBase + "x = 1\xc3\xa9\n", "non-ASCII character outside a string or comment", 4);
  expect_error(kBase + "x = 1=\"\xc3\xa9\"\n", "non-ASCII character outside a string or comment",
               4);
  expect_error(kBase + "x = [{a = +{b=\"\xc3\xa9\"}}]\n",
               "non-ASCII character outside a string or comment", 4);
  expect_error(kBase + "description = \"\"\"a\\\n  \xc2\xa7\"\"\"\n",
               "non-ASCII character right after a backslash in a multi-line string", 5);

  // Syntax errors carry line and column; missing keys name no line.
  expect_error("name = \"t\nseq_len = [1024]\n", "TOML syntax error", 1);
  expect_error("name = \"t\"\nseq_len = [1024,\n", "TOML syntax error", 2);
  expect_error("seq_len = [1024]\npatterns = [\"dense\"]\n", "missing required key 'name'", 0);
  expect_error("name = \"t\"\npatterns = [\"dense\"]\n", "missing required key 'seq_len'", 0);
  expect_error("name = \"t\"\nseq_len = [1024]\n", "missing required key 'patterns'", 0);
}

TEST_CASE("experiment file: spec placeholders, min_n and the fidelity baseline", "[toml]") {
  const Experiment e = parse_experiment(R"toml(name = "ph"
seq_len = [1000, 1024, 4096, 16384]
fidelity_baseline = "causal"
patterns = [
  { name = "strided sqrt", spec = "st_strided({sqrt_n})" },
  { name = "late", spec = "sliding({n})", min_n = 4096, max_n = 4096, fidelity_baseline = "dense" },
]
)toml",
                                        "ph.toml");
  const std::vector<SweepPoint> pts = expand_points(e, false);
  // 4 sizes for the first entry, only 4096 for the second: 5 points.
  REQUIRE(pts.size() == 5);
  // round(sqrt(1000)) = round(31.62) = 32; sqrt(1024) = 32; sqrt(4096) = 64; sqrt(16384) = 128.
  CHECK(pts[0].pattern.spec == "st_strided(32)");
  CHECK(pts[1].pattern.spec == "st_strided(32)");
  CHECK(pts[2].pattern.spec == "st_strided(64)");
  CHECK(pts[3].pattern.spec == "st_strided(128)");
  CHECK(pts[4].pattern.spec == "sliding(4096)");
  CHECK(pts[4].n == 4096);
  // One display name across sizes: one series in the report.
  CHECK(pts[0].pattern.name == "strided sqrt");
  CHECK(pts[3].pattern.name == "strided sqrt");
  CHECK(pts[0].settings.fidelity_baseline == "causal");
  CHECK(pts[0].pattern.fidelity_baseline.empty());
  CHECK(pts[4].pattern.fidelity_baseline == "dense");
  const SweepPoint back = point_from_json(point_to_json(pts[4]));
  CHECK(back.pattern.min_n == 4096);
  CHECK(back.pattern.fidelity_baseline == "dense");
  CHECK(back.settings.fidelity_baseline == "causal");

  CHECK(spec_at("a({n}) | b({sqrt_n}) | c", 100) == "a(100) | b(10) | c");
  CHECK_THROWS_WITH(spec_at("sliding({half_n})", 64), Contains("unknown placeholder '{half_n}'"));
  CHECK_THROWS_WITH(spec_at("sliding({n", 64), Contains("unknown placeholder '{n'"));
  // {n}/K (floor division) and {n}*K.
  CHECK(spec_at("strided({n}/8) | sliding({sqrt_n}*2) | window({n}/3, 1)", 1000) ==
        "strided(125) | sliding(64) | window(333, 1)");
  CHECK(spec_at("a({n}/ 2) | b({n}*)", 10) == "a(10/ 2) | b(10*)");  // no K: left to the parser
  CHECK_THROWS_WITH(spec_at("sliding({n}/0)", 64), Contains("'{n}/0' is not allowed"));
  CHECK_THROWS_WITH(spec_at("sliding({n}*99999999999999999999)", 64),
                    Contains("must be an integer >= 1"));
  CHECK_THROWS_WITH(spec_at("sliding({n}*4611686018427387904)", 64),
                    Contains("the product below 2^63"));
  {
    const Experiment frac = parse_experiment(
        "name = \"f\"\nseq_len = [256, 1024]\npatterns = [\"strided({n}/16) "
        "& causal\"]\n",
        "f.toml");
    const std::vector<SweepPoint> fp = expand_points(frac, false);
    REQUIRE(fp.size() == 2);
    CHECK(fp[0].pattern.spec == "strided(16) & causal");
    CHECK(fp[1].pattern.spec == "strided(64) & causal");
  }

  expect_error(kBase + "fidelity_baseline = \"nope(\"\n", "fidelity_baseline spec", 4);
  expect_error("name = \"t\"\nseq_len = [1024]\npatterns = [{spec = \"sliding({m})\"}]\n",
               "unknown placeholder '{m}'", 3);
  expect_error(
      "name = \"t\"\nseq_len = [1024]\npatterns = [{spec = \"dense\", min_n = 8, max_n = 4}]\n",
      "min_n = 8 is larger than max_n = 4", 3);
}

TEST_CASE("experiment file: every pattern must fit every point it runs at", "[toml]") {
  // A window, chunk, stride or block longer than the seq_len is valid (it covers every key it
  // can): a Mistral window of 4096 keys loads at seq_len 1024, every point of it.
  const Experiment swa = parse_experiment(
      "name = \"t\"\nseq_len = [1024, 2048, 8192]\npatterns = [\"mistral_swa(4096)\", "
      "\"chunked(8192) & causal\", \"sliding(512) | sink(4096)\"]\n[quick]\nseq_len = [128]\n",
      "ok.toml");
  CHECK(expand_points(swa, false).size() == 3 * 3);
  CHECK(expand_points(swa, true).size() == 3);
  // Placeholders are filled in first: l = round(sqrt(N)) always fits.
  CHECK(expand_points(parse_experiment("name = \"t\"\nseq_len = [1, 2, 5, 100]\npatterns = "
                                       "[\"st_strided({sqrt_n})\", \"window({n})\"]\n",
                                       "ok.toml"),
                      false)
            .size() == 8);
  // Still refused at load, at the pattern's line: a per-head assignment for another head count
  // and global tokens beyond N, in the full sizes and in [quick]'s, named as such.
  expect_error(
      "name = \"t\"\nseq_len = [64]\nheads = [4, 8]\npatterns = [\"heads(0..3: causal; 4..7: "
      "dense)\"]\n",
      "at seq_len = 64, heads = 4:", 4);
  expect_error("name = \"t\"\nseq_len = [64, 128]\npatterns = [\"global(tokens=[100])\"]\n",
               "patterns[0]: spec \"global(tokens=[100])\" at seq_len = 64, heads = 8: "
               "global(tokens=[100]): global position 100 is out of range",
               3);
  expect_error(
      "name = \"t\"\nseq_len = [1024]\npatterns = [\n  \"sliding(4096)\",\n  \"sliding(8) | "
      "global(tokens=[0, 200])\",\n]\n[quick]\nseq_len = [128]\n",
      "with [quick] (line 7) applied: patterns[1]: spec \"sliding(8) | global(tokens=[0, 200])\" "
      "at seq_len = 128",
      5);
  // min_n and max_n keep a pattern away from the sizes it does not fit.
  const Experiment e = parse_experiment(
      "name = \"t\"\nseq_len = [64, 128, 256]\npatterns = [\"dense\", {spec = "
      "\"global(tokens=[100])\", min_n = 128}, {spec = \"window(100)\", max_n = 128}]\n",
      "ok.toml");
  CHECK(expand_points(e, false).size() == 3 + 2 + 2);
  // A fidelity baseline is checked only where fidelity runs.
  const std::string baseline =
      "name = \"t\"\nseq_len = [256, 4096]\nfidelity_baseline = \"causal | "
      "global(tokens=[1000])\"\n"
      "patterns = [\"causal\"]\n";
  CHECK(expand_points(parse_experiment(baseline, "ok.toml"), false).size() == 2);
  expect_error(baseline + "fidelity = true\n",
               "fidelity baseline \"causal | global(tokens=[1000])\" at seq_len = 256, heads = 8",
               4);
  CHECK(
      expand_points(
          parse_experiment(baseline + "fidelity = true\nfidelity_max_n = 200\n", "ok.toml"), false)
          .size() == 2);
  // A baseline longer than the sequence is valid too.
  CHECK(expand_points(parse_experiment("name = \"t\"\nseq_len = [256, 4096]\nfidelity = true\n"
                                       "fidelity_baseline = \"sliding(1024)\"\npatterns = "
                                       "[\"causal\"]\n",
                                       "ok.toml"),
                      false)
            .size() == 2);
}

TEST_CASE("experiment file: the executor axis", "[toml]") {
  const std::string v1_key =
      "pattern=dense;n=1024;d=64;h=8;hkv=8;b=1;t=0;block=64;tile=auto;inputs=random";
  // A file without the axis runs the flash executor, with the key it always had.
  const std::vector<SweepPoint> plain = expand_points(parse_experiment(kBase, "p.toml"), false);
  REQUIRE(plain.size() == 1);
  CHECK(plain[0].executor == Executor::Flash);
  CHECK(plain[0].key == v1_key);

  const Experiment e = parse_experiment(
      kBase + "executor = [\"flash\", \"textbook\"]\n[quick]\nexecutor = \"textbook\"\n", "x.toml");
  CHECK(e.axes.names("executor") == std::vector<std::string>{"flash", "textbook"});
  CHECK(e.quick_axes.names("executor") == std::vector<std::string>{"textbook"});
  const std::vector<SweepPoint> full = expand_points(e, false);
  REQUIRE(full.size() == 2);
  // flash (the default) keeps the old key; textbook appends ";exec=textbook" after the inputs.
  CHECK(full[0].executor == Executor::Flash);
  CHECK(full[0].key == v1_key);
  CHECK(full[1].executor == Executor::Textbook);
  CHECK(full[1].key == v1_key + ";exec=textbook");
  const std::vector<SweepPoint> quick = expand_points(e, true);
  REQUIRE(quick.size() == 1);
  CHECK(quick[0].executor == Executor::Textbook);
  CHECK(quick[0].key == v1_key + ";exec=textbook");
  const SweepPoint back = point_from_json(point_to_json(full[1]));
  CHECK(back.executor == Executor::Textbook);
  CHECK(point_key(back) == full[1].key);

  // Keys and queries of different lengths, and oblong tiles (only `spattn run` sets them), join
  // the key after the later axes; their defaults (0, or equal to n / block) add nothing.
  SweepPoint odd = full[1];
  odd.nk = odd.n;
  odd.block_k = odd.block;
  CHECK(point_key(odd) == v1_key + ";exec=textbook");
  odd.nk = 2 * odd.n;
  odd.block_k = 32;
  CHECK(point_key(odd) == v1_key + fmt::format(";exec=textbook;nk={};block_k=32", 2 * odd.n));

  // The executor varies fastest, after tile_mode, each in file order.
  const std::vector<SweepPoint> order = expand_points(
      parse_experiment(
          kBase + "tile_mode = [\"partial\", \"auto\"]\nexecutor = [\"textbook\", \"flash\"]\n",
          "o.toml"),
      false);
  const std::string prefix = "pattern=dense;n=1024;d=64;h=8;hkv=8;b=1;t=0;block=64;tile=";
  REQUIRE(order.size() == 4);
  CHECK(order[0].key == prefix + "partial;inputs=random;exec=textbook");
  CHECK(order[1].key == prefix + "partial;inputs=random");
  CHECK(order[2].key == prefix + "auto;inputs=random;exec=textbook");
  CHECK(order[3].key == prefix + "auto;inputs=random");

  expect_error(kBase + "executor = \"cuda\"\n",
               "executor = \"cuda\" is not allowed: use one of flash, textbook", 4);
  expect_error(kBase + "[quick]\nexecutor = \"dense\"\n",
               "quick.executor = \"dense\" is not allowed: use one of flash, textbook", 5);
  expect_error(kBase + "executor = 1\n",
               "executor must be one of the strings flash, textbook, got integer 1", 4);
  expect_error(kBase + "executor = [\"flash\", \"flash\"]\n",
               "executor[1] repeats the value of executor[0]", 4);
  expect_error(kBase + "executer = \"flash\"\n", "(did you mean 'executor'?)", 4);
}

namespace {

// `v` as TOML: 16, "textbook".
std::string toml_text(const AxisValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return "\"" + std::get<std::string>(v) + "\"";
}

// A valid value of axis `a` other than its default, with the other axes at their defaults
// (heads = 8, kv_heads = 0): the smallest allowed integer, block or name that is not the default.
AxisValue other_value(const AxisDef& a) {
  std::vector<AxisValue> candidates;
  switch (a.kind) {
    case AxisKind::Int:
    case AxisKind::Length:
      candidates = {a.lo, a.lo + 1};
      break;
    case AxisKind::Block:
      candidates = {std::int64_t{16}, std::int64_t{32}};
      break;
    case AxisKind::Name:
      candidates.assign(a.names.begin(), a.names.end());
      break;
    case AxisKind::Policy:
      candidates = {std::string("full"), std::string("streaming(4, 1024)")};
      break;
  }
  for (const AxisValue& v : candidates)
    if (!a.default_value || v != *a.default_value) return v;
  FAIL("axis " << a.name << " has no value other than its default");
  return {};
}

// Whether the point key `key` has the part `part` ("d=64") between its ';' separators.
bool has_part(const std::string& key, const std::string& part) {
  return (";" + key + ";").find(";" + part + ";") != std::string::npos;
}

}  // namespace

TEST_CASE("experiment file: every axis of the table is read, overridden, keyed and sent",
          "[toml]") {
  REQUIRE(axis_table().size() >= 9);
  for (const AxisDef& a : axis_table()) {
    INFO("axis " << a.name);
    const AxisValue v = other_value(a);
    const std::string shown = std::holds_alternative<std::string>(v)
                                  ? std::get<std::string>(v)
                                  : std::to_string(std::get<std::int64_t>(v));
    const std::string part = fmt::format("{}={}", a.key, shown);
    const std::string head = "name = \"t\"\npatterns = [\"dense\"]\n";
    const std::string seq = a.name == "seq_len" ? "" : "seq_len = [1024]\n";
    const std::string line = fmt::format("{} = {}\n", a.name, toml_text(v));

    // At the top level: read, inherited by [quick], in the key and the point JSON.
    const Experiment e = parse_experiment(head + seq + line, "a.toml");
    CHECK(e.axes[a.name] == std::vector<AxisValue>{v});
    CHECK(e.quick_axes[a.name] == std::vector<AxisValue>{v});
    const std::vector<SweepPoint> points = expand_points(e, false);
    REQUIRE(points.size() == 1);
    const SweepPoint& p = points[0];
    CHECK(has_part(p.key, part));
    const nlohmann::json j = point_to_json(p);
    REQUIRE(j.contains(std::string(a.field)));
    CHECK(j[std::string(a.field)].dump() == nlohmann::json::parse(toml_text(v)).dump());
    const SweepPoint back = point_from_json(nlohmann::json::parse(j.dump()));
    CHECK(back.key == p.key);
    CHECK(point_key(back) == p.key);

    // The default, written out, is the same as leaving the key out; an axis added after the first
    // key format stays out of the key at its default and follows the inputs otherwise.
    if (a.default_value) {
      const Experiment d = parse_experiment(
          head + seq + fmt::format("{} = {}\n", a.name, toml_text(*a.default_value)), "d.toml");
      const Experiment none = parse_experiment(head + seq, "n.toml");
      CHECK(d.axes == none.axes);
      const std::string key = expand_points(none, false)[0].key;
      CHECK(key != p.key);
      if (a.always_in_key) {
        // (kv_heads shows its resolved value, so only the name is checked.)
        CHECK_THAT(key, Contains(";" + std::string(a.key) + "="));
      } else {
        CHECK_THAT(key, !Contains(";" + std::string(a.key) + "="));
        CHECK(p.key == key + ";" + part);
      }
    } else {
      CHECK(a.always_in_key);  // a required axis is in every key
      expect_error(head, fmt::format("missing required key '{}'", a.name), 0);
    }

    // In [quick]: overrides the grid of --quick only, or is refused.
    const std::string base = head + "seq_len = [1024]\n";
    if (a.quick) {
      const Experiment q = parse_experiment(base + "[quick]\n" + line, "q.toml");
      CHECK(q.quick_axes[a.name] == std::vector<AxisValue>{v});
      CHECK(q.axes == parse_experiment(base, "b.toml").axes);
      CHECK(has_part(expand_points(q, true)[0].key, part));
      CHECK(!has_part(expand_points(q, false)[0].key, part));
    } else {
      expect_error(base + "[quick]\n" + line,
                   fmt::format("unknown key \"{}\" in [quick] (line 4)", a.name), 5);
    }

    // Every axis: at most 64 values, distinct.
    std::string many = std::string(a.name) + " = [";
    for (int i = 0; i < 65; ++i) many += toml_text(v) + (i < 64 ? ", " : "]\n");
    expect_error(head + seq + many,
                 fmt::format("{} has 65 values, more than the limit of 64 per axis", a.name),
                 a.name == "seq_len" ? 3 : 4);
    expect_error(head + seq + fmt::format("{0} = [{1}, {1}]\n", a.name, toml_text(v)),
                 fmt::format("{0}[1] repeats the value of {0}[0]", a.name),
                 a.name == "seq_len" ? 3 : 4);
  }
}

TEST_CASE("experiment file: published figures in [[report.published]]", "[toml]") {
  const std::string pub = kBase + "[report]\n[[report.published]]\n";
  const spattn::experiments::Experiment e = parse_experiment(
      pub +
          "pattern = \"dense\"\nsource = \"Paper, Table 1\"\nquantity = \"time_ms\"\n"
          "n = [1024, 2048]\nvalues = [0.5, 2]\n",
      "ok.toml");
  REQUIRE(e.report.published.size() == 1);
  CHECK(e.report.published[0].n == std::vector<std::int64_t>{1024, 2048});
  CHECK(e.report.published[0].values == std::vector<double>{0.5, 2.0});
  // The header form reads back the same.
  const auto back = spattn::experiments::published_from_json(
      spattn::experiments::published_to_json(e.report.published), "h");
  CHECK(back[0].source == "Paper, Table 1");
  CHECK(back[0].values == e.report.published[0].values);
  expect_error(pub +
                   "pattern = \"sparse\"\nsource = \"s\"\nquantity = \"speedup\"\nn = [1]\n"
                   "values = [1]\n",
               "report.published[0].pattern = \"sparse\" names no pattern", 6);
  expect_error(pub +
                   "pattern = \"dense\"\nsource = \"s\"\nquantity = \"speed\"\nn = [1]\n"
                   "values = [1]\n",
               "report.published[0].quantity = \"speed\" is not allowed", 8);
  expect_error(pub +
                   "pattern = \"dense\"\nsource = \"s\"\nquantity = \"speedup\"\nn = [1, 2]\n"
                   "values = [1]\n",
               "report.published[0].n must be an array of as many integers as values (1)", 9);
  expect_error(pub +
                   "pattern = \"dense\"\nsource = \"s\"\nquantity = \"time_ms\"\nn = [2, 1]\n"
                   "values = [1, 2]\n",
               "report.published[0].n must be ascending: 1 follows 2", 9);
  expect_error(pub +
                   "pattern = \"dense\"\nsource = \"s\"\nquantity = \"pairs_slope\"\n"
                   "values = [1, 2]\n",
               "must hold one exponent", 9);
  expect_error(pub +
                   "pattern = \"dense\"\nsource = \"s\"\nquantity = \"speedup\"\nn = [1]\n"
                   "values = [-1]\n",
               "report.published[0].values[0] = -1 is out of range", 10);
}
