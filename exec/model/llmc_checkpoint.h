// Reading and writing llm.c's fp32 GPT-2 checkpoints (train_gpt2.c's model files), so
// weights move between paci and that ecosystem. The file holds the whole model; here it is
// gathered from / scattered to the per-stage flat parameter buffers.
//
// Format: 256 int32 header {20240326, 3, maxT, V, L, NH, C, Vp, 0...}, then fp32 tensors
// wte [Vp,C] (rows V..Vp-1 zero), wpe [maxT,C], then each per-layer tensor for all layers
// (ln1w [L,C], ln1b, qkvw [L,3C,C], qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb,
// fcprojw, fcprojb), then lnfw [C], lnfb [C]. llm.c ties the LM head to wte, so only tied
// models can be saved: an untied model's lm_head has no place in the file, and writing
// wte alone would silently drop a trained head, so save refuses untied models.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec/model/config.h"
#include "exec/model/partition.h"

namespace paci {

// A checkpoint file that cannot be read as llm.c's format (not a regular file, bad magic or
// version, impossible shape, wrong size, another model's shape): one line naming the file.
class LlmcError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr int kLlmcCheckpointMagic = 20240326;
constexpr int kLlmcCheckpointVersionFp32 = 3;

// Writes the model to `path` (via a temporary file and a rename: never half-written).
// stage_params[s] is the host copy of stage s's parameters in make_param_layout(cfg,
// parts[s]). Throws std::invalid_argument for an untied model or partitions that do not
// cover the model, std::logic_error if the tied lm_head copy differs from wte, and
// std::runtime_error on I/O errors.
void save_llmc_checkpoint(const std::string& path, const GptConfig& cfg,
                          const std::vector<StagePartition>& parts,
                          const std::vector<const float*>& stage_params);

// The model shape stored in a checkpoint's header (tied_embeddings = true). Throws
// LlmcError (a std::runtime_error) naming the file and what is wrong (not a regular file, bad
// magic, unsupported version, implausible shape, a size other than the header implies).
GptConfig read_llmc_config(const std::string& path);

// The same check on the first `size` bytes of a file of `file_bytes` bytes (the fuzz harness
// calls it directly).
GptConfig parse_llmc_header(const unsigned char* bytes, size_t size, uint64_t file_bytes,
                            const std::string& path);

// Loads the file into per-stage buffers (tied lm_head copies are filled from wte). The file's
// shape must equal cfg's (V, Vp, maxT, L, NH, C; cfg tied), else std::runtime_error.
void load_llmc_checkpoint(const std::string& path, const GptConfig& cfg,
                          const std::vector<StagePartition>& parts,
                          const std::vector<float*>& stage_params);

}  // namespace paci
