// prepare_huge_heap (schedules/huge_pages.h): `paci sim` calls it before building a large
// schedule, so that the programs and the simulator's buffers come from one heap of huge pages.
// A binary of its own: it changes the process's malloc settings.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "schedules/huge_pages.h"

#if defined(__linux__) && defined(__GLIBC__)
#include <malloc.h>
#include <unistd.h>

namespace paci {
namespace {

// The "THPeligible" line of the /proc/self/smaps entry whose range holds p (-1: not found).
int thp_eligible(const void* p) {
  std::ifstream in("/proc/self/smaps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-') {
      inside = lo <= at && at < hi;
      continue;
    }
    if (inside && line.rfind("THPeligible:", 0) == 0) return std::stoi(line.substr(12));
  }
  return -1;
}

bool thp_offered() {  // the kernel gives huge pages where advised ("always" or "madvise")
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string s;
  std::getline(in, s);
  return s.find("[never]") == std::string::npos && !s.empty();
}

TEST(HugeHeap, GrowsTheHeapOnceAndServesLaterAllocationsFromIt) {
  // A small schedule leaves malloc as it is.
  const size_t before = mallinfo2().arena;
  prepare_huge_heap(1 << 20);
  EXPECT_EQ(mallinfo2().arena, before);

  prepare_huge_heap(size_t{64} << 20);
  EXPECT_GE(mallinfo2().arena, before + (size_t{64} << 20)) << "the heap did not grow by the request";
  // A program-sized vector (330 KB) and a 20 MB buffer, both under the 32 MiB threshold: taken
  // from the heap (below its end), not mapped on their own.
  char* program = static_cast<char*>(malloc(330 << 10));
  char* buffer = static_cast<char*>(malloc(20 << 20));
  ASSERT_NE(program, nullptr);
  ASSERT_NE(buffer, nullptr);
  const auto end = reinterpret_cast<uintptr_t>(sbrk(0));
  EXPECT_LT(reinterpret_cast<uintptr_t>(buffer) + (20 << 20), end + 1);
  EXPECT_LT(reinterpret_cast<uintptr_t>(program), end);
  std::memset(buffer, 1, 20 << 20);  // usable memory
  EXPECT_EQ(buffer[(20 << 20) - 1], 1);
  if (thp_offered()) EXPECT_EQ(thp_eligible(buffer + (10 << 20)), 1) << "the heap is not advised for huge pages";
  else std::printf("transparent huge pages are off on this kernel: eligibility not checked\n");
  // Freed memory goes back to the heap and is handed out again.
  free(buffer);
  char* again = static_cast<char*>(malloc(20 << 20));
  EXPECT_EQ(again, buffer);
  free(again);
  free(program);
}

}  // namespace
}  // namespace paci
#else
TEST(HugeHeap, GlibcOnly) { GTEST_SKIP() << "prepare_huge_heap does nothing without glibc on Linux"; }
#endif
