// The content-based selectors (selector.hpp): their parameters, defaults and exact rules. The
// scoring that reads Q and K is in attention/select/.
#include <vector>

#include "leaf.hpp"
#include "spattn/patterns/selector.hpp"

namespace spattn::builtin {
namespace {

// Canonical spec: required arguments positional, optional ones named when not at their default.
std::string selector_spec(const std::string& name, const std::vector<ParamSpec>& params,
                          const Args& a) {
  std::vector<std::string> parts;
  for (const ParamSpec& ps : params) {
    if (!a.has(ps.name)) continue;
    ParamValue v;
    switch (ps.type) {
      case ParamType::Int:
        v = a.get_int(ps.name);
        break;
      case ParamType::IntList:
        v = a.get_list(ps.name);
        break;
      case ParamType::String:
        v = a.get_string(ps.name);
        break;
      case ParamType::Real:
        v = a.get_real(ps.name);
        break;
    }
    std::string text = to_string(v);
    if (!ps.choices.empty()) text = std::get<std::string>(v);  // bare: mode=pit64
    if (ps.required)
      parts.push_back(text);
    else if (!ps.default_value || !(*ps.default_value == v))
      parts.push_back(fmt::format("{}={}", ps.name, text));
  }
  return parts.empty() ? name : fmt::format("{}({})", name, fmt::join(parts, ", "));
}

void add_selector(Registry& r, std::string name, std::vector<ParamSpec> params, std::string summary,
                  std::string rule, std::string convention, std::string example) {
  PatternInfo info{name,
                   params,
                   std::move(summary),
                   std::move(rule),
                   std::move(convention),
                   std::move(example),
                   nullptr};
  info.make = [name, params](const Args& a) -> PatternPtr {
    if (name == "xattention" && a.get_int("block") % a.get_int("stride") != 0)
      throw UsageError(fmt::format("xattention: block {} must be a multiple of stride {}",
                                   a.get_int("block"), a.get_int("stride")));
    if (name == "nsa_select" && (a.get_int("l") % a.get_int("stride") != 0 ||
                                 a.get_int("block") % a.get_int("stride") != 0))
      throw UsageError(fmt::format("nsa_select: l {} and block {} must be multiples of stride {}",
                                   a.get_int("l"), a.get_int("block"), a.get_int("stride")));
    if (name == "quest" && a.get_int("budget") < a.get_int("page"))
      throw UsageError(
          fmt::format("quest: budget {} is smaller than page {}: quest keeps "
                      "budget // page pages, so budget must be >= page",
                      a.get_int("budget"), a.get_int("page")));
    return std::make_shared<Selector>(name, a, selector_spec(name, params, a));
  };
  r.add(std::move(info));
}

// The oracles' `causal`: a boolean whose default is 1.
ParamSpec causal_param() {
  ParamSpec p = bool_param("causal", "1: choose among keys j <= p(i) only; 0: all keys");
  p.default_value = std::int64_t{1};
  return p;
}

constexpr const char* kTies = " Ties go to the lower index. Needs Q and K (--inputs).";

}  // namespace

void register_selectors(Registry& r) {
  add_selector(
      r, "oracle_topk",
      {int_param("k", 1, "keys (block > 0: key blocks) kept per query (per query block)"),
       causal_param(),
       int_param("block", 0, "0: per query and key; B > 0: B x B blocks by attention mass", 0,
                 false)},
      "the k keys of largest score q_i.k_j per query: the recall ceiling at a budget",
      std::string("per query: the k largest scores among the candidate keys (all of them when "
                  "fewer); block = B: per query block, the k key blocks of largest attention "
                  "mass (row-softmax P summed over the tile), token-causal inside.") +
          kTies,
      "sparse-attention-hub oracle_top_k; MInference's top-k recall", "oracle_topk(256)");
  add_selector(
      r, "oracle_topp",
      {real_param("p", 0, 1, true, "attention mass to keep per query, in (0, 1]"), causal_param(),
       int_param("block", 0, "0: per query and key; B > 0: B x B blocks by attention mass", 0,
                 false)},
      "the fewest keys of largest probability whose mass reaches p, per query",
      std::string("per query: sort P (row softmax over the candidates) descending, find the "
                  "first index where the running sum reaches p x total and keep every key with "
                  "P at least that value (ties kept); block = B: the fewest key blocks of "
                  "largest mass reaching p per query block.") +
          kTies,
      "sparse-attention-hub oracle_top_p", "oracle_topp(0.9)");
  add_selector(
      r, "vertical_slash",
      {int_param("v", 1, "vertical lines (key columns) kept, clamped to >= 30"),
       int_param("s", 1, "slash lines (diagonal offsets) kept, clamped to >= 50"),
       int_param("last_q", 1, "queries at the end that estimate the pattern", 64),
       choice_param("mode", {"exact", "pit64"}, "exact",
                    "exact: the token rule; pit64: the 64 x 64 kernel layout (a superset)")},
      "MInference vertical-slash: top columns and diagonals from the last queries' attention",
      std::string("P = softmax over j <= p(r) of the last last_q queries r; column score "
                  "sum_r P[r, j] (j < 30 forced), diagonal score sum_r P[r, p(r) - o] (o < 100 "
                  "forced); V = top max(v, 30) columns, S = top max(s, 50) offsets; exact: j <= "
                  "p(i) and (j in V or p(i) - j in S); pit64: per 64-query block the kernel's "
                  "64-wide chunks of S and the columns of V outside them, token-causal.") +
          kTies,
      "MInference (Jiang et al. 2024) vertical_and_slash, kernel path constants",
      "vertical_slash(1000, 6096) | sink(4)");
  add_selector(r, "block_topk",
               {int_param("block", 1, "block size B (queries and keys)", 64),
                int_param("k", 1, "key blocks kept per query block", 100)},
               "MInference block-sparse: the top-k key blocks by mean-pooled Q.K per query block",
               std::string("Qbar_I, Kbar_J = block sums / B (a short last block is zero-padded, "
                           "the pads count); score Qbar_I.Kbar_J over J <= I; query block I "
                           "keeps its min(k, I + 1) best blocks (the diagonal is not forced), "
                           "token-causal inside.") +
                   kTies,
               "MInference block_sparse_attention (block 64, top_k 100)", "block_topk(64, 8)");
  add_selector(r, "moba",
               {int_param("chunk", 1, "chunk size C"),
                int_param("topk", 1, "chunks per query, its own chunk included")},
               "MoBA: each query keeps its own chunk and the topk - 1 past chunks of best gate",
               std::string("gate q_i.mean(K of chunk b) over chunks entirely before p(i) "
                           "((b + 1) C <= p(i)); the query's own chunk floor(p(i) / C) is always "
                           "kept, causal inside it; allowed: j in a kept chunk and j <= p(i).") +
                   kTies,
               "MoonshotAI MoBA moba_naive", "moba(512, 4) & sliding(8192)");
  add_selector(r, "quest",
               {int_param("budget", 1, "token budget per query (budget // page pages)"),
                int_param("page", 1, "page size P", 16)},
               "Quest (decode): the budget // page pages of largest upper bound, own page kept",
               std::string("pages of P keys; bound U = sum_d max(q_d max_d, q_d min_d) over the "
                           "page's keys at or before p(i); the page holding p(i) is always kept "
                           "plus the budget // page - 1 best other pages; allowed: j in a kept "
                           "page and j <= p(i). budget < page is an error.") +
                   kTies,
               "mit-han-lab Quest kernel path (page_budget includes the current page)",
               "quest(1024)");
  add_selector(
      r, "nsa_select",
      {int_param("l", 1, "compression block length", 32),
       int_param("stride", 1, "compression stride d_s (divides l and block)", 16),
       int_param("block", 1, "selection block l'", 64),
       int_param("n", 1, "selected blocks per query, the forced ones included", 16),
       int_param("window", 1, "sliding window w", 512)},
      "NSA's selection and window branches: the n blocks of largest compressed attention plus "
      "the last w keys",
      std::string("compressed token c = mean of keys [c d_s, c d_s + l), visible to t when c d_s "
                  "+ l - 1 <= t; p = softmax over the visible ones of s q_t . Kc (per query "
                  "head); block score S_j = sum_{a < l/d_s} sum_{b < l'/d_s} p[j l'/d_s + a + b "
                  "- (l/d_s - 1)]; block 0 and the blocks of t and t - l' forced; the top n "
                  "blocks <= floor(t / l') and the window t - w < j <= t; token-causal. The "
                  "compressed branch (not keys) and the gates are not part of the mask.") +
          kTies,
      "NSA (DeepSeek 2025) paper defaults; mean-pool compression as fla-org's naive reference",
      "nsa_select(window=512)");
  add_selector(
      r, "flexprefill",
      {real_param("gamma", 0, 1, true, "attention mass the budgets cover", 0.9),
       real_param("tau", 0, 1, false, "JS distance below which a head is query-aware", 0.1),
       int_param("block", 1, "block size B", 128),
       int_param("min_budget", 1, "minimum budget in tokens (ceil(min_budget / B) blocks)", 512)},
      "FlexPrefill: per head vertical-slash blocks or query-aware blocks, budgets from gamma",
      std::string("dense causal when nq <= max(2B, ceil(min_budget / B) B); else P of the last B "
                  "queries; vertical = mean_r P[r, j], slash = mean_r P[r, p(r) - o]; budgets "
                  "cover(x) // 128 + 1 blocks (cover: the descending prefix with sum <= gamma, "
                  "plus one), at least ceil(min_budget / B); pooled to blocks (slash by block "
                  "offset floor(o / B)); D = sqrt(JS(softmax_J(mean_r(s q_r) . Kbar_J), pooled "
                  "vertical)); D < tau: query-aware (both budgets ceil(min_budget / B), plus the "
                  "globally largest block probabilities of softmax_J<=I(s Qbar_I . Kbar_J) while "
                  "their running sum <= gamma x query blocks); block 0 and block offset 0 "
                  "always; query block I keeps vertical blocks J <= I and blocks I - o; "
                  "token-causal.") +
          kTies,
      "bytedance FlexPrefill get_active_blocks (slash pooled by exact block offset)",
      "flexprefill(0.9, 0.1)");
  add_selector(
      r, "xattention",
      {real_param("threshold", 0, 1, true, "attention mass to reach per query block, in (0, 1]",
                  0.9),
       int_param("stride", 1, "antidiagonal stride S", 8),
       int_param("block", 1, "block size B, a multiple of the stride", 128)},
      "XAttention: per query block the fewest key blocks whose antidiagonal mass reaches the "
      "threshold, block 0 and the diagonal block first",
      std::string("A[u, t] = (s / S) sum_{c < S} q(uS + S - 1 - c) . k(tS + c) over positions "
                  "(zero where no query or key), softmax over t <= u; X[I, J] = its sum over "
                  "the (B / S)^2 grid of blocks (I, J); query block I keeps block 0, block I, "
                  "then blocks by X descending while the mass before each is < threshold x "
                  "sum_J X[I, J]; J <= I, token-causal.") +
          kTies,
      "mit-han-lab x-attention xattn_estimate (inverse mode, no sink/recent)",
      "xattention(0.9, stride=8)");
}

}  // namespace spattn::builtin
