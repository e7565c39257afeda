// Reports from results.jsonl: results.csv (every field of every point) and table.md (laid out
// by the experiment's report.layout). Everything printed comes from the file with fixed formats,
// so regenerating a report gives the same bytes.
#include "spattn/experiments/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>

#include "spattn/experiments/fit.hpp"
#include "spattn/experiments/results.hpp"
#include "spattn/patterns/error.hpp"

namespace spattn::experiments {
namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// Reading

// The number at a path of object keys, or NaN when any step is missing or not a number.
double number_at(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return kNaN;
    const auto it = cur->find(key);
    if (it == cur->end()) return kNaN;
    cur = &*it;
  }
  return cur->is_number() ? cur->get<double>() : kNaN;
}

std::string string_at(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An axis value as text: strings as they are, numbers and the rest as JSON.
std::string axis_text(const json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

void require_point_fields(const json& rec, const std::string& where) {
  const auto axes = rec.find("axes");
  if (axes == rec.end() || !axes->is_object())
    throw UsageError(fmt::format("{}: point record has no \"axes\" object", where));
  const auto pattern = axes->find("pattern");
  if (pattern == axes->end() || !pattern->is_string())
    throw UsageError(fmt::format("{}: point record has no string axes.pattern", where));
  const auto n = axes->find("n");
  if (n == axes->end() || !n->is_number_integer() || n->get<std::int64_t>() <= 0)
    throw UsageError(fmt::format("{}: point record has no positive integer axes.n", where));
  const auto status = rec.find("status");
  if (status == rec.end() || !status->is_string())
    throw UsageError(fmt::format("{}: point record has no string \"status\"", where));
}

// ---------------------------------------------------------------------------------------------
// Points, as the tables need them

struct Point {
  int order = 0;  // position in index order
  std::string key, pattern, spec, status, message;
  std::int64_t n = 0;
  std::map<std::string, std::string> axes;  // every axis as text, "n" included
  const json* rec = nullptr;

  double measure(std::initializer_list<const char*> path) const {
    const auto m = rec->find("measure");
    return m == rec->end() ? kNaN : number_at(*m, path);
  }
  double predicted(const char* field) const { return number_at(*rec, {"predicted", field}); }
  bool ok() const { return status == "ok"; }
  double time() const { return ok() ? measure({"attention_seconds", "median"}) : kNaN; }
  double rss() const { return number_at(*rec, {"peak_rss_bytes"}); }
  double attention_bytes() const {  // workspace + layout: the memory that the pattern drives
    const double w = measure({"workspace_bytes"}), l = measure({"layout_bytes"});
    return std::isnan(w) && std::isnan(l) ? kNaN
                                          : (std::isnan(w) ? 0 : w) + (std::isnan(l) ? 0 : l);
  }
  double allowed_pairs() const {
    const double m = measure({"allowed_pairs"});
    return std::isnan(m) ? predicted("allowed_pairs") : m;
  }
};

std::vector<Point> make_points(const ResultsFile& r) {
  std::vector<Point> pts;
  for (const json& rec : r.points) {
    Point p;
    p.rec = &rec;
    const json& axes = rec.at("axes");
    p.pattern = axes.at("pattern").get<std::string>();
    p.spec = axes.contains("spec") ? axis_text(axes.at("spec")) : p.pattern;
    p.n = axes.at("n").get<std::int64_t>();
    for (auto it = axes.begin(); it != axes.end(); ++it) p.axes[it.key()] = axis_text(it.value());
    p.key = string_at(rec, "key");
    p.status = rec.at("status").get<std::string>();
    p.message = string_at(rec, "message");
    pts.push_back(std::move(p));
  }
  // Index order (the expansion order: patterns, then N, then the other axes); file order breaks
  // ties and covers records without an index.
  std::vector<std::size_t> idx(pts.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) {
    const double ia = number_at(*pts[a].rec, {"index"}), ib = number_at(*pts[b].rec, {"index"});
    if (std::isnan(ia) || std::isnan(ib)) return !std::isnan(ia) && std::isnan(ib);
    return ia < ib;
  });
  std::vector<Point> sorted;
  for (std::size_t i : idx) sorted.push_back(pts[i]);
  for (std::size_t i = 0; i < sorted.size(); ++i) sorted[i].order = static_cast<int>(i);
  return sorted;
}

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

// Groups of points that share every varying axis except `excluded` (and the pattern); the block
// axis too when `split_blocks` is false and each pattern has a single block size.
std::vector<Group> group_points(const std::vector<Point>& pts,
                                const std::set<std::string>& excluded, bool split_blocks = false) {
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

// ---------------------------------------------------------------------------------------------
// Formatting (fixed formats only, so the bytes depend on the values alone)

const std::string kNone = "-";

std::string fmt_ms(double seconds) {
  if (!std::isfinite(seconds)) return kNone;
  const double ms = seconds * 1e3;
  if (ms >= 1000) return fmt::format("{:.0f}", ms);
  if (ms >= 100) return fmt::format("{:.1f}", ms);
  if (ms >= 10) return fmt::format("{:.2f}", ms);
  if (ms >= 0.1) return fmt::format("{:.3f}", ms);
  return fmt::format("{:.4f}", ms);
}

std::string fmt_bytes(double b) {
  if (!std::isfinite(b)) return kNone;
  if (b < 1024) return fmt::format("{:.0f} B", b);
  if (b < 1024.0 * 1024) return fmt::format("{:.1f} KiB", b / 1024);
  if (b < 1024.0 * 1024 * 1024) return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
  return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
}

std::string fmt_fixed(double v, int decimals) {
  return std::isfinite(v) ? fmt::format("{:.{}f}", v, decimals) : kNone;
}
std::string fmt_ratio(double v) {
  return std::isfinite(v) ? fmt::format("{:.2f}x", v) : kNone;
}
std::string fmt_sci(double v) {
  return std::isfinite(v) ? fmt::format("{:.2e}", v) : kNone;
}
std::string fmt_count(double v) {
  return std::isfinite(v) ? fmt::format("{:.0f}", v) : kNone;
}

// "1K", "3K", "1M" when N is a multiple of 1024 (column headers), else the number.
std::string short_n(std::int64_t n) {
  if (n >= (1 << 20) && n % (1 << 20) == 0) return fmt::format("{}M", n >> 20);
  if (n >= 1024 && n % 1024 == 0) return fmt::format("{}K", n >> 10);
  return fmt::format("{}", n);
}

std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

// A Markdown table, columns padded so it also reads well as plain text.
struct Table {
  std::vector<std::string> head;
  std::vector<std::vector<std::string>> rows;

  std::string render() const {
    std::vector<std::size_t> w(head.size(), 3);
    auto cells = rows;
    cells.insert(cells.begin(), head);
    for (auto& row : cells) {
      row.resize(head.size(), kNone);
      for (std::size_t c = 0; c < row.size(); ++c) {
        row[c] = md_cell(row[c]);
        w[c] = std::max(w[c], row[c].size());
      }
    }
    std::string out;
    auto line = [&](const std::vector<std::string>& row) {
      out += '|';
      for (std::size_t c = 0; c < row.size(); ++c) out += fmt::format(" {:<{}} |", row[c], w[c]);
      out += '\n';
    };
    line(cells[0]);
    out += '|';
    for (std::size_t c = 0; c < head.size(); ++c) out += std::string(w[c] + 2, '-') + '|';
    out += '\n';
    for (std::size_t r = 1; r < cells.size(); ++r) line(cells[r]);
    return out;
  }
};

// ---------------------------------------------------------------------------------------------
// Fits over a pattern's points

// Log-log fit of value(point) against N over the points where value > 0.
LineFit slope_vs_n(const std::vector<const Point*>& pts, double (*value)(const Point&)) {
  std::vector<double> x, y;
  for (const Point* p : pts) {
    const double v = value(*p);
    if (std::isfinite(v) && v > 0) {
      x.push_back(static_cast<double>(p->n));
      y.push_back(v);
    }
  }
  return fit_power_law(x, y);
}

std::string fmt_slope(const LineFit& f) {
  return f.valid() ? fmt::format("{:.3f}", f.slope) : kNone;
}
std::string fmt_r2(const LineFit& f) {
  return f.valid() ? fmt::format("{:.4f}", f.r2) : kNone;
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

// ---------------------------------------------------------------------------------------------
// Sections shared by the layouts

std::string section_title(const std::string& title, const Group& g) {
  return g.label.empty() ? fmt::format("## {}\n\n", title)
                         : fmt::format("## {} ({})\n\n", title, g.label);
}

// One row per point that ran: time, speedup, memory, rates, fidelity.
std::string points_table(const Group& g, const std::string& baseline) {
  bool check = false, fidelity = false;
  for (const Point* p : g.points) {
    if (!p->ok()) continue;
    check |= std::isfinite(p->measure({"check", "rel_l2_error"}));
    fidelity |= std::isfinite(p->measure({"fidelity", "rel_l2_error"})) ||
                std::isfinite(p->measure({"fidelity", "recall_mean"}));
  }
  Table t;
  t.head = {"pattern",
            "N",
            "time ms (median)",
            "min..max ms",
            fmt::format("speedup vs {}", baseline),
            "peak RSS",
            "workspace",
            "layout",
            "useful GFLOP/s",
            "efficiency",
            "build ms"};
  if (check) t.head.push_back("check rel L2");
  if (fidelity) {
    t.head.push_back("rel L2 vs dense");
    t.head.push_back("recall mean");
    t.head.push_back("recall min");
  }
  for (const std::string& pattern : g.patterns) {
    for (const Point* p : points_of(g, pattern, true)) {
      std::vector<std::string> row = {
          p->pattern,
          fmt::format("{}", p->n),
          fmt_ms(p->time()),
          fmt::format("{}..{}", fmt_ms(p->measure({"attention_seconds", "min"})),
                      fmt_ms(p->measure({"attention_seconds", "max"}))),
          fmt_ratio(baseline_time(g, baseline, *p) / p->time()),
          fmt_bytes(p->rss()),
          fmt_bytes(p->measure({"workspace_bytes"})),
          fmt_bytes(p->measure({"layout_bytes"})),
          fmt_fixed(p->measure({"useful_gflops"}), 2),
          fmt_fixed(p->measure({"efficiency"}), 3),
          fmt_ms(p->measure({"build_seconds"}))};
      if (check) row.push_back(fmt_sci(p->measure({"check", "rel_l2_error"})));
      if (fidelity) {
        row.push_back(fmt_sci(p->measure({"fidelity", "rel_l2_error"})));
        row.push_back(fmt_fixed(p->measure({"fidelity", "recall_mean"}), 4));
        row.push_back(fmt_fixed(p->measure({"fidelity", "recall_min"}), 4));
      }
      t.rows.push_back(std::move(row));
    }
  }
  if (t.rows.empty()) return "No point of this group ran.\n\n";
  return t.render() + "\n";
}

// Fitted log-log slopes against N per pattern (patterns with at least two N values that ran).
std::string slopes_table(const Group& g) {
  Table t;
  t.head = {"pattern",
            "points",
            "N range",
            "time slope",
            "R^2",
            "predicted slope (computed FLOPs)",
            "peak RSS slope",
            "R^2",
            "workspace+layout slope",
            "R^2"};
  for (const std::string& pattern : g.patterns) {
    const auto pts = points_of(g, pattern, true);
    const LineFit time = slope_vs_n(pts, [](const Point& p) { return p.time(); });
    if (time.points < 2) continue;
    const LineFit pred =
        slope_vs_n(pts, [](const Point& p) { return p.predicted("computed_flops"); });
    const LineFit rss = slope_vs_n(pts, [](const Point& p) { return p.rss(); });
    const LineFit mem = slope_vs_n(pts, [](const Point& p) { return p.attention_bytes(); });
    std::int64_t lo = 0, hi = 0;
    for (const Point* p : pts) {
      if (!(p->time() > 0)) continue;
      lo = lo == 0 ? p->n : std::min(lo, p->n);
      hi = std::max(hi, p->n);
    }
    t.rows.push_back({pattern, fmt::format("{}", time.points), fmt::format("{}..{}", lo, hi),
                      fmt_slope(time), fmt_r2(time), fmt_slope(pred), fmt_slope(rss), fmt_r2(rss),
                      fmt_slope(mem), fmt_r2(mem)});
  }
  if (t.rows.empty()) return "";
  return t.render() +
         "\nSlopes are least-squares fits of log(value) against log(N) over the points that ran "
         "(2 = quadratic, 1 = linear). Peak RSS includes the inputs and the process's fixed "
         "footprint, which flatten its slope at small N; workspace+layout is the memory the "
         "pattern itself drives.\n\n";
}

std::string failures_section(const std::vector<Point>& pts) {
  Table t;
  t.head = {"pattern", "N", "other axes", "status", "predicted memory", "predicted s", "message"};
  const auto vary = varying_axes(pts);
  for (const Point& p : pts) {
    if (p.ok()) continue;
    std::string other;
    for (const std::string& a : vary) {
      if (a == "n") continue;
      const auto it = p.axes.find(a);
      other += fmt::format("{}{}={}", other.empty() ? "" : ", ", a,
                           it == p.axes.end() ? "-" : it->second);
    }
    t.rows.push_back({p.pattern, fmt::format("{}", p.n), other.empty() ? kNone : other, p.status,
                      fmt_bytes(p.predicted("memory_bytes")), fmt_fixed(p.predicted("seconds"), 2),
                      p.message.empty() ? kNone : p.message});
  }
  if (t.rows.empty()) return "";
  return "## Points that did not run\n\n" + t.render() + "\n";
}

// ---------------------------------------------------------------------------------------------
// Layouts

std::string layout_scaling(const std::vector<Point>& pts, const std::string& baseline) {
  std::string out;
  // N is a row of the table, never a group.
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("Time, speed and memory per N", g);
    out += points_table(g, baseline);
    const std::string slopes = slopes_table(g);
    if (!slopes.empty()) out += section_title("Slopes against N", g) + slopes;
  }
  return out;
}

// Pattern rows × N columns of cell(point); a point that did not run shows its status.
std::string pattern_by_n(const Group& g, const std::function<std::string(const Point&)>& cell) {
  Table t;
  t.head = {"pattern"};
  for (std::int64_t n : g.ns) t.head.push_back(short_n(n));
  for (const std::string& pattern : g.patterns) {
    std::vector<std::string> row = {pattern};
    for (std::int64_t n : g.ns) {
      const Point* p = g.find(pattern, n);
      row.push_back(p == nullptr ? kNone : (p->ok() ? cell(*p) : p->status));
    }
    t.rows.push_back(std::move(row));
  }
  return t.render() + "\n";
}

const Point* baseline_point(const Group& g, const std::string& baseline, std::int64_t n) {
  const Point* b = g.find(baseline, n);
  return b != nullptr && b->ok() ? b : nullptr;
}

std::string layout_lra(const std::vector<Point>& pts, const std::string& baseline) {
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title(fmt::format("Speed relative to {}", baseline), g);
    out += pattern_by_n(g, [&](const Point& p) {
      if (p.pattern == baseline) return fmt::format("{} ms", fmt_ms(p.time()));
      const Point* b = baseline_point(g, baseline, p.n);
      return b == nullptr ? kNone : fmt_ratio(b->time() / p.time());
    });
    out += fmt::format(
        "Speed = {0} time / pattern time (higher is faster); the {0} row gives its median "
        "attention time.\n\n",
        baseline);
    out += section_title(fmt::format("Peak memory relative to {}", baseline), g);
    out += pattern_by_n(g, [&](const Point& p) {
      if (p.pattern == baseline) return fmt_bytes(p.rss());
      const Point* b = baseline_point(g, baseline, p.n);
      return b == nullptr ? kNone : fmt_ratio(p.rss() / b->rss());
    });
    out += fmt::format(
        "Memory = pattern peak RSS / {0} peak RSS (lower is smaller); the {0} row gives its peak "
        "RSS. Peak RSS of the child process includes Q, K, V and O.\n\n",
        baseline);
  }
  return out;
}

std::string layout_flash(const std::vector<Point>& pts, const std::string& baseline) {
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("Time (ms, median)", g);
    out += pattern_by_n(g, [](const Point& p) { return fmt_ms(p.time()); });

    out += section_title("Exponent per doubling of N", g);
    Table t;
    t.head = {"pattern"};
    for (std::size_t i = 0; i + 1 < g.ns.size(); ++i)
      t.head.push_back(fmt::format("{}->{}", short_n(g.ns[i]), short_n(g.ns[i + 1])));
    t.head.insert(t.head.end(), {"overall (fit)", "R^2", "points"});
    for (const std::string& pattern : g.patterns) {
      std::vector<std::string> row = {pattern};
      for (std::size_t i = 0; i + 1 < g.ns.size(); ++i) {
        const Point* a = g.find(pattern, g.ns[i]);
        const Point* b = g.find(pattern, g.ns[i + 1]);
        double e = kNaN;
        if (a != nullptr && b != nullptr && a->time() > 0 && b->time() > 0)
          e = std::log(b->time() / a->time()) /
              std::log(static_cast<double>(g.ns[i + 1]) / static_cast<double>(g.ns[i]));
        row.push_back(fmt_fixed(e, 2));
      }
      const LineFit f =
          slope_vs_n(points_of(g, pattern, true), [](const Point& p) { return p.time(); });
      row.insert(row.end(), {fmt_slope(f), fmt_r2(f), fmt::format("{}", f.points)});
      t.rows.push_back(std::move(row));
    }
    out += t.render() +
           "\nlog2(time(2N)/time(N)) per step (divided by log2 of the N ratio when it is not 2): "
           "2 for quadratic cost, 1 for linear.\n\n";

    out += section_title(fmt::format("Where each sparse pattern first beats {}", baseline), g);
    Table c;
    c.head = {"pattern", "first N faster", fmt::format("{} ms", baseline), "pattern ms", "speedup"};
    for (const std::string& pattern : g.patterns) {
      if (pattern == baseline) continue;
      std::vector<std::string> row = {pattern, "", kNone, kNone, kNone};
      std::int64_t common_max = 0;
      for (std::int64_t n : g.ns) {
        const Point* p = g.find(pattern, n);
        const Point* b = baseline_point(g, baseline, n);
        if (p == nullptr || b == nullptr || !p->ok()) continue;
        common_max = n;
        if (p->time() < b->time()) {
          row = {pattern, fmt::format("{}", n), fmt_ms(b->time()), fmt_ms(p->time()),
                 fmt_ratio(b->time() / p->time())};
          break;
        }
      }
      if (row[1].empty())
        row[1] = common_max == 0
                     ? "no common N"
                     : fmt::format("not up to N = {} (largest where both ran)", common_max);
      c.rows.push_back(std::move(row));
    }
    if (!c.rows.empty()) out += c.render() + "\n";
  }
  return out;
}

