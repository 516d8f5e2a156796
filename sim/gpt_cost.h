// The analytic GPT cost model: durations and memory of each stage of a GPT-2-style decoder
// (pre-LayerNorm, GELU MLP of width 4d, learned positions, untied LM head by default) on a
// named device, from FLOPs and bytes per layer.
//
// The model is a GptConfig (exec/model/config.h: the one model description of sim and exec;
// presets, parameter counts and per-unit FLOPs come from there), split into units: the
// embedding, an attention half and an MLP half per block, the final LayerNorm + head + loss.
//
// Per unit and micro-batch (b sequences of s tokens, width h, e bytes per element), with
// FLOPs from unit_flops():
//   forward F       GEMMs (attention half 8 b s h^2, MLP half 16 b s h^2, head 2 b s h V)
//                   + attention 4 b s^2 h (attention half)
//   input grad I    GEMMs + 2 x attention (all of attention's backward is input-side)
//   weight grad W   GEMMs;   B = I + W
// plus elementwise traffic (LayerNorm, GELU, residuals, bias: ~8 b s h e bytes forward in the
// attention half and ~12 in the MLP half, twice that backward) at 80% of memory bandwidth.
// The head adds a fused cross-entropy's traffic: the b s V logits written and read once
// forward, read and overwritten by their gradient backward. GEMM time uses `efficiency` of
// the dense peak: 0.7 by default, below the ~790 TFLOP/s (0.8 of peak) a large bf16 GEMM
// reaches on an H100, because a layer's GEMMs are smaller and attention is not dense GEMM;
// whole-layer utilisation then lands near the 50-60% MFU llm.c reports.
// Memory per stage: weights (bf16 copy + fp32 master; fp32 master alone under autocast, or
// fp32), fp32 gradients, AdamW's two fp32 moments (a tied head holds its own copy of wte on
// the last stage); under autocast each micro-batch also keeps the bf16 casts of the matmul
// weights its forward made, until its I; under `--backward forward` a weight version in
// flight costs a whole fp32 copy (fp32), the bf16 copy of the matmul weights (bf16), or
// nothing beyond those casts (autocast: 1F1B holds them too); activations
// 34 s b h e/2 bytes per block (Korthikanti et al. 2022, flash attention, no recomputation:
// 13 in the attention half, 21 in the MLP half), of which the inputs of the four linears
// (4 + 10) stay for W and the rest is freed by I; the head keeps the b s V logits until I.
// Transfers carry b s h e bytes each way. OPT streams ~30 bytes per parameter.
//
// Units are split into contiguous stages by min_max_partition (exec/model/partition.h),
// minimising the slowest stage's F + B under an optional per-device memory limit, or an
// explicit partition is costed as given.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exec/model/config.h"
#include "exec/model/partition.h"
#include "sim/cost.h"

namespace paci {

// The analytic model's shapes are exec's GptConfig (one description of a model everywhere).
using GptShape = GptConfig;

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

// parse_model() (exec/model/config.h) with CostError and a "--model: " prefix: tiny,
// gpt2-124m (tied), gpt2-350m (= gpt2-medium, untied: the paper's model), gpt2-774m,
// gpt2-1558m, or "custom:layers=24,d=1024,heads=16,seq=1024,vocab=50257[,tied=1]".
GptConfig parse_gpt_model(std::string_view spec);
// h100 (SXM: 989 TFLOP/s dense bf16, 3.35 TB/s, 80 GB, NVLink 4 at 450 GB/s per direction
// of which 80% is used), h200 (same compute, 4.8 TB/s, 141 GB), or
// "custom:flops=4e14,membw=2e12,linkbw=1e11,mem=4e10[,eff=0.7,latency=1e-5,fp32flops=..]".
DeviceSpec parse_device(std::string_view spec);
std::vector<std::string> gpt_model_names();
std::vector<std::string> device_names();

struct GptCostOptions {
  GptConfig model;
  DeviceSpec device;
  int stages = 1;          // S stages (devices x virtual stages)
  int micro_batch = 8;     // sequences per micro-batch
  // bf16 (mixed: a bf16 copy beside the fp32 master), autocast (bf16 compute, only the fp32
  // master persists; each forward's casts of the matmul weights stay until its backward's I,
  // as under PyTorch autocast) or fp32.
  std::string precision = "bf16";
  // An explicit partition (e.g. parse_layout(model, "E+3,...,2.5+H")): costed as given; its
  // size must equal `stages`. Empty: min_max_partition over the units' F + B.
  std::vector<StagePartition> partition;
  // For the automatic partition: memory_limit bytes per device (0 = none) and the
  // micro-batches in flight per stage (the schedule's StageFacts::inflight_peak; empty: P - s).
  PartitionLimits limits;
};

// One unit's costs for one micro-batch under the analytic model.
struct GptUnitCost {
  double f = 0, i = 0, w = 0;                   // seconds
  double activation_bytes = 0, freed_by_i = 0;  // bytes per micro-batch
  double params = 0;         // unit_parameters(cfg, u): a tied head's shared wte not counted
  double stored_params = 0;  // what the stage holds (a tied head's copy of wte counted)
  double matmul_params = 0;  // what its matmuls read (unit_matmul_parameters)
  double static_bytes = 0;   // stored weights + gradients + optimizer state
  double flops = 0;          // training FLOPs (F + I + W) of the micro-batch
};
// All 2L + 2 units, in order. Throws CostError on a bad precision or micro-batch.
std::vector<GptUnitCost> gpt_unit_costs(const GptCostOptions& o);
// The same as the partitioner's input: time = f + i + w, static and activation bytes.
std::vector<UnitCost> gpt_partition_costs(const GptCostOptions& o);

struct GptCost {
  CostModel cost;                          // one StageCost per stage
  std::vector<StagePartition> partition;   // the partition costed (chosen or given)
  std::string layout;                      // format_layout(partition), e.g. "E+3,...,2.5+H"
  std::vector<int> layers_per_stage;       // blocks with at least one half on the stage
  std::vector<double> blocks_per_stage;    // halves / 2: 3.5 for a stage of 7 halves
  std::vector<double> params_per_stage;    // sums to num_parameters(model), tying included
  std::vector<double> flops_per_stage;     // training FLOPs per micro-batch
};

GptCost gpt_cost_model(const GptCostOptions& o);

}  // namespace paci
