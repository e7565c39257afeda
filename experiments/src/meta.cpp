// meta.json for a sweep directory.
#include "spattn/experiments/meta.hpp"

#include <fmt/format.h>
#include <oneapi/tbb/info.h>
#include <oneapi/tbb/version.h>
#include <toml++/impl/version.h>
#include <unistd.h>

#include <Eigen/Core>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "spattn/experiments/process.hpp"

// Set by experiments/CMakeLists.txt for this file.
#ifndef SPATTN_SOURCE_DIR
#define SPATTN_SOURCE_DIR ""
#endif
#ifndef SPATTN_GIT_REVISION
#define SPATTN_GIT_REVISION ""
#endif
#ifndef SPATTN_CXX_COMPILER_ID
#define SPATTN_CXX_COMPILER_ID ""
#endif
#ifndef SPATTN_CXX_COMPILER_VERSION
#define SPATTN_CXX_COMPILER_VERSION ""
#endif
#ifndef SPATTN_CXX_FLAGS
#define SPATTN_CXX_FLAGS ""
#endif
#ifndef SPATTN_BUILD_TYPE
#define SPATTN_BUILD_TYPE ""
#endif

namespace spattn::experiments {
namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// The first executable `name` on PATH, or "".
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = fmt::format("{}/{}", dir, name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Output of `git -C SOURCE_DIR args...`, or "" when git or the checkout is not there.
std::string git(const std::vector<std::string>& args) {
  const std::string exe = find_on_path("git");
  if (exe.empty() || std::string(SPATTN_SOURCE_DIR).empty()) return "";
  ChildOptions o;
  o.argv = {exe, "-C", SPATTN_SOURCE_DIR};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  o.timeout_seconds = 10;
  try {
    const ChildResult r = run_child(o);
    if (r.end != ChildResult::End::Exited || r.exit_code != 0) return "";
    return r.out;
  } catch (const std::exception&) {
    return "";
  }
}

nlohmann::json git_info() {
  nlohmann::json j;
  const std::string head = trim(git({"rev-parse", "HEAD"}));
  if (!head.empty()) {
    j["revision"] = head;
    j["source"] = "runtime";
    j["dirty"] = !trim(git({"status", "--porcelain", "--untracked-files=no"})).empty();
  } else {
    j["revision"] = SPATTN_GIT_REVISION;
    j["source"] = "configure";
    j["dirty"] = nullptr;  // unknown
  }
  j["source_dir"] = SPATTN_SOURCE_DIR;
  return j;
}

nlohmann::json cpu_info() {
  nlohmann::json j{{"model", ""}, {"flags", ""}};
  std::ifstream in("/proc/cpuinfo");
  int processors = 0;
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (key == "processor") ++processors;
    if (processors > 1) continue;  // the first processor describes them all on this hardware
    if (key == "model name") j["model"] = value;
    if (key == "flags") j["flags"] = value;
  }
  j["logical_cpus"] = ::sysconf(_SC_NPROCESSORS_ONLN);
  return j;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

}  // namespace

nlohmann::json build_meta(const Experiment& e, const std::vector<std::string>& command_line,
                          const std::string& start_time) {
  nlohmann::json m;
  m["experiment"] = e.name;
  m["start_time"] = start_time;
  m["host"] = host_name();
  m["command_line"] = command_line;
  m["git"] = git_info();
  m["compiler"] = {{"id", SPATTN_CXX_COMPILER_ID},
                   {"version", SPATTN_CXX_COMPILER_VERSION},
                   {"build_type", SPATTN_BUILD_TYPE},
                   {"flags", SPATTN_CXX_FLAGS}};
  m["cpu"] = cpu_info();
  m["threads"] = tbb::info::default_concurrency();
  m["libraries"] = {
      {"oneTBB", TBB_VERSION_STRING},
      {"fmt",
       fmt::format("{}.{}.{}", FMT_VERSION / 10000, FMT_VERSION / 100 % 100, FMT_VERSION % 100)},
      {"Eigen",
       fmt::format("{}.{}.{}", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION)},
      {"toml++", fmt::format("{}.{}.{}", TOML_LIB_MAJOR, TOML_LIB_MINOR, TOML_LIB_PATCH)},
      {"nlohmann_json", fmt::format("{}.{}.{}", NLOHMANN_JSON_VERSION_MAJOR,
                                    NLOHMANN_JSON_VERSION_MINOR, NLOHMANN_JSON_VERSION_PATCH)}};
  // Every pattern plugin loaded (--plugin, SPATTN_PLUGINS, the file's `plugins`), absolute paths.
  m["plugins"] = run_plugins(e);
  m["experiment_file"] = e.source_path.string();
  m["experiment_toml"] = e.source_text;
  return m;
}

void write_meta(const std::filesystem::path& path, const nlohmann::json& meta) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << meta.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace spattn::experiments
