// llm.c token shards (`paci train --data x_train.bin`): the header as the input's first 1024
// bytes, the input's size as the file's, and the token check against GPT-2's vocabulary.
#include <cstring>
#include <vector>

#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(input.data());
  const int64_t count = paci::parse_token_shard_header(bytes, input.size(),
                                                       static_cast<int64_t>(input.size()), "fuzz.bin");
  std::vector<uint16_t> tokens(static_cast<size_t>(count));
  if (!tokens.empty()) std::memcpy(tokens.data(), bytes + paci::kShardHeaderBytes, tokens.size() * 2);
  paci::check_shard_tokens(tokens, 50257, "fuzz.bin");
}
