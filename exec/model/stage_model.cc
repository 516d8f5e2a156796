#include "exec/model/stage_model.h"

#include <cmath>
#include <limits>
#include <stdexcept>

namespace paci {
namespace {

constexpr size_t kAlign = 16;  // elements; keeps every region 64-byte aligned for fp32

size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Position of each per-layer tensor in ParamLayout::tensors (make_param_layout's order).
enum LayerTensor {
  kLn1w,
  kLn1b,
  kQkvw,
  kQkvb,
  kAttprojw,
  kAttprojb,
  kLn2w,
  kLn2b,
  kFcw,
  kFcb,
  kFcprojw,
  kFcprojb
};

}  // namespace

template <typename T>
StageModelT<T>::StageModelT(BackendT<T>& backend, const GptConfig& cfg, const StagePartition& stage,
                            int micro_batch, int seq_len, int slots, uint64_t seed)
    : backend_(backend),
      cfg_(cfg),
      stage_(stage),
      B_(micro_batch),
      T_(seq_len > 0 ? seq_len : cfg.seq_len) {
  validate(cfg);
  if (B_ < 1) throw std::invalid_argument("StageModel: micro_batch must be >= 1");
  if (T_ > cfg.seq_len) {
    throw std::invalid_argument("StageModel: seq_len " + std::to_string(T_) +
                                " exceeds the model's context " + std::to_string(cfg.seq_len));
  }
  if (slots < 1) throw std::invalid_argument("StageModel: need at least one activation slot");
  if (stage.num_layers() < 0 || stage.first_layer < 0 || stage.last_layer >= cfg.layers) {
    throw std::invalid_argument("StageModel: stage layers [" + std::to_string(stage.first_layer) +
                                ", " + std::to_string(stage.last_layer) + "] outside the model's " +
                                std::to_string(cfg.layers) + " layers");
  }
  {
    const int a = stage.first_unit(), b = stage.last_unit();
    if (a < 0 || b >= num_units(cfg) || a > b || stage_from_units(cfg, a, b) != stage)
      throw std::invalid_argument("StageModel: stage (layers [" + std::to_string(stage.first_layer) + ", " +
                                  std::to_string(stage.last_layer) +
                                  "]) is not a contiguous range of the model's units");
  }
  layout_ = make_param_layout(cfg, stage);
  layers_begin_ = stage.has_embedding ? 2 : 0;
  if (stage.has_embedding) {
    wte_ = layout_.tensors[0].offset;
    wpe_ = layout_.tensors[1].offset;
  }
  toff_.assign(stage.num_layers(), {});
  for (const TensorInfo& t : layout_.tensors) {
    if (t.layer >= 0) toff_[t.layer - stage.first_layer][static_cast<int>(t.kind)] = t.offset;
  }
  if (stage.has_head) {
    const size_t h = layout_.tensors.size() - 3;
    lnfw_ = layout_.tensors[h].offset;
    lnfb_ = layout_.tensors[h + 1].offset;
    lm_head_ = layout_.tensors[h + 2].offset;
  }

  // Carve a slot: activations first, then the gradient region that backward_input zeroes.
  const size_t N = static_cast<size_t>(B_) * T_, C = cfg.channels;
  const int nl = stage.num_layers();
  size_t used = 0;
  auto take = [&used](size_t n) {
    const size_t off = used;
    used = round_up(used + n);
    return off;
  };
  x0_ = take(N * C);
  acts_.resize(nl);
  for (int k = 0; k < nl; ++k) {
    LayerActs& a = acts_[k];
    a.attn = stage.has_attention(stage.first_layer + k);
    a.mlp = stage.has_mlp(stage.first_layer + k);
    if (a.attn) {
      a.ln1 = take(N * C);
      a.ln1_mean = take(N);
      a.ln1_rstd = take(N);
      a.qkv = take(N * 3 * C);
      a.atty = take(N * C);
      a.att = take(backend_.attention_state_elems(B_, T_, cfg.channels, cfg.heads));
      a.res1 = take(N * C);
    } else {
      a.res1 = x0_;  // the stage starts with this block's MLP half: its input is res1
    }
    if (a.mlp) {
      a.ln2 = take(N * C);
      a.ln2_mean = take(N);
      a.ln2_rstd = take(N);
      a.fch = take(N * 4 * C);
      a.fch_gelu = take(N * 4 * C);
      a.res2 = take(N * C);
    } else {
      a.res2 = a.res1;  // the stage ends after this block's attention half: res1 is its output
    }
  }
  if (stage.has_head) {
    lnf_ = take(N * C);
    lnf_mean_ = take(N);
    lnf_rstd_ = take(N);
    probs_ = take(N * cfg.vocab_size);  // logits → probabilities → dlogits, in place
    losses_ = take(N);
  }
  grads_begin_ = used;
  dstream_.resize(nl + 1);
  for (size_t& d : dstream_) d = take(N * C);
  for (int k = 0; k < nl; ++k) {
    LayerActs& a = acts_[k];
    // A split block's dres1 is a stage boundary gradient: the MLP half's stage sends it (as
    // dx_in, from dstream_[0]), the attention half's stage receives it (dx_out, in
    // dstream_[nl]).
    if (!a.attn) {
      a.dres1 = dstream_[k];
    } else if (!a.mlp) {
      a.dres1 = dstream_[k + 1];
    } else {
      a.dres1 = take(N * C);
    }
    if (a.mlp) {
      a.dfch = take(N * 4 * C);
      a.dln2 = take(N * C);
    }
    if (a.attn) {
      a.dqkv = take(N * 3 * C);
      a.dln1 = take(N * C);
    }
  }
  if (stage.has_head) dlnf_ = take(N * C);
  slot_elems_ = used;
  const size_t ints = (stage.has_embedding ? N : 0) + (stage.has_head ? N : 0);
  slot_bytes_ = slot_elems_ * sizeof(T) + ints * sizeof(int);

  scratch_elems_ = 0;
  datty_ = 0;
  dfch_gelu_ = round_up(N * C);
  scratch_elems_ = dfch_gelu_ + N * 4 * C;

  params_ = static_cast<T*>(backend_.alloc(layout_.total * sizeof(T)));
  grads_ = static_cast<T*>(backend_.alloc(layout_.total * sizeof(T)));
  scratch_ = static_cast<T*>(backend_.alloc(scratch_elems_ * sizeof(T)));
  slots_.resize(slots);
  for (Slot& s : slots_) {
    s.buf = static_cast<T*>(backend_.alloc(slot_elems_ * sizeof(T)));
    if (stage.has_embedding) s.tokens = static_cast<int*>(backend_.alloc(N * sizeof(int)));
    if (stage.has_head) s.targets = static_cast<int*>(backend_.alloc(N * sizeof(int)));
  }
  std::vector<T> host(layout_.total);
  init_parameters(cfg, layout_, seed, host.data());
  backend_.from_host(params_, host.data(), layout_.total * sizeof(T));
}

template <typename T>
StageModelT<T>::~StageModelT() {
  for (Slot& s : slots_) {
    backend_.free(s.buf);
    if (s.tokens) backend_.free(s.tokens);
    if (s.targets) backend_.free(s.targets);
  }
  backend_.free(scratch_);
  backend_.free(grads_);
  backend_.free(params_);
}

template <typename T>
typename StageModelT<T>::SlotState StageModelT<T>::slot_state(int slot) const {
  if (slot < 0 || slot >= num_slots()) {
    throw std::out_of_range("StageModel: slot " + std::to_string(slot) + " out of range [0, " +
                            std::to_string(num_slots()) + ")");
  }
  return slots_[slot].state;
}

template <typename T>
void StageModelT<T>::check_slot(int slot, SlotState expected, const char* op) const {
  static const char* names[] = {"free", "holding a forward", "waiting for backward_weight"};
  const SlotState s = slot_state(slot);
  if (s != expected) {
    throw std::logic_error(std::string("StageModel: ") + op + " on slot " + std::to_string(slot) +
                           " which is " + names[static_cast<int>(s)] + " (expected " +
                           names[static_cast<int>(expected)] + ")");
  }
}

template <typename T>
size_t StageModelT<T>::tensor_offset(int local_layer, int kind) const {
  return toff_[local_layer][kind];
}

template <typename T>
const T* StageModelT<T>::layer_input(const Slot& s, int k) const {
  return k == 0 ? s.buf + x0_ : s.buf + acts_[k - 1].res2;
}

template <typename T>
const T* StageModelT<T>::stage_output(const Slot& s) const {
  return layer_input(s, static_cast<int>(acts_.size()));
}

template <typename T>
T* StageModelT<T>::param_tensor(const std::string& name) {
  const TensorInfo* t = layout_.find(name);
  return t ? params_ + t->offset : nullptr;
}

template <typename T>
T* StageModelT<T>::grad_tensor(const std::string& name) {
  const TensorInfo* t = layout_.find(name);
  return t ? grads_ + t->offset : nullptr;
}

template <typename T>
void StageModelT<T>::release(int slot) {
  slot_state(slot);  // range check
  slots_[slot].state = SlotState::kFree;
}

template <typename T>
void StageModelT<T>::zero_grad() {
  backend_.zero(grads_, layout_.total * sizeof(T));
}

template <typename T>
T StageModelT<T>::forward(int slot, const T* p, const int* tokens, const T* x_in,
                          const int* targets, T* x_out) {
  check_slot(slot, SlotState::kFree, "forward");
  Slot& s = slots_[slot];
  BackendT<T>& be = backend_;
  const int N = B_ * T_, C = cfg_.channels, NH = cfg_.heads;
  const size_t NC = static_cast<size_t>(N) * C;
  T* buf = s.buf;

  if (stage_.has_embedding) {
    if (!tokens) throw std::invalid_argument("StageModel::forward: first stage needs tokens");
    be.from_host(s.tokens, tokens, static_cast<size_t>(N) * sizeof(int));
    be.embedding_forward(buf + x0_, s.tokens, p + wte_, p + wpe_, B_, T_, C, cfg_.vocab_size);
  } else {
    if (!x_in) throw std::invalid_argument("StageModel::forward: stage needs x_in");
    be.copy(buf + x0_, x_in, NC * sizeof(T));  // the sender may reuse its buffer
  }

  for (int k = 0; k < static_cast<int>(acts_.size()); ++k) {
    const LayerActs& a = acts_[k];
    const T* in = layer_input(s, k);
    if (a.attn) {
      be.layernorm_forward(buf + a.ln1, buf + a.ln1_mean, buf + a.ln1_rstd, in,
                           p + tensor_offset(k, kLn1w), p + tensor_offset(k, kLn1b), N, C);
      be.matmul_forward(buf + a.qkv, buf + a.ln1, p + tensor_offset(k, kQkvw),
                        p + tensor_offset(k, kQkvb), N, C, 3 * C);
      be.attention_forward(buf + a.atty, buf + a.att, buf + a.qkv, B_, T_, C, NH);
      be.matmul_forward(buf + a.res1, buf + a.atty, p + tensor_offset(k, kAttprojw),
                        p + tensor_offset(k, kAttprojb), N, C, C);
      be.residual_forward(buf + a.res1, in, buf + a.res1, NC);
    }
    if (!a.mlp) continue;
    be.layernorm_forward(buf + a.ln2, buf + a.ln2_mean, buf + a.ln2_rstd, buf + a.res1,
                         p + tensor_offset(k, kLn2w), p + tensor_offset(k, kLn2b), N, C);
    be.matmul_forward(buf + a.fch, buf + a.ln2, p + tensor_offset(k, kFcw),
                      p + tensor_offset(k, kFcb), N, C, 4 * C);
    be.gelu_forward(buf + a.fch_gelu, buf + a.fch, NC * 4);
    be.matmul_forward(buf + a.res2, buf + a.fch_gelu, p + tensor_offset(k, kFcprojw),
                      p + tensor_offset(k, kFcprojb), N, 4 * C, C);
    be.residual_forward(buf + a.res2, buf + a.res1, buf + a.res2, NC);
  }

  T loss = std::numeric_limits<T>::quiet_NaN();
  if (stage_.has_head) {
    if (!targets) throw std::invalid_argument("StageModel::forward: last stage needs targets");
    const int V = cfg_.vocab_size;
    be.from_host(s.targets, targets, static_cast<size_t>(N) * sizeof(int));
    be.layernorm_forward(buf + lnf_, buf + lnf_mean_, buf + lnf_rstd_, stage_output(s), p + lnfw_,
                         p + lnfb_, N, C);
    be.matmul_forward(buf + probs_, buf + lnf_, p + lm_head_, nullptr, N, C, V);
    be.softmax_xent_forward(buf + losses_, buf + probs_, buf + probs_, s.targets, N, V);
    std::vector<T> losses(N);
    be.to_host(losses.data(), buf + losses_, static_cast<size_t>(N) * sizeof(T));
    double sum = 0.0;
    for (T l : losses) sum += l;
    loss = static_cast<T>(sum / N);
  } else {
    if (!x_out) throw std::invalid_argument("StageModel::forward: stage needs x_out");
    be.copy(x_out, stage_output(s), NC * sizeof(T));
  }
  s.state = SlotState::kForwardDone;
  return loss;
}

template <typename T>
void StageModelT<T>::backward_input(int slot, const T* p, const T* dx_out, T* dx_in, T loss_scale,
                                    const T* norm_params) {
  check_slot(slot, SlotState::kForwardDone, "backward_input");
  const T* pn = norm_params ? norm_params : p;  // LayerNorm weights
  Slot& s = slots_[slot];
  BackendT<T>& be = backend_;
  const int N = B_ * T_, C = cfg_.channels, NH = cfg_.heads;
  const size_t NC = static_cast<size_t>(N) * C;
  T* buf = s.buf;
  const int nl = static_cast<int>(acts_.size());
  be.zero(buf + grads_begin_, (slot_elems_ - grads_begin_) * sizeof(T));

  if (stage_.has_head) {
    const int V = cfg_.vocab_size;
    // d(mean loss)/d(token loss) = 1/N, times the accumulation scale.
    be.softmax_xent_backward(buf + probs_, buf + probs_, s.targets,
                             static_cast<T>(loss_scale / static_cast<T>(N)), N, V);
    be.matmul_backward_input(buf + dlnf_, buf + probs_, p + lm_head_, N, C, V);
    be.layernorm_backward_input(buf + dstream_[nl], buf + dlnf_, stage_output(s), pn + lnfw_,
                                buf + lnf_mean_, buf + lnf_rstd_, N, C);
  } else {
    if (!dx_out) throw std::invalid_argument("StageModel::backward_input: stage needs dx_out");
    be.copy(buf + dstream_[nl], dx_out, NC * sizeof(T));  // backward_weight still needs it
  }

  T* datty = scratch_ + datty_;
  T* dfch_gelu = scratch_ + dfch_gelu_;
  for (int k = nl - 1; k >= 0; --k) {
    const LayerActs& a = acts_[k];
    const T* dres2 = buf + dstream_[k + 1];
    if (a.mlp) {
      be.zero(dfch_gelu, NC * 4 * sizeof(T));
      be.matmul_backward_input(dfch_gelu, dres2, p + tensor_offset(k, kFcprojw), N, 4 * C, C);
      be.gelu_backward(buf + a.dfch, buf + a.fch, dfch_gelu, NC * 4);
      be.matmul_backward_input(buf + a.dln2, buf + a.dfch, p + tensor_offset(k, kFcw), N, C, 4 * C);
      be.accumulate(buf + a.dres1, dres2, NC);  // residual branch
      be.layernorm_backward_input(buf + a.dres1, buf + a.dln2, buf + a.res1,
                                  pn + tensor_offset(k, kLn2w), buf + a.ln2_mean, buf + a.ln2_rstd,
                                  N, C);
    }  // else dres1 is dstream_[k + 1], the gradient the next stage sent
    if (!a.attn) continue;  // dres1 is dstream_[0], sent to the previous stage
    be.zero(datty, NC * sizeof(T));
    be.matmul_backward_input(datty, buf + a.dres1, p + tensor_offset(k, kAttprojw), N, C, C);
    be.attention_backward(buf + a.dqkv, datty, buf + a.qkv, buf + a.att, B_, T_, C, NH);
    be.matmul_backward_input(buf + a.dln1, buf + a.dqkv, p + tensor_offset(k, kQkvw), N, C, 3 * C);
    T* din = buf + dstream_[k];
    be.accumulate(din, buf + a.dres1, NC);  // residual branch
    be.layernorm_backward_input(din, buf + a.dln1, layer_input(s, k), pn + tensor_offset(k, kLn1w),
                                buf + a.ln1_mean, buf + a.ln1_rstd, N, C);
  }

  if (!stage_.has_embedding) {
    if (!dx_in) throw std::invalid_argument("StageModel::backward_input: stage needs dx_in");
    be.copy(dx_in, buf + dstream_[0], NC * sizeof(T));
  }
  s.state = SlotState::kInputGradDone;
}

template <typename T>
void StageModelT<T>::backward_weight(int slot) {
  check_slot(slot, SlotState::kInputGradDone, "backward_weight");
  Slot& s = slots_[slot];
  BackendT<T>& be = backend_;
  const int N = B_ * T_, C = cfg_.channels;
  T* buf = s.buf;
  T* g = grads_;
  const int nl = static_cast<int>(acts_.size());

  if (stage_.has_head) {
    be.matmul_backward_weight(g + lm_head_, nullptr, buf + probs_, buf + lnf_, N, C,
                              cfg_.vocab_size);
    be.layernorm_backward_params(g + lnfw_, g + lnfb_, buf + dlnf_, stage_output(s),
                                 buf + lnf_mean_, buf + lnf_rstd_, N, C);
  }
  for (int k = nl - 1; k >= 0; --k) {
    const LayerActs& a = acts_[k];
    if (a.mlp) {
      be.matmul_backward_weight(g + tensor_offset(k, kFcprojw), g + tensor_offset(k, kFcprojb),
                                buf + dstream_[k + 1], buf + a.fch_gelu, N, 4 * C, C);
      be.matmul_backward_weight(g + tensor_offset(k, kFcw), g + tensor_offset(k, kFcb),
                                buf + a.dfch, buf + a.ln2, N, C, 4 * C);
      be.layernorm_backward_params(g + tensor_offset(k, kLn2w), g + tensor_offset(k, kLn2b),
                                   buf + a.dln2, buf + a.res1, buf + a.ln2_mean, buf + a.ln2_rstd,
                                   N, C);
    }
    if (!a.attn) continue;
    be.matmul_backward_weight(g + tensor_offset(k, kAttprojw), g + tensor_offset(k, kAttprojb),
                              buf + a.dres1, buf + a.atty, N, C, C);
    be.matmul_backward_weight(g + tensor_offset(k, kQkvw), g + tensor_offset(k, kQkvb),
                              buf + a.dqkv, buf + a.ln1, N, C, 3 * C);
    be.layernorm_backward_params(g + tensor_offset(k, kLn1w), g + tensor_offset(k, kLn1b),
                                 buf + a.dln1, layer_input(s, k), buf + a.ln1_mean,
                                 buf + a.ln1_rstd, N, C);
  }
  if (stage_.has_embedding) {
    be.embedding_backward(g + wte_, g + wpe_, buf + dstream_[0], s.tokens, B_, T_, C);
  }
  s.state = SlotState::kFree;
}

template <typename T>
void StageModelT<T>::backward(int slot, const T* params, const T* dx_out, T* dx_in, T loss_scale,
                              const T* norm_params) {
  backward_input(slot, params, dx_out, dx_in, loss_scale, norm_params);
  backward_weight(slot);
}

template <typename T>
void sum_tied_embedding_grads(StageModelT<T>& first, StageModelT<T>& last) {
  if (!first.config().tied_embeddings) {
    throw std::logic_error("sum_tied_embedding_grads: the model does not tie its embeddings");
  }
  const TensorInfo* wte = first.layout().find("wte");
  const TensorInfo* head = last.layout().find("lm_head");
  if (!wte || !head || !head->tied_to_wte || wte->size != head->size) {
    throw std::logic_error(
        "sum_tied_embedding_grads: pass the stage with the embedding and the stage with the "
        "head");
  }
  T* gw = first.grads() + wte->offset;
  T* gh = last.grads() + head->offset;
  first.backend().accumulate(gw, gh, wte->size);
  first.backend().copy(gh, gw, wte->size * sizeof(T));
}

template class StageModelT<float>;
template class StageModelT<double>;
template void sum_tied_embedding_grads<float>(StageModelT<float>&, StageModelT<float>&);
template void sum_tied_embedding_grads<double>(StageModelT<double>&, StageModelT<double>&);

}  // namespace paci
