// Sharding a sweep's points (see shard.hpp).
#include "spattn/experiments/shard.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <numeric>

#include "spattn/patterns/error.hpp"

namespace spattn::experiments {
namespace {

// A decimal integer 1..100000, or -1.
int small_positive(const std::string& s) {
  if (s.empty() || s.size() > 6 ||
      !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  const int v = std::stoi(s);
  return v >= 1 && v <= 100000 ? v : -1;
}

}  // namespace

std::string ShardSpec::text() const {
  return fmt::format("{}/{}", index, count);
}

ShardSpec parse_shard(const std::string& text, const std::string& where) {
  const auto slash = text.find('/');
  const int i = slash == std::string::npos ? -1 : small_positive(text.substr(0, slash));
  const int n = slash == std::string::npos ? -1 : small_positive(text.substr(slash + 1));
  if (i < 0 || n < 0 || i > n)
    throw UsageError(fmt::format(
        "{}: '{}' is not a shard; write i/n with 1 <= i <= n <= 100000 (the i-th of n parts, "
        "e.g. 2/4)",
        where, text));
  return {i, n};
}

std::vector<int> assign_shards(const std::vector<ShardItem>& items, int count) {
  if (count < 1) throw UsageError(fmt::format("a sweep has at least 1 shard, not {}", count));
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (items[a].cost != items[b].cost) return items[a].cost > items[b].cost;
    return items[a].key < items[b].key;
  });
  std::vector<double> load(static_cast<std::size_t>(count), 0.0);
  std::vector<std::int64_t> points(static_cast<std::size_t>(count), 0);
  std::vector<int> shard(items.size(), 0);
  for (const std::size_t k : order) {
    std::size_t best = 0;
    for (std::size_t s = 1; s < load.size(); ++s)
      if (load[s] < load[best] || (load[s] == load[best] && points[s] < points[best])) best = s;
    load[best] += std::max(0.0, items[k].cost);
    ++points[best];
    shard[k] = static_cast<int>(best) + 1;
  }
  return shard;
}

}  // namespace spattn::experiments
