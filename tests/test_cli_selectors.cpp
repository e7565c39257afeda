// The CLI with selectors: `spattn run` selects on its inputs and records select_ms apart from
// attention (checked against the reference), `stats` and `mask` without inputs name --inputs.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "cli_runner.hpp"
#include "spattn/attention/select/planted.hpp"
#include "spattn/attention/select/search.hpp"
#include "spattn/attention/select/select.hpp"
#include "spattn/patterns/io/npy.hpp"
#include "spattn/patterns/spec.hpp"
#include "temp_dir.hpp"

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

namespace {

// q.npy, k.npy and v.npy of planted inputs in `dir`; returns them.
spattn::PlantedInputs write_inputs(const std::filesystem::path& dir,
                                   const spattn::AttentionShape& s) {
  spattn::PlantedSpec ps;
  ps.columns = {5};
  ps.offsets = {0, 9};
  spattn::PlantedInputs in = spattn::planted_inputs(s, ps, 3);
  for (auto [name, t] : {std::pair<const char*, const spattn::Tensor*>{"q.npy", &in.q},
                         {"k.npy", &in.k},
                         {"v.npy", &in.v}}) {
    std::vector<std::int64_t> shape(t->shape.begin(), t->shape.end());
    spattn::write_npy((dir / name).string(), "<f4", shape, t->values.data(),
                      t->values.size() * sizeof(float));
  }
  return in;
}

}  // namespace

TEST_CASE("stats and mask select on --inputs", "[selectors][cli]") {
  spattn::test::TempDir dir("sel");
  const spattn::AttentionShape s{2, 4, 2, 100, 120, 16};
  const spattn::PlantedInputs in = write_inputs(dir.path(), s);
  const std::string spec = "moba(16, 2) | sink(2)";
  const std::string geo = " --n 100 --nk 120 --heads 4 --block 16 --inputs " + dir.path().string();
  // The mask of every batch and head equals the library's selection (resolved pattern's rule).
  const std::string out = (dir.path() / "m.npy").string();
  const auto r = run_cli("mask '" + spec + "'" + geo + " --format npy --out " + out);
  REQUIRE(r.code == 0);
  const spattn::NpyArray m = spattn::read_npy(out);
  REQUIRE(m.shape == std::vector<std::int64_t>{2, 4, 100, 120});
  spattn::Geometry g;
  g.nq = 100;
  g.nk = 120;
  g.heads = 4;
  const spattn::PatternPtr p = spattn::parse_spec(spec);
  std::int64_t bad = 0, kept = 0;
  for (std::int64_t b = 0; b < 2; ++b) {
    const spattn::PatternPtr rb = spattn::select_batch(p, in.q.view(), in.k.view(), b, g);
    for (int h = 0; h < 4; ++h)
      for (std::int64_t i = 0; i < 100; ++i)
        for (std::int64_t j = 0; j < 120; ++j) {
          const bool got = m.data[((b * 4 + h) * 100 + i) * 120 + j] != 0;
          bad += got != rb->allows(g, h, i, j);
          kept += got;
        }
  }
  CHECK(bad == 0);
  CHECK(kept > 0);
  // stats reports the selection; its record has the selection group and all batches' pairs.
  const auto st = run_cli("stats '" + spec + "'" + geo + " --json");
  REQUIRE(st.code == 0);
  const auto j = nlohmann::json::parse(st.out);
  CHECK(j.contains("selection"));
  CHECK(j["axes"]["batch"] == 2);
  CHECK(j["layout"]["allowed_pairs"].get<std::int64_t>() > 0);
  // Files that disagree with the options are named.
  const auto wrong =
      run_cli("stats '" + spec + "' --n 99 --nk 120 --heads 4 --inputs " + dir.path().string());
  CHECK(wrong.code == 2);
  CHECK(wrong.err.find("q.npy") != std::string::npos);
}

