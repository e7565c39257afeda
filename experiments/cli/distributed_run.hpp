#pragma once
// `mpirun -np P spattn run SPEC --distributed`: the run's point measured by context-parallel
// attention over MPI (spattn::distributed), when this spattn was built with MPI.
#include "spattn/experiments/measure.hpp"

namespace spattn::cli {

// Every rank generates its shard of the point's random inputs (the values a single-process run
// of the same seed uses), runs warm-up + repeats collective calls, and rank 0 prints the run's
// Measurement record (attention times: per call, the slowest rank) with a "distributed" object:
// the ranks, each rank's shard, median time, bytes and messages sent and received, the predicted
// bytes, and with `check`, the largest relative difference from the single-process executor on
// the whole inputs. `zigzag`: zig-zag shards instead of contiguous ones. `json`: one JSON line;
// otherwise a table. Throws UsageError (on every rank) for bad input, and when built without MPI.
void run_distributed(const experiments::PreparedPoint& u, bool json, bool check, bool zigzag);

}  // namespace spattn::cli