std::string layout_density(const std::vector<Point>& pts) {
  std::string out;
  for (const Group& g : group_points(pts, {"tile_mode"}, /*split_blocks=*/true)) {
    std::vector<std::string> modes;
    for (const Point* p : g.points) {
      const auto it = p->axes.find("tile_mode");
      const std::string m = it == p->axes.end() ? "" : it->second;
      if (std::find(modes.begin(), modes.end(), m) == modes.end()) modes.push_back(m);
    }
    std::sort(modes.begin(), modes.end());  // "auto" before "partial"
    struct Row {
      std::string pattern;
      std::int64_t n;
      double density, computed_density;
    };
    std::vector<Row> rows;
    for (const std::string& pattern : g.patterns) {
      for (std::int64_t n : g.ns) {
        double d = kNaN, cd = kNaN;
        for (const Point* p : g.points) {
          if (p->pattern != pattern || p->n != n || !p->ok()) continue;
          d = p->measure({"density"});
          cd = d * p->measure({"computed_pairs"}) / p->measure({"allowed_pairs"});
          break;
        }
        if (g.find(pattern, n) != nullptr) rows.push_back({pattern, n, d, cd});
      }
    }
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
      if (std::isnan(a.density) || std::isnan(b.density))
        return !std::isnan(a.density) && std::isnan(b.density);
      return a.density < b.density;
    });
    const bool two = std::find(modes.begin(), modes.end(), "auto") != modes.end() &&
                     std::find(modes.begin(), modes.end(), "partial") != modes.end();
    out += section_title("Time against density", g);
    Table t;
    t.head = {"pattern", "N", "density", "computed density"};
    for (const std::string& m : modes)
      t.head.push_back(m.empty() ? "time ms" : fmt::format("time ms ({})", m));
    if (two) t.head.push_back("partial/auto");
    std::vector<double> ratios;
    std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> series;
    for (const Row& r : rows) {
      std::vector<std::string> row = {r.pattern, fmt::format("{}", r.n), fmt_fixed(r.density, 4),
                                      fmt_fixed(r.computed_density, 4)};
      std::map<std::string, double> times;
      for (const std::string& m : modes) {
        const Point* p = g.find(r.pattern, r.n, m);
        times[m] = p == nullptr ? kNaN : p->time();
        row.push_back(p == nullptr ? kNone : (p->ok() ? fmt_ms(p->time()) : p->status));
        if (p != nullptr && p->ok() && std::isfinite(r.density) && std::isfinite(p->time())) {
          series[m].first.push_back(r.density);
          series[m].second.push_back(p->time() * 1e3);
        }
      }
      if (two) {
        const double ratio = times["partial"] / times["auto"];
        if (std::isfinite(ratio)) ratios.push_back(ratio);
        row.push_back(fmt_fixed(ratio, 3));
      }
      t.rows.push_back(std::move(row));
    }
    out += t.render() + "\n";

    out += section_title("Linear fit t = a + b·density", g);
    Table f;
    f.head = {"tile_mode", "points", "a (ms)", "b (ms per unit density)", "R^2"};
    for (const std::string& m : modes) {
      const auto& [x, y] = series[m];
      const LineFit fit = fit_linear(x, y);
      f.rows.push_back({m.empty() ? kNone : m, fmt::format("{}", fit.points),
                        fit.valid() ? fmt::format("{:.4f}", fit.intercept) : kNone,
                        fit.valid() ? fmt::format("{:.4f}", fit.slope) : kNone, fmt_r2(fit)});
    }
    out += f.render() + "\n";
    if (two && !ratios.empty()) {
      double sum = 0;
      for (double r : ratios) sum += r;
      const double mean = sum / static_cast<double>(ratios.size());
      out += fmt::format(
          "Cost of masking (every kept tile treated as Partial): partial/auto time ratio mean "
          "{:.3f} (min {:.3f}, max {:.3f}) over {} densities, i.e. {:+.1f}% time.\n\n",
          mean, *std::min_element(ratios.begin(), ratios.end()),
          *std::max_element(ratios.begin(), ratios.end()), ratios.size(), (mean - 1) * 100);
    }
  }
  return out;
}