TEST_CASE("search chooses per head by attention-mass recall", "[selectors][cli]") {
  spattn::test::TempDir dir("search");
  const spattn::AttentionShape s{1, 2, 1, 90, 90, 16};
  const spattn::PlantedInputs in = write_inputs(dir.path(), s);
  spattn::Geometry g;
  g.nq = g.nk = 90;
  g.heads = 2;
  const std::vector<std::string> cands = {"sliding(8)", "causal", "vertical_slash(30, 50)"};
  const spattn::SearchResult r =
      spattn::search_heads(cands, in.q.view(), in.k.view(), g, /*min_query=*/10);
  REQUIRE(r.heads.size() == 2);
  // sliding(8)'s recall on head 1, by brute force: mean over i >= 10 of the causal softmax mass
  // of keys i - 7 .. i.
  double want = 0;
  for (std::int64_t i = 10; i < 90; ++i) {
    std::vector<double> a(static_cast<std::size_t>(i + 1));
    double mx = -1e300, tot = 0, kept = 0;
    for (std::int64_t j = 0; j <= i; ++j) {
      double d = 0;
      for (int x = 0; x < 16; ++x)
        d += double(in.q.view().at(0, 1, i, x)) * in.k.view().at(0, 0, j, x);
      a[j] = d / 4.0;
      mx = std::max(mx, a[j]);
    }
    for (std::int64_t j = 0; j <= i; ++j) tot += std::exp(a[j] - mx);
    for (std::int64_t j = std::max<std::int64_t>(0, i - 7); j <= i; ++j)
      kept += std::exp(a[j] - mx);
    want += kept / tot;
  }
  want /= 80;
  CHECK(std::abs(r.heads[1].candidates[0].recall - want) < 1e-12);
  CHECK(std::abs(r.heads[1].candidates[1].recall - 1.0) < 1e-12);
  CHECK(r.heads[0].best == 1);  // causal keeps everything
  CHECK(r.heads_spec == "heads(0..1: causal)");
  // Under a density budget causal cannot compete.
  const spattn::SearchResult sparse =
      spattn::search_heads(cands, in.q.view(), in.k.view(), g, 10, 0.4);
  for (const auto& h : sparse.heads) CHECK(h.best != 1);
  // The CLI writes the per-head spec and the JSON.
  const std::string out = (dir.path() / "search.json").string();
  const auto c =
      run_cli("search --inputs " + dir.path().string() +
              " --candidate 'sliding(8)' --candidate causal --max-density 0.4 --out " + out);
  REQUIRE(c.code == 0);
  CHECK(c.out.find("per-head spec: heads(0..1: sliding(8))") != std::string::npos);
  std::ifstream f(out);
  const auto j = nlohmann::json::parse(f);
  CHECK(j["heads_spec"] == "heads(0..1: sliding(8))");
  CHECK(j["heads"].size() == 2);
}

TEST_CASE("selectors run in sweeps", "[selectors][cli]") {
  spattn::test::TempDir dir("selsweep");
  {
    std::ofstream f(dir.path() / "s.toml");
    f << "name = \"s\"\ndescription = \"selectors\"\nseq_len = [200]\nhead_dim = 16\nheads = 2\n"
         "patterns = [{ name = \"moba\", spec = \"moba(32, 2) | sink(2)\" },\n"
         "            { name = \"per head\", spec = \"heads(0: quest(64, page=8); 1: causal)\" },\n"
         "            { name = \"causal\", spec = \"causal\" }]\n"
         "repeats = 1\nwarmup = 0\nfidelity = true\nfidelity_baseline = \"causal\"\n";
  }
  const auto r = run_cli("sweep " + (dir.path() / "s.toml").string() + " --out " +
                         (dir.path() / "out").string());
  REQUIRE(r.code == 0);
  int selected = 0, points = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path() / "out")) {
    if (e.path().filename() != "results.jsonl") continue;
    std::ifstream f(e.path());
    std::string line;
    while (std::getline(f, line)) {
      const auto j = nlohmann::json::parse(line);
      if (!j.contains("axes")) continue;
      ++points;
      CHECK(j["status"] == "ok");
      const bool selector = j["axes"]["spec"] != "causal";
      CHECK(j.contains("selection") == selector);
      selected += selector;
      CHECK(j["fidelity"]["recall_mean"].get<double>() > 0);
    }
  }
  CHECK(points == 3);
  CHECK(selected == 2);
}
