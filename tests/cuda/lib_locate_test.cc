#include "exec/cuda/lib_locate.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <string>

namespace paci {
namespace cuda {
namespace {

TEST(LibLocate, RequiredNames) {
  EXPECT_EQ(required_cuda_libraries(),
            (std::vector<std::string>{"libcublas.so.13", "libcublasLt.so.13", "libnccl.so.2"}));
}

TEST(LibLocate, CandidateOrder) {
  const auto dirs = candidate_dirs("/a/lib::/b/lib/:/a/lib", {"/extra"}, {"/sp"});
  // LD_LIBRARY_PATH first (empty entries skipped, trailing '/' dropped, duplicates once),
  // then the extras, then the defaults, then the wheel folders.
  ASSERT_GE(dirs.size(), 4u);
  EXPECT_EQ(dirs[0], "/a/lib");
  EXPECT_EQ(dirs[1], "/b/lib");
  EXPECT_EQ(dirs[2], "/extra");
  EXPECT_EQ(dirs[3], "/usr/local/cuda/lib64");
  EXPECT_EQ(std::set<std::string>(dirs.begin(), dirs.end()).size(), dirs.size());
  EXPECT_EQ(dirs[dirs.size() - 3], "/sp/nvidia/cu13/lib");
  EXPECT_EQ(dirs[dirs.size() - 2], "/sp/nvidia/cublas/lib");
  EXPECT_EQ(dirs.back(), "/sp/nvidia/nccl/lib");
  EXPECT_EQ(candidate_dirs("", {}, {})[0], "/usr/local/cuda/lib64");
}

TEST(LibLocate, FirstDirectoryWins) {
  const std::set<std::string> files = {
      "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
      "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublasLt.so.13",
      "/usr/local/cuda/lib64/libcublasLt.so.13",
      "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2",
  };
  const std::set<std::string> site_dirs = {"/opt/torch/.venv/lib/python3.12/site-packages"};
  const auto sp = default_site_packages([&](const std::string& d) { return site_dirs.count(d) > 0; });
  ASSERT_EQ(sp, (std::vector<std::string>{"/opt/torch/.venv/lib/python3.12/site-packages"}));
  const auto dirs = candidate_dirs("", {}, sp);
  const auto found = locate_libraries(required_cuda_libraries(), dirs,
                                      [&](const std::string& f) { return files.count(f) > 0; });
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].dir, "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib");
  EXPECT_EQ(found[1].dir, "/usr/local/cuda/lib64");  // default dirs come before wheels
  EXPECT_EQ(found[2].dir, "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib");
  EXPECT_EQ(ld_library_path_for(found, "/old"),
            "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:/usr/local/cuda/lib64:"
            "/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib:/old");
}

TEST(LibLocate, MissingLibrary) {
  const auto found = locate_libraries({"libnccl.so.2"}, {"/x", "/y"},
                                      [](const std::string&) { return false; });
  ASSERT_EQ(found.size(), 1u);
  EXPECT_FALSE(found[0].found());
  EXPECT_EQ(ld_library_path_for(found, ""), "");
  EXPECT_EQ(ld_library_path_for(found, "/keep"), "/keep");
}

TEST(LibLocate, LdLibraryPathTakesPrecedence) {
  const std::set<std::string> files = {"/mine/libnccl.so.2", "/usr/local/cuda/lib64/libnccl.so.2"};
  const auto found = locate_libraries({"libnccl.so.2"}, candidate_dirs("/mine", {}, {}),
                                      [&](const std::string& f) { return files.count(f) > 0; });
  EXPECT_EQ(found[0].dir, "/mine");
}

TEST(LibLocate, RealFileSystem) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = std::string(tmp ? tmp : "/tmp") + "/libloc_test";
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  { std::ofstream(dir + "/libnccl.so.2") << "x"; }
  EXPECT_TRUE(dir_exists(dir));
  EXPECT_FALSE(file_exists(dir));
  EXPECT_TRUE(file_exists(dir + "/libnccl.so.2"));
  EXPECT_FALSE(file_exists(dir + "/libcublas.so.13"));
  const auto found = locate_libraries({"libnccl.so.2"}, {"/nonexistent", dir}, file_exists);
  EXPECT_EQ(found[0].dir, dir);
}

}  // namespace
}  // namespace cuda
}  // namespace paci