// The window size a pattern's display name (or else its spec) carries: its first integer.
std::optional<double> window_of(const Point& p) {
  for (const std::string* s : {&p.pattern, &p.spec}) {
    for (std::size_t i = 0; i < s->size(); ++i) {
      if (!std::isdigit(static_cast<unsigned char>((*s)[i]))) continue;
      std::size_t j = i;
      while (j < s->size() && std::isdigit(static_cast<unsigned char>((*s)[j]))) ++j;
      return std::stod(s->substr(i, j - i));
    }
  }
  return std::nullopt;
}

std::string layout_longformer(const std::vector<Point>& pts, const std::string& baseline) {
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    // Time and memory against N: patterns that ran at two or more N.
    Group multi = g;
    multi.patterns.clear();
    for (const std::string& pattern : g.patterns) {
      std::set<std::int64_t> ns;
      for (const Point* p : points_of(g, pattern, false)) ns.insert(p->n);
      if (ns.size() >= 2) multi.patterns.push_back(pattern);
    }
    if (!multi.patterns.empty()) {
      out += section_title("Time and memory against N", g);
      Table t;
      t.head = {"pattern",          "N",
                "time ms (median)", fmt::format("speedup vs {}", baseline),
                "peak RSS",         "workspace+layout"};
      for (const std::string& pattern : multi.patterns)
        for (std::int64_t n : g.ns) {
          const Point* p = g.find(pattern, n);
          if (p == nullptr) continue;
          if (!p->ok()) {
            t.rows.push_back({pattern, fmt::format("{}", n), p->status, kNone, kNone, kNone});
            continue;
          }
          t.rows.push_back({pattern, fmt::format("{}", n), fmt_ms(p->time()),
                            fmt_ratio(baseline_time(g, baseline, *p) / p->time()),
                            fmt_bytes(p->rss()), fmt_bytes(p->attention_bytes())});
        }
      out += t.render() + "\n";
      const std::string slopes = slopes_table(multi);
      if (!slopes.empty()) out += section_title("Slopes against N", g) + slopes;
    }
    // Time against window size, at each N where two or more window sizes ran.
    for (std::int64_t n : g.ns) {
      struct W {
        double w;
        const Point* p;
      };
      std::vector<W> ws;
      std::set<double> distinct;
      for (const std::string& pattern : g.patterns) {
        if (pattern == baseline) continue;
        const Point* p = g.find(pattern, n);
        if (p == nullptr) continue;
        const auto w = window_of(*p);
        if (!w) continue;
        ws.push_back({*w, p});
        distinct.insert(*w);
      }
      if (distinct.size() < 2) continue;
      std::stable_sort(ws.begin(), ws.end(), [](const W& a, const W& b) { return a.w < b.w; });
      out += section_title(fmt::format("Time against window size at N = {}", n), g);
      Table t;
      t.head = {"window", "pattern", "time ms (median)", "peak RSS", "allowed pairs"};
      std::vector<double> x, y;
      for (const W& w : ws) {
        t.rows.push_back({fmt_count(w.w), w.p->pattern,
                          w.p->ok() ? fmt_ms(w.p->time()) : w.p->status, fmt_bytes(w.p->rss()),
                          fmt_count(w.p->allowed_pairs())});
        if (w.p->ok() && std::isfinite(w.p->time())) {
          x.push_back(w.w);
          y.push_back(w.p->time() * 1e3);
        }
      }
      out += t.render() + "\n";
      const LineFit f = fit_linear(x, y);
      if (f.valid())
        out += fmt::format(
            "Linear fit time = a + b·window: a = {:.4f} ms, b = {:.6f} ms per key, R^2 = {:.4f} "
            "({} points). The window is the first number in each pattern's name.\n\n",
            f.intercept, f.slope, f.r2, f.points);
    }
  }
  return out;
}

