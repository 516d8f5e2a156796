// One pipeline stage of the GPT model: its parameters and gradients (one flat buffer each),
// and a fixed number of activation slots, one per micro-batch in flight on this stage.
//
// Life of a slot: forward(slot) → backward_input(slot) → backward_weight(slot) → free again
// (backward() does the last two in one call). Misuse (forward into a busy slot, a backward on
// a slot without its forward) throws std::logic_error.
//
// Weights are passed to forward and backward_input explicitly (device pointers in the layout
// of layout()), so the runtime can run a backward with a stashed older copy; params() is the
// stage's own current copy. backward_weight needs no weights: it only combines activations
// and the activation gradients that backward_input left in the slot.
//
// A stage may begin with a block's MLP half (its x_in is that block's first-residual output)
// or end after a block's attention half (its x_out is that residual stream); both are [B,T,C]
// like any boundary, and a split block gives the bits of the whole block.
//
// A StageModel is not thread-safe (the backward passes share scratch buffers): one thread
// drives one stage. Different stages may run in parallel on a thread-safe backend.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "exec/model/backend.h"
#include "exec/model/config.h"
#include "exec/model/param_layout.h"
#include "exec/model/partition.h"

namespace paci {

template <typename T>
class StageModelT {
 public:
  enum class SlotState { kFree, kForwardDone, kInputGradDone };

  // micro_batch: B; seq_len: T of every micro-batch (<= cfg.seq_len; 0 means cfg.seq_len);
  // slots: activation slots (micro-batches this stage holds at once). Parameters are
  // initialised by init_parameters(cfg, layout, seed); gradients start at zero.
  StageModelT(BackendT<T>& backend, const GptConfig& cfg, const StagePartition& stage,
              int micro_batch, int seq_len, int slots, uint64_t seed);
  ~StageModelT();
  StageModelT(const StageModelT&) = delete;
  StageModelT& operator=(const StageModelT&) = delete;

  // tokens: host [B,T], first stage only (else ignored). x_in: device [B,T,C], other stages.
  // targets: host [B,T], last stage only. x_out: device [B,T,C], written unless last stage.
  // Returns the mean cross-entropy over the B·T tokens on the last stage, NaN elsewhere.
  T forward(int slot, const T* params, const int* tokens, const T* x_in, const int* targets,
            T* x_out);

  // All activation gradients of the slot. dx_out: device [B,T,C], gradient w.r.t. this
  // stage's x_out (ignored on the last stage). dx_in: device [B,T,C], receives the gradient
  // w.r.t. x_in (written, not accumulated; ignored on the first stage). loss_scale
  // multiplies the loss gradient (last stage only): 1/(micro-batches per optimizer step)
  // makes the accumulated gradients the mean over the step's micro-batches.
  // norm_params: the weights the LayerNorm input gradients use (nullptr: params). The
  // `forward` backward semantics passes the forward's weights as params (the matmuls) and
  // the current ones here, as bf16 autocast does.
  void backward_input(int slot, const T* params, const T* dx_out, T* dx_in, T loss_scale,
                      const T* norm_params = nullptr);

  // Weight, bias and LayerNorm gradients of the slot, ACCUMULATED into grads(); frees the
  // slot.
  void backward_weight(int slot);

  // backward_input then backward_weight.
  void backward(int slot, const T* params, const T* dx_out, T* dx_in, T loss_scale,
                const T* norm_params = nullptr);

  // Drops whatever the slot holds (e.g. after an evaluation-only forward) and frees it.
  void release(int slot);

  void zero_grad();

  T* params() { return params_; }
  const T* params() const { return params_; }
  T* grads() { return grads_; }
  const T* grads() const { return grads_; }
  size_t param_count() const { return layout_.total; }  // elements of params() and grads()
  size_t param_bytes() const { return layout_.total * sizeof(T); }
  // Everything one slot holds: activations, the activation gradients kept for
  // backward_weight, token/target copies. Stage-wide scratch is not included.
  size_t activation_bytes_per_slot() const { return slot_bytes_; }
  size_t scratch_bytes() const { return scratch_elems_ * sizeof(T); }

