// A plugin for the plugin tests built for another plugin API version than the host's.
#include "spattn/patterns/plugin.hpp"

extern "C" __attribute__((visibility("default"))) int spattn_plugin_api_version() {
  return spattn::kPluginApiVersion + 1000;
}
extern "C" __attribute__((visibility("default"))) void spattn_plugin_register(spattn::Registry&) {}
