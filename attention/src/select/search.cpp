#include "spattn/attention/select/search.hpp"

#include <fmt/format.h>
#include <tbb/parallel_for.h>

#include <cmath>
#include <limits>

#include "spattn/attention/select/select.hpp"
#include "spattn/patterns/combinators.hpp"
#include "spattn/patterns/error.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn {

SearchResult search_heads(const std::vector<std::string>& candidates, const ConstTensorView& q,
                          const ConstTensorView& k, const Geometry& g, std::int64_t min_query,
                          double max_density) {
  if (candidates.empty()) throw UsageError("search: give at least one candidate spec");
  if (static_cast<double>(g.nq) * static_cast<double>(g.nk) > 4294967296.0)
    throw UsageError(
        fmt::format("search: {} x {} pairs per head exceed its limit of 2^32", g.nq, g.nk));
  const std::int64_t B = q.batch(), group = q.heads() / k.heads(), d = q.dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<std::string> specs;
  std::vector<std::vector<Layout>> layouts;  // [candidate][batch]
  for (const std::string& c : candidates) {
    const PatternPtr p = parse_spec(c);
    specs.push_back(p->spec());
    layouts.push_back(select_layouts(p, q, k, g).layouts);
  }
  const std::size_t C = specs.size();
  SearchResult out;
  out.heads.resize(static_cast<std::size_t>(g.heads));
  tbb::parallel_for(0, g.heads, [&](int h) {
    std::vector<double> mass(C, 0.0), allowed(C, 0.0), row(static_cast<std::size_t>(g.nk));
    std::int64_t rows = 0;
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t i = 0; i < g.nq; ++i) {
        const std::int64_t n = std::clamp<std::int64_t>(g.position(i) + 1, 0, g.nk);
        for (std::size_t c = 0; c < C; ++c) {
          const Layout& l = layouts[c][layouts[c].size() == 1 ? 0 : b];
          for (std::int64_t j = 0; j < g.nk; ++j) allowed[c] += l.head(h).allows(i, j) ? 1 : 0;
        }
        if (i < min_query || n == 0) continue;
        double m = -std::numeric_limits<double>::infinity(), total = 0;
        for (std::int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (std::int64_t x = 0; x < d; ++x)
            s += static_cast<double>(q.at(b, h, i, x)) * k.at(b, h / group, j, x);
          row[j] = scale * s;
          m = std::max(m, row[j]);
        }
        for (std::int64_t j = 0; j < n; ++j) total += (row[j] = std::exp(row[j] - m));
        for (std::size_t c = 0; c < C; ++c) {
          const Layout& l = layouts[c][layouts[c].size() == 1 ? 0 : b];
          double kept = 0;
          for (std::int64_t j = 0; j < n; ++j)
            if (l.head(h).allows(i, j)) kept += row[j];
          mass[c] += kept / total;
        }
        ++rows;
      }
    HeadSearch& hs = out.heads[static_cast<std::size_t>(h)];
    for (std::size_t c = 0; c < C; ++c) {
      CandidateScore s;
      s.spec = specs[c];
      s.recall = rows > 0 ? mass[c] / static_cast<double>(rows) : 0.0;
      s.density = allowed[c] /
                  (static_cast<double>(B) * static_cast<double>(g.nq) * static_cast<double>(g.nk));
      if (s.density <= max_density &&
          (hs.best < 0 || s.recall > hs.candidates[static_cast<std::size_t>(hs.best)].recall))
        hs.best = static_cast<int>(c);
      hs.candidates.push_back(s);
    }
  });
  std::vector<HeadGroup> groups;
  for (int h = 0; h < g.heads; ++h) {
    const HeadSearch& hs = out.heads[static_cast<std::size_t>(h)];
    if (hs.best < 0)
      throw UsageError(
          fmt::format("search: no candidate has density <= {} on head {} (the sparsest has {:.4g})",
                      max_density, h,
                      std::min_element(hs.candidates.begin(), hs.candidates.end(),
                                       [](const CandidateScore& a, const CandidateScore& b) {
                                         return a.density < b.density;
                                       })
                          ->density));
    const std::string& spec = hs.candidates[static_cast<std::size_t>(hs.best)].spec;
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const HeadGroup& gr) { return gr.pattern->spec() == spec; });
    if (it == groups.end()) {
      groups.push_back({{{h, h}}, parse_spec(spec)});
    } else {
      it->ranges.push_back({h, h});
    }
  }
  out.heads_spec = make_per_head(std::move(groups))->spec();
  return out;
}

}  // namespace spattn
