// The measurement record: Measurement -> JSON -> Measurement for every field, its derived
// figures against hand-computed values, the conversion of a schema-less (schema 1) results.jsonl
// record, and the messages for bad fields.
#include <catch2/catch.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/error.hpp"

namespace {

using namespace spattn::experiments;
using nlohmann::json;

// Every field set to a value that differs from its default and from the other fields.
Measurement full_record() {
  Measurement m;
  m.source = "run";
  m.key = "pattern=p;n=300";
  m.index = 7;
  m.status = Status::Timeout;
  m.message = "killed after 3 s";
  MeasuredAxes& x = m.axes;
  x.pattern = "sliding window";
  x.spec = "sliding(33)";
  x.n = 300;
  x.nk = 500;
  x.head_dim = 48;
  x.head_dim_v = 48;
  x.heads = 6;
  x.kv_heads = 2;
  x.batch = 3;
  x.threads = 5;
  x.block_q = 32;
  x.block_k = 16;
  x.tile_mode = "partial";
  x.executor = Executor::Textbook;
  x.inputs = "npy:/tmp/in";
  x.seed = 12345678901234ull;
  LayoutFigures l;
  l.allowed_pairs = 120000;
  l.computed_pairs = 150000;
  l.kept_tiles = 11;
  l.full_tiles = 4;
  l.partial_tiles = 7;
  l.layout_bytes = 999;
  l.distinct_head_layouts = 3;
  l.scanned = true;
  l.scanned_part = "every_kth_key(3)";
  l.build_seconds = 0.125;
  m.layout = l;
  Prediction p;
  p.useful_flops = 1.5e9;
  p.computed_flops = 2.5e9;
  p.bytes_read = 3.25e6;
  p.bytes_written = 4.5e5;
  p.input_bytes = 601;
  p.output_bytes = 602;
  p.workspace_bytes = 603;
  p.memory_bytes = 604;
  p.seconds = 0.75;
  m.predicted = p;
  m.attention = AttentionTimes{2, {0.5, 0.25, 1.0, 0.125}};
  m.resources.workspace_bytes = 701;
  m.resources.peak_rss_bytes = 702;
  m.resources.wall_seconds = 7.5;
  m.resources.tasks = 703;
  m.resources.split_rows = 704;
  m.resources.threads_used = 4;
  m.check = CheckFigures{1e-6, 2e-5, 3e-7, 4e-6, false, 0.0625};
  m.fidelity = FidelityFigures{0.0125, 0.875, 0.5, "planted", "causal", 0.9375, 0.625, 0.75};
  m.saved = "/tmp/saved";
  return m;
}

void require_same(const Measurement& a, const Measurement& b) {
  CHECK(a.source == b.source);
  CHECK(a.key == b.key);
  CHECK(a.index == b.index);
  CHECK(a.status == b.status);
  CHECK(a.message == b.message);
  const MeasuredAxes &x = a.axes, &y = b.axes;
  CHECK(x.pattern == y.pattern);
  CHECK(x.spec == y.spec);
  CHECK(x.n == y.n);
  CHECK(x.nk == y.nk);
  CHECK(x.head_dim == y.head_dim);
  CHECK(x.head_dim_v == y.head_dim_v);
  CHECK(x.heads == y.heads);
  CHECK(x.kv_heads == y.kv_heads);
  CHECK(x.batch == y.batch);
  CHECK(x.threads == y.threads);
  CHECK(x.block_q == y.block_q);
  CHECK(x.block_k == y.block_k);
  CHECK(x.tile_mode == y.tile_mode);
  CHECK(x.executor == y.executor);
  CHECK(x.inputs == y.inputs);
  CHECK(x.seed == y.seed);
  REQUIRE(a.layout.has_value() == b.layout.has_value());
  if (a.layout) {
    CHECK(a.layout->allowed_pairs == b.layout->allowed_pairs);
    CHECK(a.layout->computed_pairs == b.layout->computed_pairs);
    CHECK(a.layout->kept_tiles == b.layout->kept_tiles);
    CHECK(a.layout->full_tiles == b.layout->full_tiles);
    CHECK(a.layout->partial_tiles == b.layout->partial_tiles);
    CHECK(a.layout->layout_bytes == b.layout->layout_bytes);
    CHECK(a.layout->distinct_head_layouts == b.layout->distinct_head_layouts);
    CHECK(a.layout->scanned == b.layout->scanned);
    CHECK(a.layout->scanned_part == b.layout->scanned_part);
    CHECK(a.layout->build_seconds == b.layout->build_seconds);
  }
  REQUIRE(a.predicted.has_value() == b.predicted.has_value());
  if (a.predicted) {
    CHECK(a.predicted->useful_flops == b.predicted->useful_flops);
    CHECK(a.predicted->computed_flops == b.predicted->computed_flops);
    CHECK(a.predicted->bytes_read == b.predicted->bytes_read);
    CHECK(a.predicted->bytes_written == b.predicted->bytes_written);
    CHECK(a.predicted->input_bytes == b.predicted->input_bytes);
    CHECK(a.predicted->output_bytes == b.predicted->output_bytes);
    CHECK(a.predicted->workspace_bytes == b.predicted->workspace_bytes);
    CHECK(a.predicted->memory_bytes == b.predicted->memory_bytes);
    CHECK(a.predicted->seconds == b.predicted->seconds);
  }
  REQUIRE(a.attention.has_value() == b.attention.has_value());
  if (a.attention) {
    CHECK(a.attention->warmup == b.attention->warmup);
    CHECK(a.attention->seconds == b.attention->seconds);
  }
  CHECK(a.resources.workspace_bytes == b.resources.workspace_bytes);
  CHECK(a.resources.peak_rss_bytes == b.resources.peak_rss_bytes);
  CHECK(a.resources.wall_seconds == b.resources.wall_seconds);
  CHECK(a.resources.tasks == b.resources.tasks);
  CHECK(a.resources.split_rows == b.resources.split_rows);
  CHECK(a.resources.threads_used == b.resources.threads_used);
  REQUIRE(a.check.has_value() == b.check.has_value());
  if (a.check) {
    CHECK(a.check->max_abs_error == b.check->max_abs_error);
    CHECK(a.check->max_rel_error == b.check->max_rel_error);
    CHECK(a.check->rel_l2_error == b.check->rel_l2_error);
    CHECK(a.check->max_lse_error == b.check->max_lse_error);
    CHECK(a.check->finite == b.check->finite);
    CHECK(a.check->reference_seconds == b.check->reference_seconds);
  }
  REQUIRE(a.fidelity.has_value() == b.fidelity.has_value());
  if (a.fidelity) {
    CHECK(a.fidelity->rel_l2_error == b.fidelity->rel_l2_error);
    CHECK(a.fidelity->recall_mean == b.fidelity->recall_mean);
    CHECK(a.fidelity->recall_min == b.fidelity->recall_min);
    CHECK(a.fidelity->inputs == b.fidelity->inputs);
    CHECK(a.fidelity->baseline == b.fidelity->baseline);
    CHECK(a.fidelity->oracle_recall_mean == b.fidelity->oracle_recall_mean);
    CHECK(a.fidelity->oracle_recall_min == b.fidelity->oracle_recall_min);
    CHECK(a.fidelity->needle_hit == b.fidelity->needle_hit);
  }
  CHECK(a.saved == b.saved);
}

// Through text, as a file holds it.
Measurement round_trip(const Measurement& m) {
  return measurement_from_json(json::parse(to_json(m).dump()), "test");
}

std::string error_of(const json& j) {
  try {
    measurement_from_json(j, "runs.jsonl line 4");
  } catch (const spattn::UsageError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("Measurement: JSON round trip, every field", "[measurement]") {
  const Measurement m = full_record();
  require_same(round_trip(m), m);
  CHECK(to_json(m).dump() == to_json(round_trip(m)).dump());  // same record, same bytes

  SECTION("optional groups and fields absent") {
    Measurement e = m;
    e.status = Status::Skipped;
    e.layout.reset();
    e.predicted.reset();
    e.attention.reset();
    e.resources = Resources{};
    e.check.reset();
    e.fidelity.reset();
    e.saved.reset();
    e.axes.executor = Executor::Flash;
    const Measurement back = round_trip(e);
    require_same(back, e);
    const auto j = to_json(e);
    CHECK(j["layout"].is_null());
    CHECK(j["attention"].is_null());
    CHECK(j["resources"]["peak_rss_bytes"].is_null());
    CHECK(j["saved"].is_null());
  }
  SECTION("every status and source") {
    for (const char* name : {"ok", "skipped", "timeout", "crashed", "oom", "error"}) {
      Measurement s = m;
      s.status = *parse_status(name);
      CHECK(status_name(s.status) == name);
      CHECK(round_trip(s).status == s.status);
    }
    CHECK_FALSE(parse_status("OK"));
    for (const char* source : {"run", "stats", "sweep"}) {
      Measurement s = m;
      s.source = source;
      CHECK(round_trip(s).source == source);
    }
  }
  SECTION("non-finite check figures are written as null and read back as NaN") {
    Measurement s = m;
    s.check->max_abs_error = std::nan("");
    s.check->rel_l2_error = HUGE_VAL;
    const auto j = to_json(s);
    CHECK(j["check"]["max_abs_error"].is_null());
    CHECK(j["check"]["rel_l2_error"].is_null());
    const Measurement back = round_trip(s);
    CHECK(std::isnan(back.check->max_abs_error));
    CHECK(std::isnan(back.check->rel_l2_error));
    CHECK(back.check->max_lse_error == s.check->max_lse_error);
  }
}

TEST_CASE("Measurement: the fixed key order and the schema number", "[measurement]") {
  const auto j = to_json(full_record());
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"schema", "kind", "source", "key", "index", "status",
                                         "message", "axes", "layout", "predicted", "attention",
                                         "resources", "check", "fidelity", "saved"});
  CHECK(j["schema"] == 2);
  CHECK(j["kind"] == "point");
}

TEST_CASE("Measurement: derived figures against hand-computed values", "[measurement]") {
  Measurement m = full_record();
  // allowed 120000 over batch 3 x heads 6 x n 300 x nk 500 = 2,700,000 pairs.
  REQUIRE(m.density());
  CHECK(*m.density() == Approx(120000.0 / 2700000.0));
  CHECK(*m.efficiency() == Approx(0.8));  // 120000 / 150000
  // Times 0.5, 0.25, 1.0, 0.125: sorted 0.125 0.25 0.5 1.0, median (0.25 + 0.5) / 2.
  CHECK(m.attention->median() == 0.375);
  CHECK(m.attention->min() == 0.125);
  CHECK(m.attention->max() == 1.0);
  CHECK(AttentionTimes{0, {3.0, 1.0, 2.0}}.median() == 2.0);
  // Useful: 4 * d 48 * 120000 = 23.04e6 flops in 0.375 s; computed: 4 * 48 * 150000 = 28.8e6.
  CHECK(*m.useful_gflops() == Approx(23.04e6 / 0.375 / 1e9));
  CHECK(*m.computed_gflops() == Approx(28.8e6 / 0.375 / 1e9));

  const auto j = to_json(m);
  CHECK(j["layout"]["density"].get<double>() == Approx(120000.0 / 2700000.0));
  CHECK(j["layout"]["efficiency"].get<double>() == Approx(0.8));
  CHECK(j["attention"]["median"].get<double>() == 0.375);
  CHECK(j["attention"]["repeats"] == 4);
  CHECK(j["attention"]["useful_gflops"].get<double>() == Approx(23.04e6 / 0.375 / 1e9));

  SECTION("an empty layout has no efficiency, in the record as in the type") {
    m.layout->allowed_pairs = m.layout->computed_pairs = 0;
    CHECK_FALSE(m.efficiency());
    CHECK(*m.density() == 0.0);
    CHECK(to_json(m)["layout"]["efficiency"].is_null());
  }
  SECTION("no layout or no times: no derived figures") {
    Measurement s = m;
    s.attention.reset();
    CHECK_FALSE(s.useful_gflops());
    s.layout.reset();
    CHECK_FALSE(s.density());
    CHECK_FALSE(s.efficiency());
    CHECK(to_json(s)["layout"].is_null());
  }
  SECTION("derived fields in a file are recomputed, not trusted") {
    auto k = json::parse(to_json(m).dump());
    k["layout"]["efficiency"] = 0.1;
    k["attention"]["median"] = 99.0;
    const Measurement back = measurement_from_json(k, "test");
    CHECK(*back.efficiency() == Approx(0.8));
    CHECK(back.attention->median() == 0.375);
  }
}

TEST_CASE("Measurement: a schema-less results.jsonl record converts field by field",
          "[measurement]") {
  const json old = json::parse(R"({"kind":"point","key":"pattern=causal;n=256","index":3,
    "axes":{"pattern":"causal","spec":"causal","n":256,"head_dim":32,"heads":4,"kv_heads":2,
            "batch":2,"threads":1,"block":64,"tile_mode":"partial","inputs":"synthetic"},
    "status":"ok","message":"",
    "predicted":{"allowed_pairs":263168,"computed_pairs":327680,"useful_flops":33685504.0,
                 "computed_flops":41943040.0,"memory_bytes":900000,"seconds":0.001},
    "peak_rss_bytes":5000000,"wall_seconds":0.5,
    "measure":{"build_seconds":0.002,
               "attention_seconds":{"median":0.02,"min":0.01,"max":0.03,"all":[0.03,0.01,0.02]},
               "allowed_pairs":263168,"computed_pairs":327680,"density":0.5,"efficiency":0.8,
               "useful_gflops":1.0,"computed_gflops":2.0,"kept_tiles":80,"full_tiles":48,
               "partial_tiles":32,"workspace_bytes":4096,"layout_bytes":777,"input_bytes":262144,
               "check":{"max_abs_error":1e-6,"rel_l2_error":2e-7,"max_lse_error":3e-6},
               "fidelity":{"rel_l2_error":0.25,"recall_mean":0.75,"recall_min":0.5,
                           "inputs":"synthetic","baseline":"dense"}}})");
  const Measurement m = measurement_from_json(old, "old.jsonl line 2");
  CHECK(m.source == "sweep");
  CHECK(m.key == "pattern=causal;n=256");
  CHECK(m.index == 3);
  CHECK(m.status == Status::Ok);
  CHECK(m.message.empty());
  CHECK(m.axes.pattern == "causal");
  CHECK(m.axes.spec == "causal");
  CHECK(m.axes.n == 256);
  CHECK(m.axes.nk == 256);
  CHECK(m.axes.head_dim == 32);
  CHECK(m.axes.heads == 4);
  CHECK(m.axes.kv_heads == 2);
  CHECK(m.axes.batch == 2);
  CHECK(m.axes.threads == 1);
  CHECK(m.axes.block_q == 64);
  CHECK(m.axes.block_k == 64);
  CHECK(m.axes.tile_mode == "partial");
  CHECK(m.axes.executor == Executor::Flash);
  CHECK(m.axes.inputs == "synthetic");
  CHECK(m.axes.seed == 0);
  REQUIRE(m.layout);
  CHECK(m.layout->allowed_pairs == 263168);
  CHECK(m.layout->computed_pairs == 327680);
  CHECK(m.layout->kept_tiles == 80);
  CHECK(m.layout->full_tiles == 48);
  CHECK(m.layout->partial_tiles == 32);
  CHECK(m.layout->layout_bytes == 777);
  CHECK(m.layout->build_seconds == 0.002);
  REQUIRE(m.predicted);
  CHECK(m.predicted->useful_flops == 33685504.0);
  CHECK(m.predicted->computed_flops == 41943040.0);
  CHECK(m.predicted->memory_bytes == 900000);
  CHECK(m.predicted->seconds == 0.001);
  CHECK(m.predicted->input_bytes == 262144);
  REQUIRE(m.attention);
  CHECK(m.attention->seconds == std::vector<double>{0.03, 0.01, 0.02});
  CHECK(m.attention->median() == 0.02);
  CHECK(m.resources.peak_rss_bytes == 5000000);
  CHECK(m.resources.wall_seconds == 0.5);
  CHECK(m.resources.workspace_bytes == 4096);
  REQUIRE(m.check);
  CHECK(m.check->max_abs_error == 1e-6);
  CHECK(m.check->rel_l2_error == 2e-7);
  CHECK(m.check->max_lse_error == 3e-6);
  CHECK(std::isnan(m.check->max_rel_error));  // not recorded by schema 1
  CHECK(m.check->finite);
  REQUIRE(m.fidelity);
  CHECK(m.fidelity->rel_l2_error == 0.25);
  CHECK(m.fidelity->recall_mean == 0.75);
  CHECK(m.fidelity->recall_min == 0.5);
  CHECK(m.fidelity->baseline == "dense");
  CHECK_FALSE(m.saved);
  // Derived figures come from the counts: 263168 / (2 * 4 * 256 * 256), 263168 / 327680.
  CHECK(*m.density() == Approx(263168.0 / 524288.0));
  CHECK(*m.efficiency() == Approx(263168.0 / 327680.0));

