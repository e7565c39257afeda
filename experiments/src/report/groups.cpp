// Points grouped for the tables.
#include "report/groups.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace spattn::experiments::report {

namespace {

// Each pattern ran at one block size only (a per-pattern `block` in the experiment file): the
// block is then part of what the pattern is, and the pattern belongs in the same table as the
// others (the dense baseline included).
bool block_fixed_per_pattern(const std::vector<Point>& pts) {
  std::map<std::string, std::set<std::string>> blocks;
  for (const Point& p : pts) {
    const auto it = p.axes.find("block");
    blocks[p.pattern].insert(it == p.axes.end() ? "" : it->second);
  }
  for (const auto& [pattern, values] : blocks)
    if (values.size() > 1) return false;
  return true;
}

}  // namespace

// Axes (other than pattern and spec) with more than one value across the points.
std::vector<std::string> varying_axes(const std::vector<Point>& pts) {
  std::map<std::string, std::set<std::string>> values;
  for (const Point& p : pts)
    for (const auto& [k, v] : p.axes) values[k].insert(v);
  std::vector<std::string> names;
  for (const auto& [k, vs] : values) {
    if (k == "pattern" || k == "spec") continue;
    // An axis missing from some records counts as varying (its value there is "").
    std::size_t with = 0;
    for (const Point& p : pts) with += p.axes.count(k);
    if (vs.size() > 1 || with != pts.size()) names.push_back(k);
  }
  return names;
}

std::vector<Group> group_points(const std::vector<Point>& pts,
                                const std::set<std::string>& excluded, bool split_blocks) {
  const bool block_is_pattern = !split_blocks && block_fixed_per_pattern(pts);
  std::vector<std::string> by;
  for (const std::string& a : varying_axes(pts))
    if (!excluded.count(a) && a != "pattern" && a != "spec" && !(a == "block" && block_is_pattern))
      by.push_back(a);
  std::vector<Group> groups;
  std::map<std::string, std::size_t> index;
  for (const Point& p : pts) {
    std::string label;
    for (const std::string& a : by) {
      const auto it = p.axes.find(a);
      label += fmt::format("{}{}={}", label.empty() ? "" : ", ", a,
                           it == p.axes.end() ? "-" : it->second);
    }
    auto [it, fresh] = index.emplace(label, groups.size());
    if (fresh) groups.push_back(Group{label, {}, {}, {}});
    Group& g = groups[it->second];
    g.points.push_back(&p);
    if (std::find(g.patterns.begin(), g.patterns.end(), p.pattern) == g.patterns.end())
      g.patterns.push_back(p.pattern);
    if (std::find(g.ns.begin(), g.ns.end(), p.n) == g.ns.end()) g.ns.push_back(p.n);
  }
  for (Group& g : groups) std::sort(g.ns.begin(), g.ns.end());
  return groups;
}

std::vector<const Point*> points_of(const Group& g, const std::string& pattern, bool ok_only) {
  std::vector<const Point*> out;
  for (const Point* p : g.points)
    if (p->pattern == pattern && (!ok_only || p->ok())) out.push_back(p);
  return out;
}

double baseline_time(const Group& g, const std::string& baseline, const Point& p) {
  for (const Point* b : g.points)
    if (b->pattern == baseline && b->n == p.n && b->ok()) return b->time();
  return kNaN;
}

const Point* baseline_point(const Group& g, const std::string& baseline, std::int64_t n) {
  const Point* b = g.find(baseline, n);
  return b != nullptr && b->ok() ? b : nullptr;
}

}  // namespace spattn::experiments::report
