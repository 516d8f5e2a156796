// Large buffers (tens of MB at a million actions) are faulted in page by page; asking for
// transparent huge pages before they are touched removes most of that cost (a page fault
// per 2 MB instead of per 4 KB). Only a hint: ignored where unsupported or disabled.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace paci {

// v.reserve(n), the storage advised for huge pages when it spans a few of them.
template <class T>
void reserve_huge(std::vector<T>& v, size_t n) {
  v.reserve(n);
#ifdef __linux__
  const size_t bytes = n * sizeof(T);
  if (bytes < (4u << 20)) return;
  const uintptr_t page = 4096, lo = (reinterpret_cast<uintptr_t>(v.data()) + page - 1) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(v.data()) + bytes) & ~(page - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#endif
}

// Maps the pages of v's elements [v.size(), n) now (n <= capacity), for a caller that is about
// to write all of them: one system call instead of a page fault per page.
template <class T>
void populate(std::vector<T>& v, size_t n) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  const uintptr_t page = 4096;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(v.data() + v.size()) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(v.data() + n) + page - 1) & ~(page - 1);
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
#endif
}

}  // namespace paci
