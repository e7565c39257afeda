// Shared machinery of the ds_* patterns (see deepspeed.hpp).
#include "deepspeed.hpp"

#include <algorithm>
#include <atomic>

#include "counter_hash.hpp"

namespace spattn::builtin::ds {
namespace {

// Sorts and merges ranges (touching ones too) and drops empty ones.
void normalize(std::vector<KeyRange>& v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](const KeyRange& k) { return k.begin >= k.end; }),
          v.end());
  std::sort(v.begin(), v.end(),
            [](const KeyRange& a, const KeyRange& b) { return a.begin < b.begin; });
  std::size_t n = 0;
  for (const KeyRange& k : v) {
    if (n > 0 && k.begin <= v[n - 1].end)
      v[n - 1].end = std::max(v[n - 1].end, k.end);
    else
      v[n++] = k;
  }
  v.resize(n);
}

// Number of blocks of [c0, c1] (inclusive) covered by the normalized ranges `v`.
std::int64_t covered(const std::vector<KeyRange>& v, std::int64_t c0, std::int64_t c1) {
  auto it = std::upper_bound(v.begin(), v.end(), c0,
                             [](std::int64_t c, const KeyRange& k) { return c < k.end; });
  std::int64_t n = 0;
  for (; it != v.end() && it->begin <= c1; ++it)
    n += std::min(it->end, c1 + 1) - std::max(it->begin, c0);
  return n;
}

std::atomic<std::uint64_t> next_id{1};

}  // namespace

Common common_from(const Args& a) {
  Common c;
  c.block = a.get_int("block");
  if (a.has("num_heads")) c.num_heads = a.get_int("num_heads");
  c.per_head = a.has("different_layout_per_head") && a.get_int("different_layout_per_head") != 0;
  return c;
}

bool parse_unidirectional(const std::string& family, const std::string& attention) {
  if (attention == "unidirectional") return true;
  if (attention == "bidirectional") return false;
  throw UsageError(fmt::format(
      "{}: attention = \"{}\" is not supported: allowed \"unidirectional\" or \"bidirectional\"",
      family, attention));
}

GlobalBlocks parse_global_blocks(const std::string& family, const Args& a) {
  GlobalBlocks g;
  g.starts = a.get_list("global_block_indices");
  if (!a.has("global_block_end_indices")) return g;
  g.ends = a.get_list("global_block_end_indices");
  if (g.ends->size() != g.starts.size())
    throw UsageError(fmt::format(
        "{}: global_block_indices has {} entries but global_block_end_indices has {}; they must "
        "have the same length",
        family, g.starts.size(), g.ends->size()));
  for (std::size_t k = 0; k < g.starts.size(); ++k)
    if (g.starts[k] >= (*g.ends)[k])
      throw UsageError(fmt::format(
          "{}: global block start index {} must be smaller than its end index {} (entry {})",
          family, g.starts[k], (*g.ends)[k], k));
  return g;
}

ParamSpec block_param() {
  return int_param("block", 1,
                   "DeepSpeed block size in tokens: cells of block x block pairs are kept or "
                   "dropped whole (semantic, independent of the executor tiling)",
                   16, false, 1 << 20);
}

ParamSpec num_heads_param() {
  ParamSpec p = int_param("num_heads", 1,
                          "heads of the layer; must equal the geometry's heads (default: the "
                          "geometry's heads)",
                          std::nullopt, false, 4096);
  return p;
}

ParamSpec flag_param(std::string name, std::string doc) {
  return bool_param(std::move(name), std::move(doc));
}

ParamSpec attention_param(const char* def) {
  ParamSpec p;
  p.name = "attention";
  p.type = ParamType::String;
  p.required = false;
  p.default_value = std::string(def);
  p.doc = "\"unidirectional\" (causal blocks) or \"bidirectional\"";
  return p;
}

ParamSpec seed_param() {
  return int_param("seed", 0,
                   "seed of the random blocks (spattn's counter-based draw; DeepSpeed uses "
                   "Python's random module, which cannot be reproduced)",
                   0, false, std::numeric_limits<std::int64_t>::max());
}

ParamSpec int_list_param(std::string name, std::vector<std::int64_t> def, bool has_default,
                         std::string doc) {
  ParamSpec p = list_param(std::move(name), 0, std::int64_t{1} << 40, std::move(doc), false);
  if (has_default) p.default_value = std::move(def);
  p.max_list_size = 1 << 16;
  return p;
}

void random_blocks(std::uint64_t seed, std::int64_t head_class, std::int64_t row,
                   std::int64_t population, std::int64_t count, std::vector<KeyRange>& out) {
  count = std::min(count, population);
  if (count <= 0) return;
  // 0x6473 ("ds") keeps these draws apart from random()'s for the same seed.
  const std::uint64_t key = hash_key(
      {seed ^ 0x6473u, static_cast<std::uint64_t>(head_class), static_cast<std::uint64_t>(row)});
  std::vector<std::int64_t> chosen;
  sample_distinct(key, population, count, chosen);
  for (std::int64_t c : chosen) out.push_back({c, c + 1});
}

DsPattern::DsPattern(std::string name, Common c)
    : name_(std::move(name)), c_(c), id_(next_id.fetch_add(1)) {}

std::int64_t DsPattern::layout_class(int) const {
  return 0;
}

