#include "cli/model_flags.h"

#include <unistd.h>

#include <sstream>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/list_flags.h"
#include "sim/builders.h"
#include "sim/gpt_cost.h"
#include "schedules/files.h"

namespace paci::cli {

void ModelFlags::add_to(CLI::App* cmd, bool) {
  cmd->add_option("--model", model, "Model preset: tiny, gpt2-124m, gpt2-350m")->capture_default_str();
  cmd->add_option("--layers", layers, "Override the preset's layers");
  cmd->add_option("--channels", channels, "Override the preset's width");
  cmd->add_option("--heads", heads, "Override the preset's attention heads");
  cmd->add_option("--seq", seq, "Sequence length T of a micro-batch (default: the preset's context)");
  cmd->add_option("--vocab", vocab, "Vocabulary size (only with --data synthetic)");
  cmd->add_flag("--tied", tied, "Tie the LM head to the token embedding (default untied)");
  cmd->add_option("--batch,-B", batch, "Sequences per micro-batch")->capture_default_str();
  cmd->add_option("--partition", partition,
                  "Stage layout, one entry per stage: blocks, halves allowed, E = embedding, H = head, e.g. "
                  "E+3,3.5,3.5,3+H or E,6,6,H or 2,1,1 (default: balanced by cost; see README)");
}

GptConfig ModelFlags::config(bool synthetic_data) const {
  GptConfig c;
  try {
    c = preset(model);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("--model: {}", e.what()));
  }
  if (layers) c.layers = *layers;
  if (channels) c.channels = *channels;
  if (heads) c.heads = *heads;
  if (tied) c.tied_embeddings = true;
  if (vocab) {
    if (!synthetic_data)
      throw UsageError("--vocab only applies to --data synthetic (GPT-2 data has 50257 tokens)");
    c.vocab_size = c.padded_vocab = *vocab;
  }
  // Fixed limits first (so the estimate below cannot overflow), then a memory estimate.
  if (layers && (*layers < 0 || *layers > 4096))
    throw UsageError(fmt::format("--layers must be in 0..4096 (got {})", *layers));
  if (channels && (*channels < 1 || *channels > 65536))
    throw UsageError(fmt::format("--channels must be in 1..65536 (got {})", *channels));
  if (heads && (*heads < 1 || *heads > 4096))
    throw UsageError(fmt::format("--heads must be in 1..4096 (got {})", *heads));
  if (vocab && (*vocab < 1 || *vocab > (1 << 24)))
    throw UsageError(fmt::format("--vocab must be in 1..{} (got {})", 1 << 24, *vocab));
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (batch < 1 || batch > kMaxBatch)
    throw UsageError(fmt::format("--batch must be in 1..{} (got {})", kMaxBatch, batch));
  const int T = seq_len(c);
  const double need = estimated_bytes(c, batch, T);
  const double have = physical_memory_bytes();
  if (have > 0 && need > have)
    throw UsageError(fmt::format("--batch {} with {} (T {}): one micro-batch needs about {:.1f} GiB (activations "
                                 "of {} x {} tokens plus weights and AdamW state) but this machine has {:.1f} GiB",
                                 batch, describe(c), T, need / (1ull << 30), batch, T, have / (1ull << 30)));
  return c;
}

double estimated_bytes(const GptConfig& c, int batch, int T) {
  // fp32: weights, gradients and AdamW's two moments (4 copies of the parameters), and per
  // token of a micro-batch about 16 C floats per layer plus attention scores (2 H T) and the
  // logits and their gradient (2 Vp).
  const double params = static_cast<double>(num_parameters(c));
  const double per_token = static_cast<double>(c.layers) * (16.0 * c.channels + 2.0 * c.heads * T) +
                           2.0 * c.padded_vocab + 4.0 * c.channels;
  return 4.0 * (4.0 * params + static_cast<double>(batch) * T * per_token);
}

double physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<double>(pages) * size : 0;
}

int ModelFlags::seq_len(const GptConfig& cfg) const {
  int t = seq.value_or(cfg.seq_len);
  if (t < 1 || t > cfg.seq_len)
    throw UsageError(fmt::format("--seq must be in 1..{} (the model's context; got {})", cfg.seq_len, t));
  return t;
}

std::vector<StagePartition> ModelFlags::stage_partition(const GptConfig& cfg, int stages) const {
  return partition_flag(cfg, partition, stages);
}

std::vector<StagePartition> partition_flag(const GptConfig& cfg, const std::string& partition, int stages) {
  std::vector<StagePartition> parts;
  try {
    parts = partition.empty() ? balanced_partition(cfg, stages) : parse_layout(cfg, partition);
  } catch (const std::invalid_argument& e) {
    std::string why = e.what();
    if (why.rfind("partition: ", 0) == 0) why = why.substr(11);
    // The layout parser may quote the entry it rejects: keep the message one short line.
    throw UsageError(fmt::format("{}: {}", partition.empty() ? "--stages" : "--partition", excerpt(why, 300)));
  }
  if (stages > 0 && static_cast<int>(parts.size()) != stages)
    throw UsageError(fmt::format("--partition has {} entries, the schedule has {} stages", parts.size(), stages));
  return parts;
}

