// CUDA green contexts for `--sm-partition`: each pipeline stage gets its own context holding a
// disjoint set of SMs, so that P stages on one GPU behave like P smaller GPUs. The arithmetic
// (how many SMs each stage gets) is sm_split.h; this file creates the contexts through the
// driver API (cuDevSmResourceSplitByCount → cuDevResourceGenerateDesc → cuGreenCtxCreate),
// reached with cudaGetDriverEntryPointByVersion so nothing links against libcuda.
// No CUDA headers here.
//
// Use: GreenContexts gc(device, split); for stage s, CudaBackendOptions::cu_context =
// gc.context(s); the backend creates its stream and cuBLAS handle inside that context. A green
// context is current to one thread at a time: the thread that drives a stage's backend calls
// backend.bind_thread() before its first operation (and after driving another backend).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "exec/cuda/sm_split.h"

namespace paci {
namespace cuda {

struct DeviceSmResource {
  int sm_count = 0;
  int min_partition_size = 0;      // CUdevSmResource::minSmPartitionSize
  int coscheduled_alignment = 0;   // CUdevSmResource::smCoscheduledAlignment
  int groups_of_unit = 0;          // groups cuDevSmResourceSplitByCount makes for `unit` SMs
  SmSplitRules rules() const { return {min_partition_size, coscheduled_alignment}; }
};

// Reads the SM resource of `device` from the driver; `unit` > 0 also asks how many groups of
// that size a split would create. Throws std::runtime_error (with file:line) on driver errors
// or a driver without green contexts (before 12.4).
DeviceSmResource query_sm_resource(int device, int unit = 0);

class GreenContexts {
 public:
  // One green context per stage of `split` (split.units[s] groups of split.unit SMs each).
  GreenContexts(int device, const SmSplit& split);
  ~GreenContexts();
  GreenContexts(const GreenContexts&) = delete;
  GreenContexts& operator=(const GreenContexts&) = delete;

  int stages() const;
  int sm_count(int stage) const;  // SMs of the created context, as the driver reports them
  void* context(int stage) const;  // its CUcontext (cuCtxFromGreenCtx)
  std::string describe() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// cuCtxSetCurrent / cuCtxGetCurrent for the calling thread (CUcontext as void*).
void set_current_context(void* cu_context);
void* current_context();

// The primary context of `device` (cudaSetDevice + cudaFree(0) make it exist), without changing
// the calling thread's current context.
void* primary_context(int device);

// Makes `cu_context` current for the calling thread for the guard's lifetime and restores the
// caller's context afterwards (cuCtxPushCurrent / cuCtxPopCurrent). Nothing is pushed when
// `cu_context` is null or already current (a worker thread after bind_thread()), so the common
// case costs one cuCtxGetCurrent. Never throws from the destructor.
class ScopedContext {
 public:
  explicit ScopedContext(void* cu_context);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
  bool pushed() const { return pushed_; }

 private:
  bool pushed_ = false;
};

}  // namespace cuda
}  // namespace paci
