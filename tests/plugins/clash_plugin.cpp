// A plugin for the plugin tests that registers a name the built-ins hold ("sliding").
#include <memory>

#include "spattn/patterns/leaf.hpp"
#include "spattn/patterns/plugin.hpp"

namespace {
class Nothing final : public spattn::Leaf {
 public:
  bool allows(const spattn::Geometry&, int, std::int64_t, std::int64_t) const override {
    return false;
  }
  std::string spec() const override { return "sliding"; }
};
}  // namespace

SPATTN_PLUGIN(registry) {
  registry.add({"sliding", {}, "clash", "none", "test plugin", "sliding", [](const spattn::Args&) {
                  return std::make_shared<Nothing>();
                }});
}
