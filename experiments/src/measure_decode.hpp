#pragma once
// The decode phase of a sweep point (phase = "decode"): the point's checks, prediction and
// measurement through the decode simulation (decode_sim.hpp). Internal to measure.cpp.
#include <cstdint>

#include "spattn/experiments/experiment.hpp"
#include "spattn/experiments/measurement.hpp"

namespace spattn::experiments {

// Throws UsageError naming the point and the axis when a decode point sets something decoding
// does not take (a pattern other than dense, another executor or path, batch > 1, score
// modifications, npy inputs), and when a prefill point sets a decode-only axis (cache,
// decode_steps).
void validate_phase(const SweepPoint& p);

// Memory (inputs, the policy's cache, the full cache for fidelity) and time at predict_gflops
// of a decode point.
Prediction predict_decode(const SweepPoint& p, bool fidelity);

// Runs the decode simulation of the point (prompt = n tokens, decode_steps steps, cache policy,
// K/V dtype, threads, seed; fidelity against a full float32 cache when `fidelity`) within
// `limit` bytes; the record's attention seconds are the step times.
Measurement measure_decode(const SweepPoint& p, bool fidelity, std::int64_t limit);

}  // namespace spattn::experiments
