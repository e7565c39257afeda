// The text form of a cache policy: parse_cache_policy and CachePolicy::spec. Kept apart from
// the policies themselves so that the experiment-file loader (and its fuzz target) can parse
// and print a policy without the cache.
#include <fmt/format.h>

#include <cctype>
#include <exception>
#include <string>
#include <vector>

#include "spattn/attention/kvcache/policy.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn {

std::string CachePolicy::spec() const {
  switch (kind) {
    case CachePolicyKind::Full:
      return "full";
    case CachePolicyKind::Streaming:
      return fmt::format("streaming({}, {})", sink, recent);
    case CachePolicyKind::Quest:
      return fmt::format("quest({}, {})", page, budget);
    case CachePolicyKind::H2O:
      return fmt::format("h2o({}, {})", heavy, recent);
    case CachePolicyKind::SnapKV:
      return fmt::format("snapkv({}, {}, {})", window, capacity, pool);
  }
  return "?";
}

CachePolicy parse_cache_policy(std::string_view text) {
  const std::string t(text);
  const auto open = t.find('(');
  std::string name = t.substr(0, open);
  while (!name.empty() && std::isspace(static_cast<unsigned char>(name.back()))) name.pop_back();
  std::vector<std::int64_t> args;
  const char* usage =
      "allowed: full, streaming(sink, recent), quest(page, budget), h2o(heavy, recent), "
      "snapkv(window, capacity, pool)";
  if (open != std::string::npos) {
    const auto close = t.rfind(')');
    if (close == std::string::npos || close < open)
      throw UsageError(fmt::format("cache policy {}: missing ')' ({})", quoted(text), usage));
    std::string body = t.substr(open + 1, close - open - 1);
    std::size_t p = 0;
    while (p < body.size()) {
      const auto comma = body.find(',', p);
      std::string item = body.substr(p, comma == std::string::npos ? std::string::npos : comma - p);
      item.erase(0, item.find_first_not_of(" \t"));
      item.erase(item.find_last_not_of(" \t") + 1);
      std::size_t used = 0;
      std::int64_t v = 0;
      try {
        v = std::stoll(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (item.empty() || used != item.size())
        throw UsageError(fmt::format("cache policy {}: argument {} is not an integer ({})",
                                     quoted(text), quoted(item), usage));
      args.push_back(v);
      if (comma == std::string::npos) break;
      p = comma + 1;
    }
  }
  CachePolicy c;
  auto need = [&](std::size_t n) {
    if (args.size() != n)
      throw UsageError(fmt::format("cache policy {}: {} takes {} arguments, got {} ({})",
                                   quoted(text), name, n, args.size(), usage));
  };
  auto positive = [&](std::int64_t v, const char* what) {
    if (v < 1)
      throw UsageError(fmt::format("cache policy {}: {} = {} must be >= 1", quoted(text), what, v));
  };
  if (name == "full") {
    need(0);
  } else if (name == "streaming") {
    need(2);
    c.kind = CachePolicyKind::Streaming;
    c.sink = args[0];
    c.recent = args[1];
    if (c.sink < 0)
      throw UsageError(
          fmt::format("cache policy {}: sink = {} must be >= 0", quoted(text), c.sink));
    positive(c.recent, "recent");
  } else if (name == "quest") {
    need(2);
    c.kind = CachePolicyKind::Quest;
    c.page = args[0];
    c.budget = args[1];
    positive(c.page, "page");
    if (c.budget < c.page)
      throw UsageError(
          fmt::format("cache policy {}: budget = {} tokens is less than one page "
                      "of {} (budget must be >= page)",
                      quoted(text), c.budget, c.page));
  } else if (name == "h2o") {
    need(2);
    c.kind = CachePolicyKind::H2O;
    c.heavy = args[0];
    c.recent = args[1];
    positive(c.heavy, "heavy");
    positive(c.recent, "recent");
  } else if (name == "snapkv") {
    need(3);
    c.kind = CachePolicyKind::SnapKV;
    c.window = args[0];
    c.capacity = args[1];
    c.pool = args[2];
    positive(c.window, "window");
    positive(c.pool, "pool");
    if (c.capacity <= c.window)
      throw UsageError(fmt::format("cache policy {}: capacity = {} must exceed window = {}",
                                   quoted(text), c.capacity, c.window));
    if (c.pool % 2 == 0)
      throw UsageError(fmt::format("cache policy {}: pool = {} must be odd", quoted(text), c.pool));
  } else {
    throw UsageError(fmt::format("unknown cache policy {} ({})", quoted(text), usage));
  }
  return c;
}

}  // namespace spattn
