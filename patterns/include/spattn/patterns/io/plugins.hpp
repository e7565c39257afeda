#pragma once
// Loading pattern plugins (shared libraries defining SPATTN_PLUGIN, spattn/patterns/plugin.hpp)
// into a registry. The host program must export the spattn symbols the plugin calls (the spattn
// CLI is linked with ENABLE_EXPORTS and the whole spattn_patterns library).
#include <string>
#include <vector>

#include "spattn/patterns/registry.hpp"

namespace spattn {

// Name of the environment variable holding plugins to load, separated by ':'.
inline constexpr const char* kPluginsEnvironmentVariable = "SPATTN_PLUGINS";

// Loads the shared library at `path` (dlopen, RTLD_NOW | RTLD_LOCAL; never unloaded) and adds
// the patterns its entry point registers to `registry`, recorded with the library's path as
// their origin. A path loaded before (same file) is skipped. Throws UsageError naming the path
// when the file is missing or not a loadable library (with the loader's message), lacks an entry
// point, was built for another kPluginApiVersion, registers no pattern, or registers a name
// already taken (naming the built-in or the plugin that holds it). Nothing is added on error.
void load_plugin(const std::string& path, Registry& registry = Registry::global());

// The paths listed in `value` (the SPATTN_PLUGINS format: separated by ':', empty entries
// skipped).
std::vector<std::string> split_plugin_list(const std::string& value);

// Absolute paths of the plugins loaded so far in this process, in load order.
const std::vector<std::string>& loaded_plugins();

}  // namespace spattn