  // Per-tensor table: name, offset, size, is_2d (for weight decay and checkpoints).
  const ParamLayout& layout() const { return layout_; }
  // Device pointers into params() / grads(); nullptr if the stage has no such tensor.
  T* param_tensor(const std::string& name);
  T* grad_tensor(const std::string& name);

  const GptConfig& config() const { return cfg_; }
  const StagePartition& partition() const { return stage_; }
  BackendT<T>& backend() { return backend_; }
  int micro_batch() const { return B_; }
  int seq_len() const { return T_; }
  int num_slots() const { return static_cast<int>(slots_.size()); }
  // Elements of x_in / x_out / dx_out / dx_in: B·T·C.
  size_t boundary_elems() const { return static_cast<size_t>(B_) * T_ * cfg_.channels; }
  SlotState slot_state(int slot) const;

 private:
  struct LayerActs {  // element offsets into a slot's buffer
    bool attn = true, mlp = true;  // which halves of the block this stage holds
    size_t ln1, ln1_mean, ln1_rstd, qkv, atty, att, res1, ln2, ln2_mean, ln2_rstd, fch, fch_gelu,
        res2;
    size_t dres1, dfch, dln2, dqkv, dln1;  // activation gradients kept for backward_weight
  };
  struct Slot {
    T* buf = nullptr;
    int* tokens = nullptr;   // [B,T] (first stage)
    int* targets = nullptr;  // [B,T] (last stage)
    SlotState state = SlotState::kFree;
  };

  void check_slot(int slot, SlotState expected, const char* op) const;
  const T* layer_input(const Slot& s, int k) const;
  const T* stage_output(const Slot& s) const;
  size_t tensor_offset(int local_layer, int kind) const;

  BackendT<T>& backend_;
  GptConfig cfg_;
  StagePartition stage_;
  int B_, T_;
  ParamLayout layout_;
  T* params_ = nullptr;
  T* grads_ = nullptr;

  // Slot layout (shared by all slots).
  size_t x0_ = 0;  // stage input: embedding output or copy of x_in
  std::vector<LayerActs> acts_;
  size_t lnf_ = 0, lnf_mean_ = 0, lnf_rstd_ = 0, probs_ = 0, losses_ = 0, dlnf_ = 0;
  std::vector<size_t> dstream_;  // [nl+1]: gradient w.r.t. the input of local layer k
                                 // (k = nl: w.r.t. the stage output)
  size_t grads_begin_ = 0;       // [grads_begin_, slot_elems_) is zeroed by backward_input
  size_t slot_elems_ = 0;
  size_t slot_bytes_ = 0;
  std::vector<Slot> slots_;

  // Stage-wide scratch for gradients that backward_weight does not need.
  T* scratch_ = nullptr;
  size_t scratch_elems_ = 0;
  size_t datty_ = 0, dfch_gelu_ = 0;

  size_t wte_ = 0, wpe_ = 0, lnfw_ = 0, lnfb_ = 0, lm_head_ = 0;
  size_t layers_begin_ = 0;  // index in layout_.tensors of the first layer tensor
  std::vector<std::array<size_t, kTensorsPerLayer>> toff_;  // [local block][ParamKind] offsets
};

using StageModel = StageModelT<float>;

// Tied embeddings: makes wte's gradient on `first` and lm_head's gradient on `last` both
// equal to their sum (wte + lm_head, elementwise), so that identical AdamW steps keep the
// two copies identical. Call once per optimizer step, after all backward_weight calls and
// before the step. `first` and `last` may be the same object (one stage) and must share a
// memory space (same backend). Throws std::logic_error if the model is not tied or the
// stages lack the tensors.
template <typename T>
void sum_tied_embedding_grads(StageModelT<T>& first, StageModelT<T>& last);

}  // namespace paci
