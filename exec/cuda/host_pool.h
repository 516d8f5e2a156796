// Host-side bookkeeping of the CUDA backend's memory reuse. No CUDA here: the logic is tested
// on the CPU (tests/cuda/host_pool_test.cc); cuda_backend.cc does the CUDA calls it decides on.
//
//  - BlockPool: device blocks given back by CudaBackend::free, kept by their exact (256-byte
//    rounded) size and handed out again by alloc for the same size. Weight versions, gradient
//    and slot buffers of a stage come and go with the same few sizes every step, so after the
//    first step no cudaMalloc / cudaFree runs (cudaFree synchronizes the whole device, which
//    stalls every other stage's stream). A block is only ever reused by the backend that freed
//    it, and alloc zero-fills it on that backend's stream, so the refill is stream-ordered after
//    every operation queued on that stream before the free. release() empties the pool: on a
//    failed cudaMalloc (then retried) and in the destructor.
//  - StagingRing: from_host copies through `slots` page-locked host buffers used round robin,
//    so the upload is truly asynchronous (a pageable cudaMemcpyAsync blocks the host until the
//    stream reaches it, which serializes the host thread with the GPU on every token upload).
//    The caller's bytes are memcpy'd into the slot, so the caller may reuse its buffer at once.
//    Before a slot is refilled, the copy issued from it `slots` uploads ago must have finished
//    (its event): plan() says when to wait and when to (re)allocate the slot larger. Uploads
//    larger than `max_bytes` (the parameters at start-up or a restored snapshot) go direct.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace paci {
namespace cuda {

class BlockPool {
 public:
  // A cached block of exactly `bytes`, or nullptr (a miss: the caller cudaMallocs). The most
  // recently freed block first.
  void* take(size_t bytes) {
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) {
      ++misses_;
      return nullptr;
    }
    void* p = it->second.back();
    it->second.pop_back();
    if (it->second.empty()) free_.erase(it);
    cached_bytes_ -= bytes;
    --blocks_;
    ++hits_;
    return p;
  }
  // Keeps a freed block for reuse.
  void give(void* p, size_t bytes) {
    if (!p) return;
    free_[bytes].push_back(p);
    cached_bytes_ += bytes;
    ++blocks_;
  }
  // Every cached block with its size (the caller cudaFrees them); the pool is empty afterwards.
  std::vector<std::pair<void*, size_t>> release() {
    std::vector<std::pair<void*, size_t>> out;
    for (auto& [bytes, ptrs] : free_)
      for (void* p : ptrs) out.emplace_back(p, bytes);
    free_.clear();
    cached_bytes_ = 0;
    blocks_ = 0;
    return out;
  }
  size_t cached_bytes() const { return cached_bytes_; }
  size_t cached_blocks() const { return blocks_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
  size_t blocks_ = 0;
  uint64_t hits_ = 0, misses_ = 0;
};

// What from_host does for one upload through the ring.
struct StagingStep {
  int slot = -1;       // the slot to copy through
  bool wait = false;   // first wait for the slot's previous copy (its event)
  size_t grow_to = 0;  // > 0: (re)allocate the slot with this many bytes first
};

class StagingRing {
 public:
  static constexpr size_t kGranule = 4096;
  StagingRing(int slots, size_t max_bytes)
      : capacity_(static_cast<size_t>(slots > 0 ? slots : 1), 0),
        used_(capacity_.size(), false),
        max_bytes_(max_bytes) {}

  int slots() const { return static_cast<int>(capacity_.size()); }
  size_t max_bytes() const { return max_bytes_; }
  size_t capacity(int slot) const { return capacity_.at(static_cast<size_t>(slot)); }
  // Whether an upload of `bytes` goes through the ring (else: a direct copy).
  bool stages(size_t bytes) const { return bytes > 0 && bytes <= max_bytes_; }

  // The next slot for an upload of `bytes` (stages(bytes) must hold); records the slot as in
  // use and as holding at least `bytes` from now on.
  StagingStep plan(size_t bytes) {
    StagingStep s;
    s.slot = next_;
    next_ = (next_ + 1) % slots();
    const size_t i = static_cast<size_t>(s.slot);
    s.wait = used_[i];
    if (capacity_[i] < bytes) {
      // Round up to a page granule, at least double (few regrowths), never beyond max_bytes.
      size_t want = (bytes + kGranule - 1) / kGranule * kGranule;
      if (want < 2 * capacity_[i]) want = 2 * capacity_[i];
      if (want > max_bytes_) want = bytes > max_bytes_ ? bytes : max_bytes_;
      if (want < bytes) want = bytes;
      s.grow_to = want;
      capacity_[i] = want;
    }
    used_[i] = true;
    return s;
  }
  // Total page-locked bytes the ring holds.
  size_t held_bytes() const {
    size_t t = 0;
    for (size_t c : capacity_) t += c;
    return t;
  }

 private:
  std::vector<size_t> capacity_;
  std::vector<bool> used_;
  size_t max_bytes_;
  int next_ = 0;
};

}  // namespace cuda
}  // namespace paci
