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

// Addresses rounded to 4 KiB pages, and a range [lo, hi) of whole pages advised for huge pages.
inline uintptr_t page_down(const void* p) {
  return reinterpret_cast<uintptr_t>(p) & ~uintptr_t{4095};
}
inline uintptr_t page_up(const void* p) { return page_down(static_cast<const char*>(p) + 4095); }
inline void advise_huge(uintptr_t lo, uintptr_t hi) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#endif
}

// v.reserve(n), the storage advised for huge pages when it spans a few of them.
template <class T>
void reserve_huge(std::vector<T>& v, size_t n) {
  v.reserve(n);
#ifdef __linux__
  const size_t bytes = n * sizeof(T);
  if (bytes < (4u << 20)) return;
  advise_huge(page_up(v.data()), page_down(reinterpret_cast<const char*>(v.data()) + bytes));
#endif
}

// Maps the pages of v's elements [v.size(), n) now (n <= capacity), for a caller that is about
// to write all of them: one system call instead of a page fault per page.
template <class T>
void populate(std::vector<T>& v, size_t n) {
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
  const uintptr_t lo = page_down(v.data() + v.size()), hi = page_up(v.data() + n);
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
  const uintptr_t lo = page_up(probe), hi = page_down(sbrk(0));
  free(probe);
  if (hi <= lo + bytes + (16u << 20)) advise_huge(lo, hi);  // (probe was carved from the heap)
#else
  (void)bytes;
#endif
}

}  // namespace paci
