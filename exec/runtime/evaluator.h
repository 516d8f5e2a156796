// Validation loss of a consistent snapshot of all stages, run outside the pipeline.
#pragma once

#include <memory>
#include <vector>

#include "exec/model/cpu_backend.h"
#include "exec/model/stage_model.h"
#include "exec/runtime/batch_source.h"
#include "exec/runtime/runtime.h"

namespace paci {

class Evaluator {
 public:
  Evaluator(const GptConfig& model, const std::vector<StagePartition>& partition, int B, int T);
  // Mean loss over `batches` micro-batches 0..batches-1 of `data` with the snapshot's weights.
  double loss(const Snapshot& snap, BatchSource& data, int batches);

 private:
  CpuBackend backend_;
  std::vector<std::unique_ptr<StageModel>> stages_;
  std::vector<float> x_, y_;
  std::vector<int> tokens_, targets_;
};

}  // namespace paci
