#include "exec/data/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "schedules/files.h"

namespace paci {
namespace {

// JavaScript's \s (WhiteSpace + LineTerminator in ECMA-262): tab, LF, VT, FF, CR, every Zs
// character, LS, PS and U+FEFF. PCRE2's \s under UCP differs (no U+FEFF), so the pattern spells
// the JS set out instead of writing \s.
constexpr const char* kJsSpace =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
    "\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}";

// gpt-3-encoder's pattern, /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|
// \s+(?!\S)|\s+/gu, with \s and \S replaced by kJsSpace classes.
std::string gpt2_pattern() {
  const std::string s = kJsSpace;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + s + "\\p{L}\\p{N}]+|[" + s +
         "]+(?![^" + s + "])|[" + s + "]+";
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68 bytes
// are shifted to code points 256.. in byte order, so every byte has a visible character.
std::array<int, 256> byte_to_code_point() {
  std::array<int, 256> map{};
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    map[b] = printable ? b : 256 + shifted++;
  }
  return map;
}

// Decodes well-formed UTF-8 into code points; returns false on ill-formed input.
bool utf8_code_points(std::string_view s, std::vector<uint32_t>* out) {
  out->clear();
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<uint8_t>(s[i]);
    int extra = 0;
    uint32_t cp = 0;
    if (b < 0x80) {
      cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      extra = 1, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      extra = 2, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      extra = 3, cp = b & 0x07;
    } else {
      return false;
    }
    if (extra > 0 && i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      const auto c = static_cast<uint8_t>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    out->push_back(cp);
    i += 1 + extra;
  }
  return true;
}

uint64_t pair_key(int left, int right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

std::string sanitize_utf8(std::string_view s) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  std::string out;
  size_t copied_until = 0;  // s[copied_until, i) is well-formed and not yet copied
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    // WHATWG UTF-8 decoder bounds: the first continuation byte's range depends on the lead byte
    // (no overlongs, no surrogates, nothing above U+10FFFF).
    int need = 0;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b == 0xE0) {
      need = 2, lo = 0xA0;
    } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
      need = 2;
    } else if (b == 0xED) {
      need = 2, hi = 0x9F;
    } else if (b == 0xF0) {
      need = 3, lo = 0x90;
    } else if (b >= 0xF1 && b <= 0xF3) {
      need = 3;
    } else if (b == 0xF4) {
      need = 3, hi = 0x8F;
    }
    size_t j = i + 1;
    int seen = 0;
    while (seen < need && j < n) {
      const auto c = static_cast<uint8_t>(s[j]);
      if (c < lo || c > hi) break;
      lo = 0x80, hi = 0xBF;
      ++j, ++seen;
    }
    if (need > 0 && seen == need) {
      i = j;
      continue;
    }
    // Ill-formed: one U+FFFD for the maximal subpart s[i, j); the byte at j is decoded afresh.
    if (out.empty()) out.reserve(n + 16);
    out.append(s.substr(copied_until, i - copied_until));
    out += kReplacement;
    i = j;
    copied_until = j;
  }
  if (copied_until == 0) return std::string(s);
  out.append(s.substr(copied_until));
  return out;
}

struct BpeEncoder::Impl {
  struct Merge {
    int rank;
    int merged_id;
  };

  pcre2_code* regex = nullptr;
  std::vector<std::string> id_to_bytes;
  std::unordered_map<std::string, int> bytes_to_id;
  std::array<int, 256> byte_id{};
  std::unordered_map<uint64_t, Merge> merges;
  int end_of_text = -1;

  // Word (raw bytes) -> ids. Bounded so that adversarial input cannot grow it without limit.
  static constexpr size_t kMaxCacheEntries = 1 << 20;
  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int>> cache;

  ~Impl() {
    if (regex != nullptr) pcre2_code_free(regex);
  }

  void compile_regex() {
    const std::string pattern = gpt2_pattern();
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    regex = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (regex == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      throw std::runtime_error("GPT-2 pre-tokenizer regex does not compile at offset " +
                               std::to_string(error_offset) + ": " +
                               reinterpret_cast<const char*>(message));
    }
    // JIT is a large speed-up where available; without it the interpreter gives the same result.
    pcre2_jit_compile(regex, PCRE2_JIT_COMPLETE);
  }

  // Calls `piece(begin, end)` for each pre-tokenizer match in well-formed UTF-8 `text`.
  template <typename F>
  void split(std::string_view text, F&& piece) const {
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> match_data(
        pcre2_match_data_create_from_pattern(regex, nullptr), pcre2_match_data_free);
    if (match_data == nullptr) throw std::bad_alloc();
    pcre2_match_data* md = match_data.get();
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t offset = 0;
    while (offset < text.size()) {
      const int rc =
          pcre2_match(regex, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        throw std::runtime_error(std::string("GPT-2 pre-tokenizer failed: ") +
                                 reinterpret_cast<const char*>(message));
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[1] == ov[0]) {
        // No alternative can match empty, but never loop forever: step one code point, as JS
        // matchAll does with the u flag.
        ++offset;
        while (offset < text.size() && (static_cast<uint8_t>(text[offset]) & 0xC0) == 0x80) {
          ++offset;
        }
        continue;
      }
      piece(ov[0], ov[1]);
      offset = ov[1];
    }
  }

