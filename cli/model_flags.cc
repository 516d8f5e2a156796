#include "cli/model_flags.h"

#include <sstream>

#include <fmt/format.h>

#include "cli/common.h"

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
  cmd->add_option("--partition", partition, "Layers per stage, e.g. 2,1,1 (default: balanced by cost)");
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
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  if (batch < 1) throw UsageError(fmt::format("--batch must be >= 1 (got {})", batch));
  seq_len(c);
  return c;
}

int ModelFlags::seq_len(const GptConfig& cfg) const {
  int t = seq.value_or(cfg.seq_len);
  if (t < 1 || t > cfg.seq_len)
    throw UsageError(fmt::format("--seq must be in 1..{} (the model's context; got {})", cfg.seq_len, t));
  return t;
}

std::vector<int> ModelFlags::layers_per_stage() const {
  std::vector<int> out;
  if (partition.empty()) return out;
  std::stringstream ss(partition);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      int n = std::stoi(item, &used);
      if (used != item.size() || n < 0) throw std::invalid_argument(item);
      out.push_back(n);
    } catch (const std::exception&) {
      throw UsageError(fmt::format("--partition: '{}' is not a list of layer counts such as 2,1,1", partition));
    }
  }
  return out;
}

std::vector<StagePartition> ModelFlags::stage_partition(const GptConfig& cfg, int stages) const {
  std::vector<int> lps = layers_per_stage();
  std::vector<StagePartition> parts;
  try {
    parts = lps.empty() ? balanced_partition(cfg, stages) : partition_from_layers(cfg, lps);
  } catch (const std::invalid_argument& e) {
    std::string why = e.what();
    if (why.rfind("partition: ", 0) == 0) why = why.substr(11);
    throw UsageError(fmt::format("{}: {}", lps.empty() ? "--stages" : "--partition", why));
  }
  if (static_cast<int>(parts.size()) != stages)
    throw UsageError(fmt::format("--partition has {} entries, the schedule has {} stages", parts.size(), stages));
  return parts;
}

void ScheduleFlags::add_to(CLI::App* cmd) {
  cmd->add_option("--schedule", schedule, "Schedule name (see `paci schedules`)")->capture_default_str();
  cmd->add_option("--stages,-P", stages, "Pipeline stages = devices")->capture_default_str();
  cmd->add_option("--microbatches,-M", microbatches, "Micro-batches per optimizer step")->capture_default_str();
  cmd->add_option("--steps,-N", steps, "Optimizer steps (global batches of M micro-batches)")->capture_default_str();
  cmd->add_option("--virtual,-v", virtual_stages, "Virtual stages per device (interleaved-1f1b)");
  cmd->add_option("--accum,-a", accum, "paci: micro-batches per update of a stage (default M)");
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