const std::vector<KeyRange>& DsPattern::row(int h, std::int64_t nb, std::int64_t r) const {
  // The builder asks for the same few rows for every tile of a row of tiles: a small per-thread
  // cache keyed by everything the row depends on (the instance id is never reused).
  struct Entry {
    std::uint64_t id = 0;
    std::int64_t nb = -1, cls = -1, r = -1;
    std::vector<KeyRange> ranges;
  };
  thread_local Entry cache[8];
  thread_local unsigned next = 0;
  const std::int64_t cls = layout_class(h);
  for (Entry& e : cache)
    if (e.id == id_ && e.nb == nb && e.cls == cls && e.r == r) return e.ranges;
  Entry& e = cache[next++ % 8];
  e.id = 0;  // invalid while being filled (row_blocks may throw)
  e.ranges.clear();
  row_blocks(h, nb, r, e.ranges);
  normalize(e.ranges);
  for (KeyRange& k : e.ranges) {
    k.begin = std::max<std::int64_t>(k.begin, 0);
    k.end = std::min(k.end, nb);
  }
  normalize(e.ranges);
  e.id = id_;
  e.nb = nb;
  e.cls = cls;
  e.r = r;
  return e.ranges;
}

bool DsPattern::allows(const Geometry& g, int h, std::int64_t i, std::int64_t j) const {
  const std::int64_t nb = blocks_of(g);
  const std::int64_t r = g.position(i) / c_.block, c = j / c_.block;
  if (r < 0 || r >= nb || c < 0 || c >= nb) return false;
  return covered(row(h, nb, r), c, c) == 1;
}

void DsPattern::check(const Geometry& g) const {
  if (g.nq != g.nk)
    throw UsageError(fmt::format(
        "{}: DeepSpeed sparsity layouts are square (self-attention over seq_len tokens), but "
        "nq = {} and nk = {}",
        name_, g.nq, g.nk));
  if (g.nk % c_.block != 0)
    throw UsageError(
        fmt::format("{}: sequence length {} is not a multiple of block = {} (DeepSpeed's "
                    "SparsityConfig requires seq_len % block == 0); pad the sequence to {}",
                    name_, g.nk, c_.block, (g.nk / c_.block + 1) * c_.block));
  if (c_.num_heads && *c_.num_heads != g.heads)
    throw UsageError(fmt::format("{}: num_heads = {} but the geometry has {} heads", name_,
                                 *c_.num_heads, g.heads));
}

bool DsPattern::key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                           std::vector<KeyRange>& out) const {
  out.clear();
  const std::int64_t nb = blocks_of(g), b = c_.block;
  const std::int64_t r0 = std::max<std::int64_t>(0, g.position(q0) / b);
  const std::int64_t r1 = std::min(nb - 1, g.position(q1 - 1) / b);
  for (std::int64_t r = r0; r <= r1; ++r)
    for (const KeyRange& k : row(h, nb, r)) out.push_back({k.begin * b, k.end * b});
  return true;
}

void DsPattern::full_key_ranges(const Geometry& g, int h, std::int64_t q0, std::int64_t q1,
                                std::vector<KeyRange>& out) const {
  out.clear();
  const std::int64_t nb = blocks_of(g), b = c_.block;
  const std::int64_t r0 = g.position(q0) / b, r1 = g.position(q1 - 1) / b;
  if (r0 < 0 || r1 >= nb) return;
  std::vector<KeyRange> acc = row(h, nb, r0), next;
  for (std::int64_t r = r0 + 1; r <= r1 && !acc.empty(); ++r) {
    intersect_ranges(acc, row(h, nb, r), next);
    acc.swap(next);
  }
  for (const KeyRange& k : acc) out.push_back({k.begin * b, k.end * b});
}

TileClass DsPattern::classify(const Geometry& g, int h, const Tile& t) const {
  const std::int64_t nb = blocks_of(g), b = c_.block;
  const std::int64_t c0 = t.k_begin / b, c1 = (t.k_end - 1) / b;
  bool any = false, all = true;
  for (std::int64_t r = g.position(t.q_begin) / b; r <= g.position(t.q_end - 1) / b; ++r) {
    const std::int64_t n = covered(row(h, nb, r), c0, c1);
    any = any || n > 0;
    all = all && n == c1 - c0 + 1;
  }
  return !any ? TileClass::Empty : all ? TileClass::Full : TileClass::Partial;
}

void DsPattern::fill_tile(const Geometry& g, int h, const Tile& t, TileMask& m) const {
  const std::int64_t nb = blocks_of(g), b = c_.block;
  const std::int64_t c0 = t.k_begin / b, c1 = (t.k_end - 1) / b;
  for (std::int64_t r = g.position(t.q_begin) / b; r <= g.position(t.q_end - 1) / b; ++r) {
    const std::vector<KeyRange>& v = row(h, nb, r);
    const std::int64_t row0 = std::max(t.q_begin, r * b) - t.q_begin;
    const std::int64_t row1 = std::min(t.q_end, (r + 1) * b) - t.q_begin;
    auto it = std::upper_bound(v.begin(), v.end(), c0,
                               [](std::int64_t c, const KeyRange& k) { return c < k.end; });
    for (; it != v.end() && it->begin <= c1; ++it)
      for (std::int64_t q = row0; q < row1; ++q)
        m.set_range(q, it->begin * b - t.k_begin, it->end * b - t.k_begin);
  }
}

std::string DsPattern::head_spec(int h) const {
  return depends_on_head() ? fmt::format("{}@{}", spec(), layout_class(h)) : spec();
}

std::string DsPattern::spec_head() const {
  std::string s = fmt::format("{}(block={}", name_, c_.block);
  if (c_.num_heads) s += fmt::format(", num_heads={}", *c_.num_heads);
  if (c_.per_head) s += ", different_layout_per_head=1";
  return s;
}

}  // namespace spattn::builtin::ds
