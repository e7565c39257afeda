#pragma once
// The plugin interface: a shared library that registers patterns with spattn at run time
// (`spattn --plugin libmine.so ...`, SPATTN_PLUGINS, or `plugins = [...]` in an experiment file;
// patterns/README.md, "Plugins"). A plugin defines its entry point with SPATTN_PLUGIN:
//
//   #include "spattn/patterns/plugin.hpp"
//   SPATTN_PLUGIN(registry) {
//     registry.add({"kth", {...}, "summary", "rule", "convention", "kth(16)", factory});
//   }
//
// which exports two C symbols: spattn_plugin_api_version() (the kPluginApiVersion the plugin
// was compiled against) and spattn_plugin_register(Registry&). The loader refuses a library
// whose version differs from its own, and a pattern whose name is already taken.
#include "spattn/patterns/registry.hpp"

namespace spattn {

// Raised whenever the Pattern interface, the Registry or PatternInfo change in a way that a
// compiled plugin would misread; a plugin must then be rebuilt against the new headers.
inline constexpr int kPluginApiVersion = 2;

}  // namespace spattn

// The exported entry points (names as the loader looks them up).
#define SPATTN_PLUGIN_VERSION_SYMBOL "spattn_plugin_api_version"
#define SPATTN_PLUGIN_REGISTER_SYMBOL "spattn_plugin_register"

// Defines a plugin's entry point: SPATTN_PLUGIN(r) { r.add(...); }. `r` is a Registry that holds
// only this plugin's patterns while it runs; the loader then adds them to Registry::global().
#define SPATTN_PLUGIN(registry)                                                       \
  extern "C" __attribute__((visibility("default"))) int spattn_plugin_api_version() { \
    return ::spattn::kPluginApiVersion;                                               \
  }                                                                                   \
  extern "C" __attribute__((visibility("default"))) void spattn_plugin_register(      \
      ::spattn::Registry& registry)
