#pragma once
// The one measure path. A point is first prepared (validated, its layout built once, costed and
// predicted); the sweep's parent uses the prediction alone, while `spattn point` (a sweep's
// child) and `spattn run` measure the prepared point: the executor the point names (warm-up,
// then timed repeats), and where asked and where it fits, the dense reference check and the
// fidelity against full attention. The result is a Measurement (measurement.hpp).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "spattn/attention/cost.hpp"
#include "spattn/attention/score_mod.hpp"
#include "spattn/attention/shapes.hpp"
#include "spattn/attention/tensor.hpp"
#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/inputs.hpp"
#include "spattn/experiments/measurement.hpp"
#include "spattn/patterns/layout.hpp"
#include "spattn/patterns/spec.hpp"

namespace spattn::experiments {

// A validated point with its layout: what both the prediction and the measurement use.
struct PreparedPoint {
  SweepPoint point;
  PatternPtr pattern;
  Geometry g;        // nq = n, nk = nk (or n), block_q = the pattern's block or `block`,
                     // block_k = block_k (or block_q)
  AttentionShape s;  // [batch, heads, n, head_dim] queries, [batch, kv_heads, nk, head_dim] keys
  std::int64_t limit = 0;                // the point's memory limit, bytes
  bool check = false, fidelity = false;  // after check_max_n / fidelity_max_n
  Layout layout;                         // selectors: batch 0's layout
  // Selectors only (the spec holds one): the inputs, made when the point is prepared (the
  // selection needs them; measure_prepared takes them over), each batch's resolved pattern and
  // layout, and the selection's time and cost.
  std::shared_ptr<Qkv> inputs;
  std::vector<PatternPtr> batch_patterns;
  std::vector<Layout> batch_layouts;
  std::optional<SelectionFigures> selection;
  ScoreMod mod;           // the point's score modifications (files read, checked against the heads)
  AttentionCost cost;     // selectors: summed over the batches' layouts
  LayoutFigures figures;  // the layout's counts, bytes and build time
  // Bytes the inputs take while they are made, beside q, k and v (npy: from the files' headers).
  std::int64_t input_scratch_bytes = 0;
  Prediction prediction;
  std::string label;  // names the point in a refusal ("point KEY"; `run`: "the run")
  // Names the memory limit in a refusal ("the experiment's `memory` setting"; `run`: its option).
  std::string raise_hint = "the experiment's `memory` setting";
};

// Validates the point (npy inputs: their headers, check_npy_inputs) and builds its layout
// (bounded by the point's memory limit), costs and predicts it. Throws UsageError on a bad
// spec/geometry/setting or inputs that do not serve the point, BudgetError when the layout alone
// exceeds the limit.
PreparedPoint prepare_point(const SweepPoint& p);

// The prediction alone (prepare_point(p).prediction).
Prediction predict_point(const SweepPoint& p);

// The tensors of a measurement, for a caller that supplies the inputs or keeps the outputs.
struct PointTensors {
  Qkv inputs;     // empty (no q values): made from the point's inputs setting and seed
  Tensor o, lse;  // out: [B, Hq, nq, d] and [B, Hq, nq, 1] of the last timed call
};

// Measures a prepared point: refuses (BudgetError) when the prediction exceeds the point's limit,
// runs the point's executor `warmup` + `repeats` times, checks the output is finite, then the
// reference check and fidelity where the prepared point asks for them. The record's source is
// "sweep", key/index/axes/layout/prediction/attention/resources (workspace, tasks, split rows,
// threads used, this process's peak RSS) and check/fidelity are filled. Throws UsageError on bad
// input, BudgetError when refused by a memory budget; std::bad_alloc propagates.
Measurement measure_prepared(const PreparedPoint& u, PointTensors* tensors = nullptr);

// prepare_point, then measure_prepared.
Measurement measure_point(const SweepPoint& p);

// The record of a point that was not measured: source "sweep", key, index and axes (the
// prediction is the caller's to add).
Measurement point_record(const SweepPoint& p);

}  // namespace spattn::experiments
