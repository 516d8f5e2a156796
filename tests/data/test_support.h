// Helpers shared by the data tests: locating the fetched data and building tiny vocabularies.
#ifndef PACI_TESTS_DATA_TEST_SUPPORT_H_
#define PACI_TESTS_DATA_TEST_SUPPORT_H_

#include <string>
#include <utility>
#include <vector>

namespace paci::testing {

// The fetched-data cache named by $PACI_DATA_DIR (absolute path, as paci data prepare --cache wrote
// it). Returns "" and fills *error with what is missing and how to provide it; tests that need
// the data FAIL with that message instead of skipping, so CI cannot go green without the check.
std::string data_dir_or_error(std::string* error);

// A fresh empty directory under $TEST_TMPDIR (or /tmp).
std::string make_temp_dir(const std::string& name);

void write_text_file(const std::string& path, const std::string& contents);

// Writes encoder.json and vocab.bpe into `dir`: ids 0..255 are the single bytes (in byte
// order), then one token per merge in order, then "<|endoftext|>". Merges are given as raw byte
// strings, e.g. {"a", "b"}; the files use GPT-2's byte-to-unicode alphabet like the real ones.
// Returns the id of each merge's result, in order.
std::vector<int> write_tiny_vocab(const std::string& dir,
                                  const std::vector<std::pair<std::string, std::string>>& merges);

}  // namespace paci::testing

#endif  // PACI_TESTS_DATA_TEST_SUPPORT_H_
