// The analytic GPT cost model: durations and memory of each stage of a GPT-2-style decoder
// (pre-LayerNorm, GELU MLP of width 4d, learned positions, untied LM head by default) on a
// named device, from FLOPs and bytes per layer.
//
// Per layer and micro-batch (b sequences of s tokens, width h, e bytes per element):
//   forward FLOPs   24 b s h^2 (QKV, projection, MLP) + 4 b s^2 h (scores and values)
//   input grad I    24 b s h^2 + 8 b s^2 h (all of attention's backward is input-side)
//   weight grad W   24 b s h^2;   B = I + W
// plus elementwise traffic (LayerNorm, GELU, residuals, bias: ~20 b s h e bytes forward,
// twice that backward) at 80% of memory bandwidth. The head adds 2 b s h V FLOPs forward
// (and the same for I and for W) and a fused cross-entropy's traffic: the b s V logits
// written and read once forward, read and overwritten by their gradient backward. GEMM time uses
// `efficiency` of the dense peak: 0.7 by default, below the ~790 TFLOP/s (0.8 of peak) a large
// bf16 GEMM reaches on an H100, because a layer's GEMMs are smaller and attention is not
// dense GEMM; whole-layer utilisation then lands near the 50-60% MFU llm.c reports.
// Memory per stage: weights (bf16 copy + fp32 master, or fp32), fp32 gradients, AdamW's two
// fp32 moments; activations 34 s b h e/2 bytes per layer (Korthikanti et al. 2022, flash
// attention, no recomputation), of which the inputs of the four linears (14 s b h e/2)
// stay for W and the rest is freed by I; the head keeps the b s V logits until I.
// Transfers carry b s h e bytes each way. OPT streams ~30 bytes per parameter.
//
// Layers are split into contiguous stages (embedding on the first, final LayerNorm + head +
// loss on the last) minimising the slowest stage's F + B.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/cost.h"

namespace paci {

struct GptShape {
  std::string name;
  int layers = 0, d_model = 0, heads = 0, seq = 0, vocab = 0;
  bool tied = false;  // LM head shares the token embedding (then both ends hold a copy)
  double params() const;
};

struct DeviceSpec {
  std::string name;
  double peak_flops = 0;     // dense bf16 FLOP/s (fp32 runs use fp32_flops)
  double fp32_flops = 0;     // dense fp32 (TF32 tensor core) FLOP/s
  double efficiency = 0.7;   // achievable share of peak for the model's GEMMs
  double memory_bandwidth = 0;  // bytes/s
  double link_bandwidth = 0;    // bytes/s per direction between neighbouring devices
  double link_latency = 0;      // seconds per transfer
  double memory = 0;            // bytes
};

// gpt2-124m, gpt2-350m (= gpt2-medium, the paper's model), gpt2-774m, gpt2-1558m, or
// "custom:layers=24,d=1024,heads=16,seq=1024,vocab=50257[,tied=1]". Throws CostError.
GptShape parse_gpt_model(std::string_view spec);
// h100 (SXM: 989 TFLOP/s dense bf16, 3.35 TB/s, 80 GB, NVLink 4 at 450 GB/s per direction
// of which 80% is used), h200 (same compute, 4.8 TB/s, 141 GB), or
// "custom:flops=4e14,membw=2e12,linkbw=1e11,mem=4e10[,eff=0.7,latency=1e-5,fp32flops=..]".
DeviceSpec parse_device(std::string_view spec);
std::vector<std::string> gpt_model_names();
std::vector<std::string> device_names();

struct GptCostOptions {
  GptShape model;
  DeviceSpec device;
  int stages = 1;          // S stages (devices x virtual stages)
  int micro_batch = 8;     // sequences per micro-batch
  std::string precision = "bf16";  // bf16 (mixed, fp32 master) or fp32
};

struct GptCost {
  CostModel cost;                       // one StageCost per stage
  std::vector<int> layers_per_stage;
  std::vector<double> params_per_stage;
};

GptCost gpt_cost_model(const GptCostOptions& o);

}  // namespace paci
