// The registry of report layouts: every file of experiments/src/report/layouts/ is a registered
// layout (the directory listing is the oracle), each renders its own body, and an unknown layout
// falls back to the default with a note.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "spattn/experiments/measurement.hpp"
#include "spattn/experiments/report.hpp"
#include "spattn/experiments/report_layouts.hpp"
#include "temp_dir.hpp"

using nlohmann::json;
using spattn::test::TempDir;
namespace fs = std::filesystem;

namespace {

// The layout files in the source tree, found from this test's own path: __FILE__ is absolute, or
// relative to the build tree's root (Ninja), the parent of this binary's directory.
std::set<std::string> layout_files() {
  const fs::path rel =
      fs::path(__FILE__).parent_path().parent_path() / "experiments/src/report/layouts";
  const fs::path build_root = fs::read_symlink("/proc/self/exe").parent_path().parent_path();
  const fs::path dir = rel.is_absolute() ? rel : build_root / rel;
  INFO(dir);
  REQUIRE(fs::is_directory(dir));
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".cpp") names.insert(e.path().stem().string());
  return names;
}

json point(int index, const std::string& pattern, std::int64_t n, double seconds,
           std::int64_t pairs) {
  spattn::experiments::Measurement m;
  m.key = pattern + "/" + std::to_string(n);
  m.index = index;
  m.axes.pattern = m.axes.spec = pattern;
  m.axes.n = m.axes.nk = n;
  spattn::experiments::LayoutFigures l;
  l.allowed_pairs = l.computed_pairs = pairs;
  m.layout = l;
  m.attention = spattn::experiments::AttentionTimes{0, {seconds}};
  m.resources.peak_rss_bytes = 1000 * n;
  return json::parse(spattn::experiments::to_json(m).dump());
}

// table.md of a small dense + window sweep laid out by `layout`, without its "Run ..." line.
std::string table_for(const std::string& layout) {
  const TempDir dir("spattn_report_layouts");
  std::ofstream out(dir.path() / "results.jsonl", std::ios::binary);
  out << json{{"kind", "header"}, {"experiment", "t"}, {"report", {{"layout", layout}}}}.dump()
      << "\n";
  int i = 0;
  for (std::int64_t n : {1024, 2048, 4096}) {
    const double N = static_cast<double>(n);
    out << point(i++, "dense", n, 1e-10 * N * N, 8 * n * n).dump() << "\n";
    out << point(i++, "window 64", n, 1e-7 * N, 8 * 64 * n).dump() << "\n";
    out << point(i++, "window 128", n, 2e-7 * N, 8 * 128 * n).dump() << "\n";
  }
  out.close();
  spattn::experiments::write_reports(dir.path());
  std::ifstream in(dir.path() / "table.md", std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string without_run_line(const std::string& md) {
  const auto at = md.find("Run ");
  REQUIRE(at != std::string::npos);
  return md.substr(0, at) + md.substr(md.find('\n', at));
}

}  // namespace

TEST_CASE("every layout file is a registered layout", "[report][layouts]") {
  const std::set<std::string> files = layout_files();
  const std::vector<std::string> names = spattn::experiments::report_layout_names();
  CHECK(std::set<std::string>(names.begin(), names.end()) == files);
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(files.count(spattn::experiments::kDefaultReportLayout) == 1);
  // The six layouts of the paper tables at least.
  for (const char* name :
       {"scaling", "lra_table2", "flash_scaling", "density", "longformer_fig1", "audit"})
    CHECK(files.count(name) == 1);
  for (const auto& l : spattn::experiments::report_layouts()) {
    INFO(l.name);
    CHECK(!l.description.empty());
    CHECK(l.description.find('\n') == std::string::npos);
  }
}

TEST_CASE("each layout renders its own body", "[report][layouts]") {
  std::vector<std::string> bodies;
  for (const std::string& name : spattn::experiments::report_layout_names()) {
    const std::string md = table_for(name);
    INFO(name << "\n" << md);
    CHECK(md.find("layout " + name + " ") != std::string::npos);
    CHECK(md.find("Unknown report layout") == std::string::npos);
    bodies.push_back(without_run_line(md));
  }
  // Same data, different layouts: no two bodies are the same.
  for (std::size_t a = 0; a < bodies.size(); ++a)
    for (std::size_t b = a + 1; b < bodies.size(); ++b) CHECK(bodies[a] != bodies[b]);
}

TEST_CASE("an unknown layout is shown as the default with a note", "[report][layouts]") {
  const std::string md = table_for("no_such_layout");
  INFO(md);
  CHECK(md.find("Unknown report layout \"no_such_layout\": shown as \"scaling\"") !=
        std::string::npos);
  CHECK(without_run_line(md).find("## Time, speed and memory per N") != std::string::npos);
  // The body is the default layout's, byte for byte.
  const std::string scaling = without_run_line(table_for("scaling"));
  const std::string note = "Unknown report layout \"no_such_layout\": shown as \"scaling\".\n\n";
  std::string unknown = without_run_line(md);
  unknown.erase(unknown.find(note), note.size());
  CHECK(unknown == scaling);
}
