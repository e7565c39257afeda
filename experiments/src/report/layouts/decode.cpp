// Report layout "decode": generation under KV cache policies (phase = "decode" points), cache
// policy x K/V dtype rows against the cache length N: tokens per second, the speed-up of bf16 and
// int8 over float32 K/V, K/V bytes read per step and their rate, cache memory, and fidelity
// against a full float32 cache.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <utility>

#include "report/groups.hpp"
#include "report/markdown.hpp"
#include "report/registry.hpp"
#include "report/sections.hpp"

namespace spattn::experiments::report {

namespace {

std::string axis(const Point& p, const char* name, const char* absent) {
  const auto it = p.axes.find(name);
  return it == p.axes.end() ? absent : it->second;
}

using Row = std::pair<std::string, std::string>;  // cache, kv_dtype

// One table: a row per (cache, kv_dtype) in first-appearance order, a column per N.
std::string by_policy(const Group& g, const std::function<std::string(const Point&)>& cell) {
  std::vector<Row> rows;
  for (const Point* p : g.points) {
    const Row r{axis(*p, "cache", "-"), axis(*p, "kv_dtype", "f32")};
    if (std::find(rows.begin(), rows.end(), r) == rows.end()) rows.push_back(r);
  }
  Table t;
  t.head = {"cache", "K/V"};
  for (std::int64_t n : g.ns) t.head.push_back(short_n(n));
  for (const Row& r : rows) {
    std::vector<std::string> line = {r.first, r.second};
    for (std::int64_t n : g.ns) {
      const Point* found = nullptr;
      for (const Point* p : g.points)
        if (p->n == n && axis(*p, "cache", "-") == r.first &&
            axis(*p, "kv_dtype", "f32") == r.second)
          found = p;
      line.push_back(found == nullptr
                         ? kNone
                         : (found->ok() && found->m->decode ? cell(*found) : found->status));
    }
    t.rows.push_back(std::move(line));
  }
  return t.render() + "\n";
}

// The float32 point of the same cache policy and N.
const Point* f32_point(const Group& g, const Point& p) {
  for (const Point* q : g.points)
    if (q->n == p.n && axis(*q, "cache", "-") == axis(p, "cache", "-") &&
        axis(*q, "kv_dtype", "f32") == "f32" && q->ok() && q->m->decode)
      return q;
  return nullptr;
}

std::string render(const LayoutInput& in) {
  std::vector<Point> decode;
  for (const Point& p : in.points)
    if (p.m->axes.phase == "decode") decode.push_back(p);
  if (decode.empty())
    return "No decode points: this layout tables points of phase = \"decode\".\n\n";
  std::string out;
  for (const Group& g : group_points(decode, {"n", "cache", "kv_dtype"})) {
    out += section_title("Decode tokens per second", g);
    out += by_policy(g, [](const Point& p) {
      return fmt_fixed(p.m->decode->tokens_per_second, 1) + noisy_mark(p);
    });
    out +=
        "Tokens per second = decode steps / the sum of their times (one new token and one query "
        "per head per step, after a prompt of N tokens); (noisy): the slowest step took more "
        "than 1.5x the fastest.\n\n";
    out += section_title("Speed-up of narrow K/V over float32", g);
    out += by_policy(g, [&](const Point& p) {
      const Point* b = f32_point(g, p);
      return b == nullptr
                 ? kNone
                 : fmt_ratio(p.m->decode->tokens_per_second / b->m->decode->tokens_per_second);
    });
    out += section_title("K/V read per step, and its rate at the median step", g);
    out += by_policy(g, [](const Point& p) {
      return fmt::format("{}, {} GB/s", fmt_bytes(p.m->decode->kv_bytes_per_step),
                         fmt_fixed(p.m->decode->kv_read_gbps, 1));
    });
    out += section_title("Cache memory (tokens held after the last step)", g);
    out += by_policy(g, [](const Point& p) {
      return fmt::format("{} ({})", fmt_bytes(static_cast<double>(p.m->decode->cache_bytes)),
                         p.m->decode->cache_tokens);
    });
    out += section_title("Fidelity against a full float32 cache", g);
    out += by_policy(g, [](const Point& p) {
      const auto& f = p.m->fidelity;
      const auto& nr = p.m->decode->needle_recall;
      return fmt::format("L2 {}, recall {}, needle {}", f ? fmt_sci(f->rel_l2_error) : kNone,
                         f ? fmt_fixed(f->recall_mean, 3) : kNone, nr ? fmt_fixed(*nr, 2) : kNone);
    });
    out +=
        "L2: mean over steps of ||o - o_full|| / ||o_full||; recall: mean over steps and heads "
        "of the share of full attention's mass on the keys read; needle: share of (step, head) "
        "whose read set held the planted needle key.\n\n";
  }
  return out;
}

}  // namespace

Layout report_layout_decode() {
  return {"decode",
          "cache policy x K/V dtype against N (phase = \"decode\"): tokens/s, speed-up over f32, "
          "K/V bytes read per step, cache memory, fidelity against a full f32 cache",
          render};
}

}  // namespace spattn::experiments::report
