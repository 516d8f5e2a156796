#include "exec/runtime/evaluator.h"

#include <stdexcept>
#include <utility>

namespace paci {

Evaluator::Evaluator(const GptConfig& model, const std::vector<StagePartition>& partition, int B,
                     int T)
    : backend_(CpuBackendOptions{0}) {
  for (const auto& p : partition)
    stages_.push_back(std::make_unique<StageModel>(backend_, model, p, B, T, 1, 0));
  const size_t n = static_cast<size_t>(B) * T * model.channels;
  x_.resize(n);
  y_.resize(n);
  tokens_.resize(static_cast<size_t>(B) * T);
  targets_.resize(tokens_.size());
}

double Evaluator::loss(const Snapshot& snap, BatchSource& data, int batches) {
  if (snap.params.size() != stages_.size())
    throw std::invalid_argument("snapshot and evaluator have different stage counts");
  double sum = 0;
  for (int b = 0; b < batches; ++b) {
    data.get(b, tokens_.data(), targets_.data());
    for (size_t s = 0; s < stages_.size(); ++s) {
      const bool last = s + 1 == stages_.size();
      float l = stages_[s]->forward(0, snap.params[s].data(), tokens_.data(), s ? x_.data() : nullptr,
                                    targets_.data(), last ? nullptr : y_.data());
      stages_[s]->release(0);
      if (last) sum += l;
      std::swap(x_, y_);
    }
  }
  return sum / batches;
}

}  // namespace paci