  SECTION("a skipped point without measure, kv_heads 0 meaning heads") {
    json s = old;
    s.erase("measure");
    s.erase("peak_rss_bytes");
    s.erase("wall_seconds");
    s["status"] = "skipped";
    s["message"] = "predicted memory too large";
    s["axes"]["kv_heads"] = 0;
    const Measurement k = measurement_from_json(s, "old");
    CHECK(k.status == Status::Skipped);
    CHECK(k.message == "predicted memory too large");
    CHECK(k.axes.kv_heads == 4);
    CHECK_FALSE(k.layout);
    CHECK_FALSE(k.attention);
    CHECK(k.predicted);
    CHECK_FALSE(k.resources.peak_rss_bytes);
  }
}

TEST_CASE("Measurement: bad fields are refused with where, the field and what it must be",
          "[measurement]") {
  const json good = json::parse(to_json(full_record()).dump());
  auto with = [&](auto edit) {
    json j = good;
    edit(j);
    return error_of(j);
  };
  CHECK(error_of(good) == "(accepted)");
  CHECK(with([](json& j) { j["axes"]["n"] = "300"; }) ==
        "runs.jsonl line 4: axes.n must be an integer >= 0, found \"300\"");
  CHECK(with([](json& j) { j["layout"]["kept_tiles"] = -2; }) ==
        "runs.jsonl line 4: layout.kept_tiles must be an integer >= 0, found -2");
  CHECK(with([](json& j) { j["attention"]["seconds"][2] = "fast"; }) ==
        "runs.jsonl line 4: attention.seconds[2] must be a number >= 0, found \"fast\"");
  CHECK(with([](json& j) { j["attention"]["repeats"] = 3; }) ==
        "runs.jsonl line 4: attention.repeats must be the number of seconds (4), found 3");
  CHECK(with([](json& j) { j["status"] = "done"; }) ==
        "runs.jsonl line 4: status must be one of ok, skipped, timeout, crashed, oom, error, "
        "found \"done\"");
  CHECK(with([](json& j) { j["axes"]["executor"] = "cuda"; }) ==
        "runs.jsonl line 4: axes.executor must be one of flash, textbook, found \"cuda\"");
  CHECK(with([](json& j) { j["schema"] = 3; }) ==
        "runs.jsonl line 4: schema 3 is newer than this spattn reads (schema 2 and earlier): "
        "update spattn");
  CHECK(with([](json& j) { j["schema"] = "2"; }) ==
        "runs.jsonl line 4: schema must be an integer >= 1, found \"2\"");
  CHECK(with([](json& j) { j.erase("key"); }) ==
        "runs.jsonl line 4: key must be a string, found nothing");
  CHECK(with([](json& j) { j["predicted"] = 5; }) ==
        "runs.jsonl line 4: predicted must be an object or null, found 5");
  CHECK(with([](json& j) { j["resources"]["peak_rss_bytes"] = 1.5; }) ==
        "runs.jsonl line 4: resources.peak_rss_bytes must be an integer >= 0, found 1.5");
  CHECK(with([](json& j) { j["check"]["finite"] = 1; }) ==
        "runs.jsonl line 4: check.finite must be true or false, found 1");
  CHECK(with([](json& j) { j["axes"]["seed"] = -1; }) ==
        "runs.jsonl line 4: axes.seed must be an integer >= 0, found -1");
  CHECK(with([](json& j) { j["axes"]["tile_mode"] = "full"; }) ==
        "runs.jsonl line 4: axes.tile_mode must be \"auto\" or \"partial\", found \"full\"");
  CHECK(with([](json& j) { j["axes"] = nullptr; }) ==
        "runs.jsonl line 4: axes must be an object, found null");
  CHECK(error_of(json::array()) ==
        "runs.jsonl line 4: a measurement record must be a JSON object, found []");
  json old = good;
  old.erase("schema");
  old["axes"]["block"] = 64;
  old["status"] = "ok";
  old["measure"] = {{"build_seconds", 0.1}};
  CHECK(error_of(old) ==
        "runs.jsonl line 4: measure.allowed_pairs must be an integer >= 0, "
        "found nothing");
  json old_null_axes = old;
  old_null_axes["axes"] = nullptr;
  CHECK(error_of(old_null_axes) == "runs.jsonl line 4: axes must be an object, found null");
}
