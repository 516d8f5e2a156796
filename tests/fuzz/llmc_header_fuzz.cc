// llm.c fp32 checkpoints (`paci train --init-llmc model.bin`): the 1024-byte header, with the
// file size taken from the input's first 8 bytes after the header when present (so sizes that
// match the shape are reachable), else the input's size.
#include <cstring>

#include "tests/fuzz/fuzz.h"

PACI_FUZZ(input) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(input.data());
  uint64_t file_bytes = input.size();
  if (input.size() >= 1024 + 8) std::memcpy(&file_bytes, bytes + 1024, 8);
  paci::GptConfig cfg = paci::parse_llmc_header(bytes, input.size(), file_bytes, "fuzz.bin");
  (void)paci::num_parameters(cfg);
}
