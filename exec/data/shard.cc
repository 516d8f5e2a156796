#include "exec/data/shard.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "schedules/files.h"

namespace paci {

// The on-disk format is little-endian; we write host-order integers directly.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "token shards assume a little-endian host");

namespace {

std::ifstream open_shard(const std::string& path) {
  // Not a FIFO (which would block the read forever), a directory or a device.
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    try {
      check_regular_file(path, "token shard");
    } catch (const InputError& e) {
      throw ShardError(e.what());
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ShardError(path + ": cannot open token shard (" + std::strerror(errno) + ")");
  }
  return in;
}

// Validates the header of an open shard; returns the declared token count.
int64_t check_header(std::ifstream& in, const std::string& path) {
  std::error_code ec;
  const auto file_size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  if (ec) throw ShardError(path + ": cannot stat token shard (" + ec.message() + ")");
  unsigned char header[kShardHeaderBytes] = {};
  if (file_size < kShardHeaderBytes || !in.read(reinterpret_cast<char*>(header), kShardHeaderBytes)) {
    throw ShardError(path + ": file holds " + std::to_string(file_size) +
                     " bytes, shorter than the " + std::to_string(kShardHeaderBytes) +
                     "-byte header: not an llm.c token shard");
  }
  return parse_token_shard_header(header, kShardHeaderBytes, file_size, path);
}

}  // namespace

int64_t parse_token_shard_header(const unsigned char* bytes, size_t size, int64_t file_size,
                                 const std::string& path) {
  int32_t header[kShardHeaderInts] = {};
  if (size < static_cast<size_t>(kShardHeaderBytes) || file_size < kShardHeaderBytes) {
    throw ShardError(path + ": file holds " + std::to_string(file_size) + " bytes, shorter than the " +
                     std::to_string(kShardHeaderBytes) + "-byte header: not an llm.c token shard");
  }
  std::memcpy(header, bytes, kShardHeaderBytes);
  if (header[0] != kShardMagic) {
    throw ShardError(path + ": bad magic " + std::to_string(header[0]) + " (expected " +
                     std::to_string(kShardMagic) + "): not an llm.c token shard");
  }
  if (header[1] != kShardVersion) {
    throw ShardError(path + ": unsupported token shard version " + std::to_string(header[1]) +
                     " (expected " + std::to_string(kShardVersion) +
                     "); re-create it with `paci data prepare`");
  }
  const int64_t count = header[2];
  if (count < 0) {
    throw ShardError(path + ": negative token count " + std::to_string(count) + " in header");
  }
  const int64_t held = (file_size - kShardHeaderBytes) / 2;
  if (file_size != kShardHeaderBytes + 2 * count) {
    throw ShardError(path + ": has " + std::to_string(count) + " tokens in header but file holds " +
                     std::to_string(held) +
                     (held < count ? " (truncated; re-create it with `paci data prepare`)"
                                   : " (trailing bytes)"));
  }
  return count;
}

void check_shard_tokens(const std::vector<uint16_t>& tokens, int vocab, const std::string& path) {
  if (vocab <= 0) return;
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] >= vocab)
      throw ShardError(path + ": token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                       " is outside the model's vocabulary of " + std::to_string(vocab) +
                       " (ids 0.." + std::to_string(vocab - 1) + ")");
}

void write_token_shard(const std::string& path, const std::vector<int>& tokens) {
  if (tokens.size() > static_cast<size_t>(INT32_MAX)) {
    throw ShardError(path + ": " + std::to_string(tokens.size()) +
                     " tokens do not fit the int32 count of an llm.c shard header");
  }
  std::string bytes(kShardHeaderBytes + 2 * tokens.size(), '\0');
  int32_t header[kShardHeaderInts] = {};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
  header[2] = static_cast<int32_t>(tokens.size());
  std::memcpy(bytes.data(), header, kShardHeaderBytes);
  char* out = bytes.data() + kShardHeaderBytes;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int t = tokens[i];
    if (t < 0 || t > UINT16_MAX) {
      throw ShardError(path + ": token " + std::to_string(t) + " at index " + std::to_string(i) +
                       " does not fit uint16");
    }
    const auto u = static_cast<uint16_t>(t);
    std::memcpy(out + 2 * i, &u, 2);
  }
  try {
    write_file_atomic(path, bytes);
  } catch (const std::runtime_error& e) {
    throw ShardError(e.what());
  }
}

int64_t read_token_shard_header(const std::string& path) {
  std::ifstream in = open_shard(path);
  return check_header(in, path);
}

std::vector<uint16_t> read_token_shard(const std::string& path, int vocab) {
  std::ifstream in = open_shard(path);
  const int64_t count = check_header(in, path);
  std::vector<uint16_t> tokens(static_cast<size_t>(count));
  if (!in.read(reinterpret_cast<char*>(tokens.data()), count * 2)) {
    throw ShardError(path + ": read error after the header");
  }
  check_shard_tokens(tokens, vocab, path);
  return tokens;
}

}  // namespace paci
