#pragma once
// Head-pattern search (MInference's offline search, for any candidate list): each candidate
// spec is scored per query head by its attention-mass recall on calibration inputs, and each
// head takes the candidate of highest recall among those within a density budget.
#include <cstdint>
#include <string>
#include <vector>

#include "spattn/attention/tensor.hpp"
#include "spattn/patterns/geometry.hpp"

namespace spattn {

struct CandidateScore {
  std::string spec;
  double recall = 0;   // mean over scored queries of the causal attention mass the mask keeps
  double density = 0;  // allowed pairs / (nq x nk), mean over batches
};

struct HeadSearch {
  std::vector<CandidateScore> candidates;  // in the order given
  int best = -1;                           // index of the winner
};

struct SearchResult {
  std::vector<HeadSearch> heads;  // per query head
  std::string heads_spec;         // the winners as one heads(...) spec (canonical)
};

// q [B, Hq, nq, d], k [B, Hkv, nk, d] (geometry g: nq, nk, Hq; the tiling is g's). Recall of a
// candidate on head h: the mean over batches and over queries i >= min_query with at least one
// key j <= p(i) of sum_{j allowed} P_ij, P the dense causal softmax of s q_i . k_j (double). The
// winner has the highest recall among candidates of density <= max_density (ties: the first
// listed); UsageError when no candidate fits, or on bad specs or shapes. Quadratic in time (one
// dense row at a time), linear in memory; refuses nq x nk > 2^32.
SearchResult search_heads(const std::vector<std::string>& candidates, const ConstTensorView& q,
                          const ConstTensorView& k, const Geometry& g, std::int64_t min_query = 0,
                          double max_density = 1.0);

}  // namespace spattn