std::string layout_audit(const std::vector<Point>& pts, const ResultsFile& r) {
  std::string out;
  for (const Group& g : group_points(pts, {"n"})) {
    out += section_title("Allowed pairs (all batches and heads)", g);
    Table a;
    a.head = {"pattern"};
    for (std::int64_t n : g.ns) a.head.push_back(short_n(n));
    for (const std::string& pattern : g.patterns) {
      std::vector<std::string> row = {pattern};
      for (std::int64_t n : g.ns) {
        const Point* p = g.find(pattern, n);
        row.push_back(p == nullptr ? kNone : fmt_count(p->allowed_pairs()));
      }
      a.rows.push_back(std::move(row));
    }
    out += a.render() + "\n";
    out += section_title("Time per allowed pair (ns)", g);
    out += pattern_by_n(
        g, [](const Point& p) { return fmt_fixed(p.time() / p.allowed_pairs() * 1e9, 4); });

    out += section_title("Slopes against N and the largest N within the budget", g);
    Table t;
    t.head = {"pattern", "pairs slope", "R^2",    "points", "time slope",
              "R^2",     "points",      "budget", "max N",  "predicted memory at max N"};
    for (const std::string& pattern : g.patterns) {
      const LineFit pairs = slope_vs_n(points_of(g, pattern, false),
                                       [](const Point& p) { return p.allowed_pairs(); });
      const LineFit time =
          slope_vs_n(points_of(g, pattern, true), [](const Point& p) { return p.time(); });
      std::vector<std::string> row = {pattern,
                                      fmt_slope(pairs),
                                      fmt_r2(pairs),
                                      fmt::format("{}", pairs.points),
                                      fmt_slope(time),
                                      fmt_r2(time),
                                      fmt::format("{}", time.points)};
      const json* budget = nullptr;
      for (const json& b : r.budgets)
        if (string_at(b, "pattern") == pattern) budget = &b;  // the last record wins
      if (budget != nullptr) {
        row.push_back(fmt_bytes(number_at(*budget, {"budget_bytes"})));
        row.push_back(fmt_count(number_at(*budget, {"max_n"})));
        row.push_back(fmt_bytes(number_at(*budget, {"memory_bytes_at_max_n"})));
      } else {
        row.insert(row.end(), {kNone, kNone, kNone});
      }
      t.rows.push_back(std::move(row));
    }
    out +=
        t.render() +
        "\nPairs slope: log-log fit of allowed pairs against N over every point with a count "
        "(measured, or predicted for points that did not run); time slope over the points "
        "that ran. Max N: the largest power of two N whose predicted memory fits the budget.\n\n";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CSV

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

std::string csv_value(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ';';
      out += csv_value(v[i]);
    }
    return out;
  }
  return v.dump();
}

