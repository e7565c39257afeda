#pragma once
// The registry the fuzz targets parse with: every built-in of Registry::global(), except that
// blocks(file=...) and deepspeed(file=...) do not read their files. A fuzzer must stay
// hermetic: it would otherwise open whatever path the input names (a FIFO blocks forever, a big
// file eats the memory limit), and results would depend on the machine. The stand-in validates the
// same parameters (it reuses the real ParamSpecs, so argument parsing is fuzzed as is) and prints
// exactly as the real blocks() does (patterns/src/builtin/blocks.cpp), so the canonical form of
// string arguments still round-trips through the lexer; it allows no pair.
#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <string>

#include "spattn/patterns/pattern.hpp"
#include "spattn/patterns/registry.hpp"

namespace spattn::fuzz {

class BlocksStandIn final : public Pattern {
 public:
  BlocksStandIn(std::string file, std::int64_t b) : file_(std::move(file)), b_(b) {}
  bool allows(const Geometry&, int, std::int64_t, std::int64_t) const override { return false; }
  std::string spec() const override {
    return fmt::format("blocks(file={}, block={})", to_string(ParamValue{file_}), b_);
  }

 private:
  std::string file_;
  std::int64_t b_;
};

// The same for deepspeed(file=...) (patterns/src/io/deepspeed_config.cpp), which reads a
// DeepSpeed config JSON: prints as the real one, allows no pair.
class DeepSpeedStandIn final : public Pattern {
 public:
  explicit DeepSpeedStandIn(std::string file) : file_(std::move(file)) {}
  bool allows(const Geometry&, int, std::int64_t, std::int64_t) const override { return false; }
  std::string spec() const override {
    return fmt::format("deepspeed(file={})", to_string(ParamValue{file_}));
  }

 private:
  std::string file_;
};

inline const Registry& fuzz_registry() {
  static const Registry* r = [] {
    auto* reg = new Registry;
    for (const PatternInfo* info : Registry::global().all()) {
      PatternInfo copy = *info;
      if (copy.name == "blocks")
        copy.make = [](const Args& a) -> PatternPtr {
          return std::make_shared<BlocksStandIn>(a.get_string("file"), a.get_int("block"));
        };
      if (copy.name == "deepspeed")
        copy.make = [](const Args& a) -> PatternPtr {
          return std::make_shared<DeepSpeedStandIn>(a.get_string("file"));
        };
      reg->add(std::move(copy));
    }
    return reg;
  }();
  return *r;
}

}  // namespace spattn::fuzz