  // Applies merges to one pre-tokenized word. Semantics follow the reference (Python/JS) loop
  // exactly: take the lowest-rank adjacent pair, merge all its occurrences left to right, repeat.
  // A heap plus a linked list makes that O(n log n) instead of O(n^2) on long words (runs of
  // spaces or digits), processing one rank per round so that the result matches the reference.
  void bpe(std::string_view word, std::vector<int>* out) const {
    const int n = static_cast<int>(word.size());
    if (n == 1) {
      out->push_back(byte_id[static_cast<uint8_t>(word[0])]);
      return;
    }
    std::vector<int> sym(n), next(n), prev(n);
    for (int i = 0; i < n; ++i) {
      sym[i] = byte_id[static_cast<uint8_t>(word[i])];
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    struct Candidate {
      int rank;
      int pos;
      int left;
      int right;
      bool operator>(const Candidate& o) const {
        return rank != o.rank ? rank > o.rank : pos > o.pos;
      }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    auto push_pair = [&](int pos) {
      const int j = next[pos];
      if (j < 0) return;
      const auto it = merges.find(pair_key(sym[pos], sym[j]));
      if (it != merges.end()) heap.push({it->second.rank, pos, sym[pos], sym[j]});
    };
    auto still_valid = [&](const Candidate& c) {
      return sym[c.pos] == c.left && next[c.pos] >= 0 && sym[next[c.pos]] == c.right;
    };
    for (int i = 0; i + 1 < n; ++i) push_pair(i);

    std::vector<Candidate> round;
    while (!heap.empty()) {
      const Candidate top = heap.top();
      heap.pop();
      if (!still_valid(top)) continue;
      // All occurrences of this pair, already in left-to-right order (positions are original
      // byte offsets and a merged symbol keeps its left offset). New pairs created below always
      // contain the merged symbol, so they never have this rank and cannot join the round.
      round.assign(1, top);
      while (!heap.empty() && heap.top().rank == top.rank) {
        round.push_back(heap.top());
        heap.pop();
      }
      const int merged = merges.at(pair_key(top.left, top.right)).merged_id;
      for (const Candidate& c : round) {
        if (!still_valid(c)) continue;  // overlapped an occurrence merged just before
        const int j = next[c.pos];
        sym[c.pos] = merged;
        sym[j] = -1;
        next[c.pos] = next[j];
        if (next[j] >= 0) prev[next[j]] = c.pos;
        if (prev[c.pos] >= 0) push_pair(prev[c.pos]);
        push_pair(c.pos);
      }
    }
    for (int i = 0; i >= 0; i = next[i]) out->push_back(sym[i]);
  }

  void encode_word(std::string_view word, std::vector<int>* out) const {
    std::string key(word);
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      const auto it = cache.find(key);
      if (it != cache.end()) {
        out->insert(out->end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int> ids;
    bpe(word, &ids);
    out->insert(out->end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(std::move(key), std::move(ids));
  }
};

BpeEncoder::BpeEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BpeEncoder::BpeEncoder(BpeEncoder&&) noexcept = default;
BpeEncoder& BpeEncoder::operator=(BpeEncoder&&) noexcept = default;
BpeEncoder::~BpeEncoder() = default;

BpeEncoder BpeEncoder::load_dir(const std::string& dir) {
  return load(dir + "/encoder.json", dir + "/vocab.bpe");
}

BpeEncoder BpeEncoder::load(const std::string& encoder_json_path,
                            const std::string& vocab_bpe_path) {
  auto impl = std::make_unique<Impl>();
  const std::array<int, 256> b2u = byte_to_code_point();
  std::array<int, 324> u2b;  // 256 + 68 shifted code points
  u2b.fill(-1);
  for (int b = 0; b < 256; ++b) u2b[b2u[b]] = b;

  std::vector<uint32_t> cps;
  // Token strings in both files are written in the byte alphabet; turn them back into bytes.
  auto to_bytes = [&](std::string_view token, const std::string& file) {
    if (!utf8_code_points(token, &cps)) {
      throw std::runtime_error(file + ": token is not valid UTF-8");
    }
    std::string bytes;
    for (uint32_t cp : cps) {
      if (cp >= u2b.size() || u2b[cp] < 0) {
        throw std::runtime_error(file + ": token \"" + std::string(token) +
                                 "\" has a character outside GPT-2's byte alphabet");
      }
      bytes.push_back(static_cast<char>(u2b[cp]));
    }
    return bytes;
  };

  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(read_file(encoder_json_path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(encoder_json_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!vocab.is_object() || vocab.empty()) {
    throw std::runtime_error(encoder_json_path + ": expected an object of token -> id");
  }
  impl->id_to_bytes.assign(vocab.size(), std::string());
  std::vector<bool> seen(vocab.size(), false);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      throw std::runtime_error(encoder_json_path + ": id of \"" + it.key() +
                               "\" is not an integer");
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(vocab.size()) || seen[id]) {
      throw std::runtime_error(encoder_json_path + ": ids must be 0.." +
                               std::to_string(vocab.size() - 1) + " without gaps; bad id " +
                               std::to_string(id));
    }
    seen[id] = true;
    std::string bytes = to_bytes(it.key(), encoder_json_path);
    impl->id_to_bytes[id] = bytes;
    impl->bytes_to_id.emplace(std::move(bytes), static_cast<int>(id));
  }
  for (int b = 0; b < 256; ++b) {
    const auto it = impl->bytes_to_id.find(std::string(1, static_cast<char>(b)));
    if (it == impl->bytes_to_id.end()) {
      throw std::runtime_error(encoder_json_path + ": no token for byte " + std::to_string(b));
    }
    impl->byte_id[b] = it->second;
  }
  if (const auto it = impl->bytes_to_id.find("<|endoftext|>"); it != impl->bytes_to_id.end()) {
    impl->end_of_text = it->second;
  }

  // The JS reference parses vocab.bpe as lines[1 .. n-1): the first line is "#version: 0.2" and
  // the last is the empty string after the final newline.
  const std::string text = read_file(vocab_bpe_path);
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    const size_t end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.emplace_back(std::string_view(text).substr(start));
      break;
    }
    lines.emplace_back(std::string_view(text).substr(start, end - start));
    start = end + 1;
  }
  // The JS keys its rank table by `${first},${second}`; two different pairs with the same key
  // would make it diverge from true BPE. OpenAI's file has none; refuse a file that does rather
  // than silently differ from the oracle.
  std::unordered_set<std::string> js_keys;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    std::vector<std::string_view> parts;
    std::string_view line = lines[i];
    for (size_t p = 0; p < line.size();) {
      while (p < line.size() && (line[p] == ' ' || line[p] == '\t' || line[p] == '\r')) ++p;
      size_t q = p;
      while (q < line.size() && line[q] != ' ' && line[q] != '\t' && line[q] != '\r') ++q;
      if (q > p) parts.push_back(line.substr(p, q - p));
      p = q;
    }
    const std::string where = vocab_bpe_path + ":" + std::to_string(i + 1);
    if (parts.size() != 2) {
      throw std::runtime_error(where + ": expected two tokens per merge line");
    }
    if (!js_keys.insert(std::string(parts[0]) + "," + std::string(parts[1])).second) {
      throw std::runtime_error(where +
                               ": merge collides with an earlier one in the reference "
                               "encoder's rank table; unsupported vocabulary");
    }
    const std::string left = to_bytes(parts[0], vocab_bpe_path);
    const std::string right = to_bytes(parts[1], vocab_bpe_path);
    const auto l = impl->bytes_to_id.find(left);
    const auto r = impl->bytes_to_id.find(right);
    const auto m = impl->bytes_to_id.find(left + right);
    if (l == impl->bytes_to_id.end() || r == impl->bytes_to_id.end() ||
        m == impl->bytes_to_id.end()) {
      throw std::runtime_error(where + ": merge uses or makes a token missing from " +
                               encoder_json_path);
    }
    impl->merges[pair_key(l->second, r->second)] = {static_cast<int>(i - 1), m->second};
  }
  impl->compile_regex();
  return BpeEncoder(std::move(impl));
}

std::vector<int> BpeEncoder::encode(std::string_view text) const {
  const std::string sanitized = sanitize_utf8(text);
  std::vector<int> ids;
  ids.reserve(sanitized.size() / 3);
  impl_->split(sanitized, [&](size_t begin, size_t end) {
    impl_->encode_word(std::string_view(sanitized).substr(begin, end - begin), &ids);
  });
  return ids;
}

std::vector<std::string> BpeEncoder::pre_tokenize(std::string_view text) const {
  const std::string sanitized = sanitize_utf8(text);
  std::vector<std::string> pieces;
  impl_->split(sanitized, [&](size_t begin, size_t end) {
    pieces.push_back(sanitized.substr(begin, end - begin));
  });
  return pieces;
}

std::string BpeEncoder::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw std::out_of_range("decode: token id " + std::to_string(id) +
                              " is outside the vocabulary [0, " + std::to_string(vocab_size()) +
                              ")");
    }
    out += impl_->id_to_bytes[id];
  }
  return out;
}

int BpeEncoder::vocab_size() const { return static_cast<int>(impl_->id_to_bytes.size()); }

int BpeEncoder::end_of_text() const { return impl_->end_of_text; }

}  // namespace paci
