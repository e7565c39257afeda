#pragma once
// Points grouped for the tables: by the axes that vary across a results file (internal to the
// report).
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "report/points.hpp"

namespace spattn::experiments::report {

// Points that share every axis except the excluded ones (pattern and spec always; "n" unless
// it varies and is not excluded). label names the axes that vary across the file.
struct Group {
  std::string label;
  std::vector<const Point*> points;
  std::vector<std::string> patterns;  // first-appearance order
  std::vector<std::int64_t> ns;       // ascending

  const Point* find(const std::string& pattern, std::int64_t n) const {
    for (const Point* p : points)
      if (p->pattern == pattern && p->n == n) return p;
    return nullptr;
  }
  // The first point of `pattern` at N = n with this tile_mode ("" : any).
  const Point* find(const std::string& pattern, std::int64_t n, const std::string& mode) const {
    for (const Point* p : points) {
      if (p->pattern != pattern || p->n != n) continue;
      const auto it = p->axes.find("tile_mode");
      if (mode.empty() || (it != p->axes.end() && it->second == mode)) return p;
    }
    return nullptr;
  }
};

// Axes (other than pattern and spec) with more than one value across the points.
std::vector<std::string> varying_axes(const std::vector<Point>& pts);

// Groups of points that share every varying axis except `excluded` (and the pattern); the block
// axis too when `split_blocks` is false and each pattern has a single block size.
std::vector<Group> group_points(const std::vector<Point>& pts,
                                const std::set<std::string>& excluded, bool split_blocks = false);

// The points of `pattern` in g (only those that ran when ok_only), in index order.
std::vector<const Point*> points_of(const Group& g, const std::string& pattern, bool ok_only);

// The baseline's point at N = n in g when it ran, else nullptr.
const Point* baseline_point(const Group& g, const std::string& baseline, std::int64_t n);

// The baseline's median time at p's N in g (NaN when it did not run there).
double baseline_time(const Group& g, const std::string& baseline, const Point& p);

}  // namespace spattn::experiments::report
