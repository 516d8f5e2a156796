// A minimal in-process pipeline over StageModels for tests: forwards a micro-batch through
// every stage and backwards it again, passing boundary tensors in host buffers (the CPU
// backend's device memory is host memory).
#pragma once

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exec/model/cpu_backend.h"
#include "exec/model/param_layout.h"
#include "exec/model/partition.h"
#include "exec/model/stage_model.h"

namespace paci {
namespace testing {

template <typename T>
class TestPipeline {
 public:
  TestPipeline(const GptConfig& cfg, const std::vector<StagePartition>& parts, int B, int Tn,
               int slots, uint64_t seed)
      : cfg_(cfg) {
    for (const StagePartition& p : parts) {
      stages_.push_back(std::make_unique<StageModelT<T>>(be_, cfg, p, B, Tn, slots, seed));
    }
    const size_t n = stages_[0]->boundary_elems();
    x_.assign(parts.size(), std::vector<T>(n));
    dx_.assign(parts.size(), std::vector<T>(n));
  }

  int size() const { return static_cast<int>(stages_.size()); }
  StageModelT<T>& stage(int s) { return *stages_[s]; }

  T forward(int slot, const std::vector<int>& tokens, const std::vector<int>& targets) {
    T loss = 0;
    for (int s = 0; s < size(); ++s) {
      StageModelT<T>& m = *stages_[s];
      loss = m.forward(slot, m.params(), tokens.data(), s > 0 ? x_[s - 1].data() : nullptr,
                       targets.data(), s + 1 < size() ? x_[s].data() : nullptr);
    }
    return loss;
  }

  enum class Pass { kFull, kInputOnly, kWeightOnly };

  // kFull: backward() on every stage, last to first. kInputOnly: backward_input on every
  // stage (zero-bubble "I"); kWeightOnly: backward_weight on every stage ("W").
  void backward(int slot, T loss_scale, Pass pass = Pass::kFull) {
    for (int s = size() - 1; s >= 0; --s) {
      StageModelT<T>& m = *stages_[s];
      const T* dx_out = s + 1 < size() ? dx_[s].data() : nullptr;
      T* dx_in = s > 0 ? dx_[s - 1].data() : nullptr;
      switch (pass) {
        case Pass::kFull:
          m.backward(slot, m.params(), dx_out, dx_in, loss_scale);
          break;
        case Pass::kInputOnly:
          m.backward_input(slot, m.params(), dx_out, dx_in, loss_scale);
          break;
        case Pass::kWeightOnly:
          m.backward_weight(slot);
          break;
      }
    }
  }
  // Gradient w.r.t. the output of stage s (s < size()-1) left by the latest backward.
  const std::vector<T>& boundary_grad(int s) const { return dx_[s]; }

  void release(int slot) {
    for (auto& m : stages_) m->release(slot);
  }
  void zero_grad() {
    for (auto& m : stages_) m->zero_grad();
  }
  void sum_tied() { sum_tied_embedding_grads(*stages_.front(), *stages_.back()); }

  // name -> (stage, tensor)
  std::map<std::string, std::pair<int, TensorInfo>> tensors() const {
    std::map<std::string, std::pair<int, TensorInfo>> all;
    for (int s = 0; s < size(); ++s) {
      for (const TensorInfo& t : stages_[s]->layout().tensors) all[t.name] = {s, t};
    }
    return all;
  }
  std::vector<T> tensor_values(const std::string& name, bool grad) {
    const auto all = tensors();
    const auto& [s, t] = all.at(name);
    const T* base = grad ? stages_[s]->grads() : stages_[s]->params();
    return std::vector<T>(base + t.offset, base + t.offset + t.size);
  }

 private:
  GptConfig cfg_;
  CpuBackendT<T> be_;
  std::vector<std::unique_ptr<StageModelT<T>>> stages_;
  std::vector<std::vector<T>> x_, dx_;  // x_[s]: output of stage s; dx_[s]: its gradient
};

inline std::vector<int> random_tokens(size_t n, int vocab, uint64_t stream) {
  NormalStream rng(4242, stream);
  std::vector<int> t(n);
  for (int& x : t) x = static_cast<int>(rng.next_u64() % static_cast<uint64_t>(vocab));
  return t;
}

}  // namespace testing
}  // namespace paci
