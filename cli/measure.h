// Measured runs for `paci calibrate` and `paci compare`: the executor runs a schedule on
// synthetic tokens (timing does not depend on their values) and returns its trace.
#pragma once

#include <ostream>
#include <vector>

#include "cli/device.h"
#include "exec/model/config.h"
#include "exec/model/partition.h"
#include "exec/mpi/mpi.h"
#include "exec/runtime/runtime.h"
#include "schedules/ir.h"
#include "schedules/trace/trace.h"
#include "sim/calibrate/calibration.h"

namespace paci::cli {

struct MeasuredRun {
  Trace trace;
  std::vector<StageMemory> memory;
};

// With `mpi` (one process per rank, paci under mpirun) this process runs its rank's device
// and rank 0 gets the whole run's trace and memory (the other ranks an empty trace).
MeasuredRun measure(const Schedule& s, const GptConfig& model, const std::vector<StagePartition>& partition,
                    int B, int T, uint64_t seed, const ExecDevice& device = {}, MpiSession* mpi = nullptr);

// One device running S stages in turn, every micro-batch through all of them: forwards, then
// the backward whole (even micro-batches) or split into I and W (odd ones), an OPT per stage
// after every M micro-batches. Nothing overlaps, so each action's time is its own.
Schedule calibration_schedule(int stages, int M, int N);

std::vector<StageComposition> compositions(const std::vector<StagePartition>& partition);

// Runs on this machine whose stages separate the pieces (layouts E,L,H; E+L+H; and one that
// splits block 0 between its halves, E+0.5,0.5,(L-1)+H: the MLP half is a stage of its own), plus `also` (a partition the user will
// run, measured too) when given, fitted into per-piece costs; transfer bandwidth from timing
// a copy of one activation message.
Calibration calibrate_cpu(const GptConfig& model, int B, int T, int M, int N, uint64_t seed, std::ostream& log,
                          const ExecDevice& device = {}, const std::vector<StagePartition>& also = {});

}  // namespace paci::cli
