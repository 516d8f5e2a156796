// paci checkpoints (`paci train --resume DIR`): the manifest checkpoint.json and the stage
// files. Input: a 2-byte little-endian manifest length n, the manifest (n bytes), then the
// bytes of every stage file (the same bytes for each stage-K.bin the manifest may name, K <
// 4). They are written into a fresh step-000001/ folder and loaded with load_checkpoint.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "exec/runtime/checkpoint.h"

#define PACI_FUZZ_EXTRA_CATCH \
  catch (const paci::CheckpointError& e) { paci::fuzz::check_message(e.what()); }
#include "tests/fuzz/fuzz.h"

namespace {
void write(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}
}  // namespace

PACI_FUZZ(input) {
  namespace fs = std::filesystem;
  // In memory where there is a tmpfs (this harness writes files on every input).
  static const std::string root =
      ((fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path()) /
       ("paci-fuzz-checkpoint-" + std::to_string(getpid()))).string();
  const std::string dir = root + "/step-000001";
  fs::remove_all(root);
  fs::create_directories(dir);
  size_t n = input.size() >= 2 ? static_cast<unsigned char>(input[0]) | static_cast<unsigned char>(input[1]) << 8 : 0;
  std::string_view rest = input.size() >= 2 ? input.substr(2) : std::string_view();
  if (n > rest.size()) n = rest.size();
  write(dir + "/checkpoint.json", rest.substr(0, n));
  for (int k = 0; k < 4; ++k) write(dir + "/stage-" + std::to_string(k) + ".bin", rest.substr(n));
  paci::CheckpointMeta meta;
  paci::Snapshot snap;
  paci::load_checkpoint(root, meta, snap);
}
