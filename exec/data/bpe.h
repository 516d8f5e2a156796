// GPT-2 byte-level BPE, bit-compatible with the npm package gpt-3-encoder (the test oracle).
//
// Text is split by GPT-2's pre-tokenizer regex (PCRE2, UTF + UCP), each piece's UTF-8 bytes are
// mapped to GPT-2's printable byte alphabet, and merges from vocab.bpe are applied lowest rank
// first until none applies. Words are cached because natural text repeats them constantly.
#ifndef PACI_EXEC_DATA_BPE_H_
#define PACI_EXEC_DATA_BPE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace paci {

// GPT-2's <|endoftext|> id; prepare puts it before every document, as llm.c does.
inline constexpr int kGpt2EndOfText = 50256;

// Replaces each ill-formed UTF-8 subsequence by U+FFFD the way the WHATWG decoder (Node's
// Buffer/TextDecoder) does, so that encoding arbitrary bytes equals what the JS encoder does
// with the same bytes read as a UTF-8 string. Well-formed input is returned unchanged.
std::string sanitize_utf8(std::string_view bytes);

class BpeEncoder {
 public:
  // Loads `encoder.json` (token string -> id) and `vocab.bpe` (merges, one per line, by rank).
  // Throws std::runtime_error naming the file on any malformed content.
  static BpeEncoder load(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
  // Same, from a directory holding both files (e.g. the extracted npm `package/`).
  static BpeEncoder load_dir(const std::string& dir);

  BpeEncoder(BpeEncoder&&) noexcept;
  BpeEncoder& operator=(BpeEncoder&&) noexcept;
  ~BpeEncoder();

  // Token ids of `text` (UTF-8; ill-formed bytes are treated as U+FFFD, see sanitize_utf8).
  // Thread-safe: the word cache is guarded by a mutex.
  std::vector<int> encode(std::string_view text) const;

  // The bytes the ids stand for, concatenated. Unlike JS's TextDecoder this does not replace
  // ill-formed UTF-8, so decode(encode(x)) == x for every well-formed x and any id sequence
  // round-trips its raw bytes. Throws std::out_of_range for an id outside the vocabulary.
  std::string decode(const std::vector<int>& ids) const;

  // The pre-tokenizer's pieces of `text` (after sanitize_utf8), in order; their concatenation
  // is the sanitized text. Exposed for tests and debugging.
  std::vector<std::string> pre_tokenize(std::string_view text) const;

  int vocab_size() const;
  // Id of "<|endoftext|>", or -1 if the vocabulary has none.
  int end_of_text() const;

 private:
  struct Impl;
  explicit BpeEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace paci

#endif  // PACI_EXEC_DATA_BPE_H_
