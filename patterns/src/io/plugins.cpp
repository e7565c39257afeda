// Pattern plugins: dlopen, the entry point's version check, and registration without clashes.
#include "spattn/patterns/io/plugins.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <filesystem>
#include <system_error>

#include "spattn/patterns/error.hpp"
#include "spattn/patterns/plugin.hpp"

namespace spattn {
namespace {

struct Loaded {
  std::vector<std::string> paths;      // absolute, in load order
  std::vector<std::string> canonical;  // the same files, resolved
};
Loaded& loaded() {
  static Loaded l;
  return l;
}

std::string loader_message() {
  const char* e = dlerror();
  return e ? e : "unknown error";
}

}  // namespace

void load_plugin(const std::string& path, Registry& registry) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (path.empty() || !fs::exists(st))
    throw UsageError(
        fmt::format("plugin '{}': no such file (a plugin is the path of a shared library, e.g. "
                    "build/libmypatterns.so)",
                    path));
  if (!fs::is_regular_file(st))
    throw UsageError(
        fmt::format("plugin '{}': not a regular file (a plugin is a shared library)", path));
  const std::string canonical = fs::canonical(path, ec).string();
  for (const std::string& c : loaded().canonical)
    if (c == canonical) return;

  // An absolute path: dlopen would search the library path for a bare file name.
  void* handle = dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    throw UsageError(fmt::format("plugin '{}' cannot be loaded: {}", path, loader_message()));
  using VersionFn = int (*)();
  using RegisterFn = void (*)(Registry&);
  auto version = reinterpret_cast<VersionFn>(dlsym(handle, SPATTN_PLUGIN_VERSION_SYMBOL));
  auto add = reinterpret_cast<RegisterFn>(dlsym(handle, SPATTN_PLUGIN_REGISTER_SYMBOL));
  if (!version || !add)
    throw UsageError(fmt::format(
        "plugin '{}' is not a spattn plugin: symbol '{}' not found (define the entry point with "
        "SPATTN_PLUGIN from spattn/patterns/plugin.hpp)",
        path, !version ? SPATTN_PLUGIN_VERSION_SYMBOL : SPATTN_PLUGIN_REGISTER_SYMBOL));
  const int v = version();
  if (v != kPluginApiVersion)
    throw UsageError(fmt::format(
        "plugin '{}' was built for plugin API version {}, this spattn has version {}: rebuild it "
        "against this spattn's headers",
        path, v, kPluginApiVersion));

  // Registered on the side first: nothing reaches `registry` unless every pattern fits.
  Registry own;
  try {
    add(own);
  } catch (const std::exception& e) {
    throw UsageError(
        fmt::format("plugin '{}': registering its patterns failed: {}", path, e.what()));
  }
  const std::vector<const PatternInfo*> mine = own.all();
  if (mine.empty()) throw UsageError(fmt::format("plugin '{}' registers no pattern", path));
  for (const PatternInfo* info : mine) {
    if (!registry.find(info->name)) continue;
    const std::string& holder = registry.origin(info->name);
    throw UsageError(fmt::format(
        "plugin '{}': pattern '{}' clashes with {}: rename the plugin's pattern", path, info->name,
        holder.empty() ? fmt::format("the built-in pattern '{}'", info->name)
                       : fmt::format("pattern '{}' of plugin '{}'", info->name, holder)));
  }
  for (const PatternInfo* info : mine) registry.add(*info, path);
  loaded().paths.push_back(fs::absolute(path, ec).lexically_normal().string());
  loaded().canonical.push_back(canonical);
}

std::vector<std::string> split_plugin_list(const std::string& value) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= value.size()) {
    const std::size_t end = std::min(value.find(':', start), value.size());
    if (end > start) out.push_back(value.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

const std::vector<std::string>& loaded_plugins() {
  return loaded().paths;
}

}  // namespace spattn
