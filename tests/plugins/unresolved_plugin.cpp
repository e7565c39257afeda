// A plugin for the plugin tests that calls a function nobody defines: loading it must fail
// with the loader's message rather than crash later.
#include "spattn/patterns/plugin.hpp"

void spattn_test_function_defined_nowhere();

SPATTN_PLUGIN(registry) {
  (void)registry;
  spattn_test_function_defined_nowhere();
}
