#pragma once
// Counter-based random draws for seeded patterns: every draw is a pure function of its inputs
// (seed, head, row, ...), so layouts build in parallel, in any order, with identical results on
// every run and thread count.
#include <algorithm>
#include <cstdint>
#include <unordered_set>
#include <vector>

namespace spattn::builtin {

// splitmix64's finaliser: a bijective 64-bit mix with good avalanche.
inline std::uint64_t hash_mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A stream key from a list of counters: hash_key(a, b, c) = mix(mix(mix(a) ^ b) ^ c).
inline std::uint64_t hash_key(std::initializer_list<std::uint64_t> parts) {
  std::uint64_t k = 0;
  bool first = true;
  for (std::uint64_t p : parts) {
    k = first ? hash_mix(p) : hash_mix(k ^ p);
    first = false;
  }
  return k;
}

// Replaces `out` with k distinct values drawn uniformly without replacement from [0, n)
// (k <= n), sorted, as a pure function of `key`. Floyd's algorithm: k hash evaluations and
// O(k^2) (k <= 32) or O(k) expected (larger k) work, independent of n.
inline void sample_distinct(std::uint64_t key, std::int64_t n, std::int64_t k,
                            std::vector<std::int64_t>& out) {
  out.clear();
  const bool use_set = k > 32;
  std::unordered_set<std::int64_t> seen;
  for (std::int64_t j = n - k; j < n; ++j) {
    const std::uint64_t x = hash_mix(key ^ static_cast<std::uint64_t>(j));
    // Uniform in [0, j] by multiply-shift (probabilities off by less than (j + 1) / 2^64).
    const auto t = static_cast<std::int64_t>(
        (static_cast<unsigned __int128>(x) * static_cast<std::uint64_t>(j + 1)) >> 64);
    const bool dup =
        use_set ? seen.count(t) != 0 : std::find(out.begin(), out.end(), t) != out.end();
    out.push_back(dup ? j : t);
    if (use_set) seen.insert(out.back());
  }
  std::sort(out.begin(), out.end());
}

}  // namespace spattn::builtin