// Flattens an object into dotted keys (nested objects; arrays stay whole).
void flatten(const json& j, const std::string& prefix, std::map<std::string, const json*>& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix + it.key();
    if (it.value().is_object())
      flatten(it.value(), key + ".", out);
    else
      out[key] = &it.value();
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

ResultsFile read_results(const std::filesystem::path& jsonl) {
  // The sweep's own reader: an incomplete last line (an interrupted write) is left out, every
  // other line must be a JSON object.
  JsonLines lines = read_json_lines(jsonl);
  ResultsFile r;
  r.truncated_line = lines.partial_line;
  std::map<std::string, std::size_t> by_key;
  for (std::size_t i = 0; i < lines.records.size(); ++i) {
    json& rec = lines.records[i];
    const std::string where = fmt::format("{} line {}", jsonl.string(), lines.line_numbers[i]);
    const std::string kind = string_at(rec, "kind");
    if (kind == "header") {
      r.header = std::move(rec);
    } else if (kind == "point") {
      require_point_fields(rec, where);
      const std::string key = string_at(rec, "key");
      const auto it = key.empty() ? by_key.end() : by_key.find(key);
      if (it != by_key.end()) {
        r.points[it->second] = std::move(rec);
        ++r.replaced_records;
      } else {
        if (!key.empty()) by_key[key] = r.points.size();
        r.points.push_back(std::move(rec));
      }
    } else if (kind == "budget") {
      r.budgets.push_back(std::move(rec));
    } else {
      ++r.ignored_records;
    }
  }
  return r;
}

std::string render_csv(const ResultsFile& results) {
  const std::vector<Point> pts = make_points(results);
  const std::vector<std::string> known_axes = {"pattern", "spec",      "n",     "head_dim",
                                               "heads",   "kv_heads",  "batch", "threads",
                                               "block",   "tile_mode", "inputs"};
  std::set<std::string> extra_axes, measure_cols, predicted_cols;
  std::vector<std::map<std::string, const json*>> measures(pts.size()), predicted(pts.size());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const json& rec = *pts[i].rec;
    for (const auto& [k, v] : pts[i].axes)
      if (std::find(known_axes.begin(), known_axes.end(), k) == known_axes.end())
        extra_axes.insert(k);
    if (rec.contains("measure") && rec["measure"].is_object())
      flatten(rec["measure"], "", measures[i]);
    if (rec.contains("predicted") && rec["predicted"].is_object())
      flatten(rec["predicted"], "predicted.", predicted[i]);
    for (const auto& [k, v] : measures[i]) measure_cols.insert(k);
    for (const auto& [k, v] : predicted[i]) predicted_cols.insert(k);
  }
  // A field that is null in some records and an object in others has only its sub-columns.
  for (std::set<std::string>* cols : {&measure_cols, &predicted_cols}) {
    for (auto it = cols->begin(); it != cols->end();) {
      const auto next = cols->lower_bound(*it + ".");
      if (next != cols->end() && next->rfind(*it + ".", 0) == 0)
        it = cols->erase(it);
      else
        ++it;
    }
  }
  std::vector<std::string> head = {"index", "key"};
  head.insert(head.end(), known_axes.begin(), known_axes.end());
  head.insert(head.end(), extra_axes.begin(), extra_axes.end());
  head.insert(head.end(), {"status", "message", "peak_rss_bytes", "wall_seconds"});
  head.insert(head.end(), measure_cols.begin(), measure_cols.end());
  head.insert(head.end(), predicted_cols.begin(), predicted_cols.end());

  std::string out;
  for (std::size_t c = 0; c < head.size(); ++c) {
    if (c > 0) out += ',';
    out += csv_cell(head[c]);
  }
  out += '\n';
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const Point& p = pts[i];
    const json& rec = *p.rec;
    std::vector<std::string> row;
    row.push_back(rec.contains("index") ? csv_value(rec["index"]) : "");
    row.push_back(p.key);
    for (const std::string& a : known_axes) {
      const auto it = p.axes.find(a);
      row.push_back(it == p.axes.end() ? "" : it->second);
    }
    for (const std::string& a : extra_axes) {
      const auto it = p.axes.find(a);
      row.push_back(it == p.axes.end() ? "" : it->second);
    }
    row.push_back(p.status);
    row.push_back(p.message);
    row.push_back(rec.contains("peak_rss_bytes") ? csv_value(rec["peak_rss_bytes"]) : "");
    row.push_back(rec.contains("wall_seconds") ? csv_value(rec["wall_seconds"]) : "");
    for (const std::string& c : measure_cols) {
      const auto it = measures[i].find(c);
      row.push_back(it == measures[i].end() ? "" : csv_value(*it->second));
    }
    for (const std::string& c : predicted_cols) {
      const auto it = predicted[i].find(c);
      row.push_back(it == predicted[i].end() ? "" : csv_value(*it->second));
    }
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out += ',';
      out += csv_cell(row[c]);
    }
    out += '\n';
  }
  return out;
}