Calibration load_calibration(const std::string& path) {
  try {
    return calibration_from_json(read_input_file(path, "--calibration"), path);
  } catch (const CalibrationError& e) {
    throw UsageError(e.what());
  } catch (const InputError& e) {
    throw UsageError(e.what());
  }
}

ScheduleBuilders ModelFlags::schedule_builders(const GptConfig& cfg, const std::string& calibration) const {
  const ModelFlags flags = *this;
  if (!calibration.empty()) {
    const Calibration cal = load_calibration(calibration);
    return simulator_builders([flags, cfg, cal](int stages) {
      std::vector<StageComposition> comps;
      for (const StagePartition& p : flags.stage_partition(cfg, stages)) comps.push_back(composition_of(p));
      try {
        return cost_for_partition(cal, comps);
      } catch (const CalibrationError& e) {
        throw UsageError(e.what());
      }
    });
  }
  auto cost = [flags, cfg](int stages) {
    GptCostOptions c;
    c.model = cfg;
    c.partition = flags.stage_partition(cfg, stages);  // the partition the run uses
    c.device = parse_device("h100");
    c.stages = stages;
    c.micro_batch = flags.batch;
    c.precision = "fp32";
    return gpt_cost_model(c).cost;
  };
  return simulator_builders(cost);
}

void ScheduleFlags::add_to(CLI::App* cmd, const std::string& schedule_help) {
  auto* sched = cmd->add_option("--schedule", schedule,
                                schedule_help.empty() ? "Schedule name (see `paci schedules`; zb-1p, zb-2p and "
                                                        "paci-dynamic are built from the analytic model of the "
                                                        "trained model, paci-v is fitted to it)"
                                                      : schedule_help);
  if (!schedule.empty()) sched->capture_default_str();
  cmd->add_option("--file", file, "A schedule file instead of --schedule: CSV (PyTorch action strings) or JSON "
                                  "(paci show --export, paci sim --export); --steps defaults to the file's");
  cmd->add_option("--policy", policy,
                  "Weight policy of a CSV --file: current, stash, double-buffer, forward or recompute (default "
                  "current; the last two are the --backward semantics)");
  cmd->add_option("--backward", backward,
                  "Backward semantics of a schedule whose backward uses the current weights (paci, 1f1b, "
                  "...): current (default), forward (matmul input gradients with the forward's weights, as "
                  "under bf16 autocast; LayerNorm current; a weight copy per version in flight) or recompute "
                  "(the stage forward rerun with the current weights before each B; only stage inputs kept)");
  auto* p = cmd->add_option("--stages,-P", stages, "Pipeline stages = devices P (>= 1)");
  microbatches_opt = cmd->add_option("--microbatches,-M", microbatches, "Micro-batches per optimizer step M (>= 1)");
  if (stages > 0) p->capture_default_str();
  if (microbatches > 0) microbatches_opt->capture_default_str();
  steps_opt = cmd->add_option("--steps,-N", steps, "Optimizer steps N (global batches of M micro-batches)")
                  ->capture_default_str();
  cmd->add_option("--virtual,-v", virtual_stages, "Virtual stages per device (interleaved-1f1b, interleaved-zb, looped-bfs; default 2)");
  cmd->add_option("--accum,-a", accum, "paci, paci-v: micro-batches per update of a stage (default M)");
}

ScheduleRequest ScheduleFlags::request() const {
  ScheduleRequest r;
  r.params = params();
  if (!backward.empty()) {
    r.backward = parse_policy(backward);
    if (!r.backward || (*r.backward != WeightPolicy::kCurrent && *r.backward != WeightPolicy::kForward &&
                        *r.backward != WeightPolicy::kRecompute))
      throw UsageError(fmt::format("--backward: unknown backward semantics '{}' (allowed: current, forward, "
                                   "recompute)", excerpt(backward)));
  }
  if (file.empty()) {
    r.name = schedule;
    return r;
  }
  r.file = user_path(file);
  r.params.steps = steps_opt && steps_opt->count() ? steps : 0;  // 0: the file's
  if (microbatches_opt && microbatches_opt->count()) r.hints.microbatches = microbatches;
  if (!policy.empty()) {
    r.hints.policy = parse_policy(policy);
    if (!r.hints.policy)
      throw UsageError(fmt::format("--policy: unknown weight policy '{}' (allowed: current, stash, double-buffer, "
                                   "forward, recompute)",
                                   excerpt(policy)));
  }
  return r;
}

ScheduleRequest ScheduleFlags::request_for(const std::string& name) const {
  ScheduleFlags f = *this;
  f.schedule = name;
  const ScheduleInfo* info = find_schedule(name);
  if (!info || !info->uses_virtual) f.virtual_stages.reset();
  if (!info || !info->uses_accum) f.accum.reset();
  return f.request();
}

ScheduleParams ScheduleFlags::params() const {
  ScheduleParams p;
  p.stages = stages;
  p.microbatches = microbatches;
  p.steps = steps;
  p.virtual_stages = virtual_stages;
  p.accum = accum;
  return p;
}

}  // namespace paci::cli
