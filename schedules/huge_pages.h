// Large buffers (tens of MB at a million actions) are faulted in page by page; asking for
// transparent huge pages before they are touched removes most of that cost (a page fault
// per 2 MB instead of per 4 KB). Only a hint: ignored where unsupported or disabled.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
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

// A large schedule is also many medium-sized vectors (a program per device: 330 KB each at
// P = 64, M = 1024, N = 8), each of which malloc maps on its own and the kernel faults in 4 KB
// at a time (measured: ~13% of a whole `paci sim` there). For a process about to build and
// simulate one such schedule: the malloc heap is grown once by `bytes` and advised for huge
// pages, and allocations below 32 MiB (glibc's largest mmap threshold) are taken from it and
// kept when freed, so the programs, the index and the simulator's buffers are carved one after
// another from 2 MB pages. Only address space is reserved: pages are used as they are touched.
// glibc on Linux only (mallopt); elsewhere, or if the heap cannot grow, nothing changes.
inline void prepare_huge_heap(size_t bytes) {
#if defined(__linux__) && defined(__GLIBC__) && defined(MADV_HUGEPAGE)
  if (bytes < (16u << 20)) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, INT32_MAX);  // (also keeps the advised heap from being trimmed)
  mallopt(M_TOP_PAD, static_cast<int>(std::min<size_t>(bytes, INT32_MAX)));
  // More than the free top of a young process's heap, so the heap grows by 8 MiB + bytes.
  void* probe = malloc(8 << 20);
  mallopt(M_TOP_PAD, 128 << 10);  // glibc's default again for any later growth
  if (!probe) return;
  const uintptr_t page = 4096;
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(probe) + page - 1) & ~(page - 1);
  const uintptr_t hi = reinterpret_cast<uintptr_t>(sbrk(0)) & ~(page - 1);
  free(probe);
  if (hi > lo && hi - lo <= bytes + (16u << 20)) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)bytes;
#endif
}

}  // namespace paci
