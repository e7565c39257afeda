#pragma once
// Shards of a sweep: `spattn sweep FILE --shard i/n` runs the i-th of n disjoint parts of the
// experiment's points, so that n processes (e.g. the tasks of a Slurm job array) share a sweep.
#include <string>
#include <vector>

namespace spattn::experiments {

// The i-th of n parts (1 <= index <= count).
struct ShardSpec {
  int index = 1;
  int count = 1;
  std::string text() const;  // "i/n"
  bool operator==(const ShardSpec&) const = default;
};

// Parses "i/n" (decimal, 1 <= i <= n <= 100000); throws UsageError naming `text`, `where` and
// the allowed form.
ShardSpec parse_shard(const std::string& text, const std::string& where = "--shard");

// One point as the partition sees it: its key and its predicted cost (seconds; 0 for a point
// that will not run).
struct ShardItem {
  std::string key;
  double cost = 0;
};

// The shard (1..count) of each item, in the items' order. Deterministic and independent of the
// items' order: longest predicted cost first (ties by key), each to the shard with the least
// cost so far (ties: the lowest shard, then the one with fewer points), so that every key is in
// exactly one shard and the shards' predicted times are balanced (the greedy "longest
// processing time" rule: within 4/3 of the best possible maximum). Keys must be distinct.
std::vector<int> assign_shards(const std::vector<ShardItem>& items, int count);

}  // namespace spattn::experiments