std::string render_table(const ResultsFile& results) {
  const std::vector<Point> pts = make_points(results);
  const json& h = results.header;
  const json report =
      h.contains("report") && h["report"].is_object() ? h["report"] : json::object();
  std::string layout = string_at(report, "layout");
  std::string baseline = string_at(report, "baseline");
  if (baseline.empty()) baseline = "dense";
  const std::set<std::string> layouts = {"scaling", "lra_table2",      "flash_scaling",
                                         "density", "longformer_fig1", "audit"};
  std::string note;
  if (layout.empty()) layout = "scaling";
  if (!layouts.count(layout)) {
    note += fmt::format("Unknown report layout \"{}\": shown as \"scaling\".\n\n", layout);
    layout = "scaling";
  }

  std::string out;
  const std::string name = string_at(h, "experiment");
  out += fmt::format("# {}\n\n", name.empty() ? "Sweep results" : name);
  const std::string stamp = string_at(h, "stamp");
  out += fmt::format(
      "Run {} · layout {} · baseline {}{}\n\n", stamp.empty() ? kNone : stamp, layout, baseline,
      h.contains("quick") && h["quick"].is_boolean() && h["quick"].get<bool>() ? " · quick run"
                                                                               : "");
  std::map<std::string, int> by_status;
  for (const Point& p : pts) ++by_status[p.status];
  std::string counts;
  for (const auto& [s, c] : by_status)
    counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", c, s);
  out += fmt::format("Points: {}{}.\n\n", pts.size(), counts.empty() ? "" : " (" + counts + ")");
  if (results.truncated_line > 0)
    out += fmt::format(
        "Line {} of results.jsonl is incomplete (an interrupted write) and was ignored.\n\n",
        results.truncated_line);
  if (results.replaced_records > 0)
    out += fmt::format("{} point record(s) were replaced by a later record with the same key.\n\n",
                       results.replaced_records);
  if (results.ignored_records > 0)
    out += fmt::format("{} record(s) of unknown kinds were ignored.\n\n", results.ignored_records);
  out += note;

  // Axes with one value across the sweep, stated once.
  if (!pts.empty()) {
    const auto vary = varying_axes(pts);
    std::string fixed;
    for (const auto& [k, v] : pts.front().axes) {
      if (k == "pattern" || k == "spec" || std::find(vary.begin(), vary.end(), k) != vary.end())
        continue;
      fixed += fmt::format("{}{}={}", fixed.empty() ? "" : ", ", k, v);
    }
    if (!fixed.empty()) out += fmt::format("Fixed axes: {}.\n\n", fixed);
    Table specs;
    specs.head = {"pattern", "spec"};
    std::set<std::string> seen;
    for (const Point& p : pts)
      if (seen.insert(p.pattern).second) specs.rows.push_back({p.pattern, p.spec});
    out += specs.render() + "\n";
  }

  if (layout == "scaling") {
    out += layout_scaling(pts, baseline);
  } else {
    if (layout == "lra_table2") out += layout_lra(pts, baseline);
    if (layout == "flash_scaling") out += layout_flash(pts, baseline);
    if (layout == "density") out += layout_density(pts);
    if (layout == "longformer_fig1") out += layout_longformer(pts, baseline);
    if (layout == "audit") out += layout_audit(pts, results);
    for (const Group& g : group_points(pts, {"n"})) {
      out += section_title("All points that ran", g);
      out += points_table(g, baseline);
    }
  }
  out += failures_section(pts);
  while (out.size() > 1 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n')
    out.pop_back();
  return out;
}

void write_reports(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    throw UsageError(
        fmt::format("results directory {} does not exist or is not a directory", dir.string()));
  const std::filesystem::path jsonl = dir / "results.jsonl";
  if (!std::filesystem::is_regular_file(jsonl, ec))
    throw UsageError(
        fmt::format("{} not found: a results directory holds the results.jsonl "
                    "that `spattn sweep` writes",
                    jsonl.string()));
  const ResultsFile results = read_results(jsonl);
  auto write = [&](const std::string& name, const std::string& text) {
    const std::filesystem::path final_path = dir / name;
    const std::filesystem::path tmp = dir / (name + ".tmp");
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << text;
      out.flush();
      if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
    }
    std::filesystem::rename(tmp, final_path);
  };
  write("results.csv", render_csv(results));
  write("table.md", render_table(results));
}

}  // namespace spattn::experiments
