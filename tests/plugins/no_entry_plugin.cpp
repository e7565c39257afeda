// A shared library for the plugin tests with no spattn entry point.
extern "C" __attribute__((visibility("default"))) int some_other_library_function() {
  return 42;
}
