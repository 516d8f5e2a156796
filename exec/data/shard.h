// llm.c token shards: a 1024-byte header of 256 little-endian int32 (magic 20240520, version 1,
// token count, the rest zero) followed by the tokens as uint16. Using llm.c's layout lets shards
// move between paci and that ecosystem unchanged.
#ifndef PACI_EXEC_DATA_SHARD_H_
#define PACI_EXEC_DATA_SHARD_H_

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace paci {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr int kShardHeaderInts = 256;
inline constexpr int64_t kShardHeaderBytes = kShardHeaderInts * 4;

// Every shard problem (missing, not a regular file, bad header, truncated, token out of range)
// is a ShardError whose message names the file; `paci` exits 2 on it.
class ShardError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `tokens` as a shard at `path` atomically (temporary file + rename). Each token must fit
// in uint16 (GPT-2's 50257 do) and the count in int32; otherwise throws ShardError.
void write_token_shard(const std::string& path, const std::vector<int>& tokens);

// Checks the header (magic, version) and that the file size matches the count it declares;
// returns the token count. Throws ShardError otherwise.
int64_t read_token_shard_header(const std::string& path);

// Reads and checks a whole shard; with vocab > 0 also that every token is below it.
std::vector<uint16_t> read_token_shard(const std::string& path, int vocab = 0);

// The header check on bytes already read (the first `size` bytes of a file of `file_size`
// bytes): magic, version, a count that matches the size. Returns the count; throws ShardError
// naming `path`. (read_token_shard_header uses it; so does the fuzz harness.)
int64_t parse_token_shard_header(const unsigned char* bytes, size_t size, int64_t file_size,
                                 const std::string& path);

// Throws ShardError naming the shard and the first position whose token is >= vocab.
void check_shard_tokens(const std::vector<uint16_t>& tokens, int vocab, const std::string& path);

}  // namespace paci

#endif  // PACI_EXEC_DATA_SHARD_H_
