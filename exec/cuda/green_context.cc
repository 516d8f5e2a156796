#include "exec/cuda/green_context.h"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "exec/cuda/check.h"

namespace paci {
namespace cuda {
namespace {

[[noreturn]] void throw_cu(CUresult r, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what +
                           " failed: CUresult " + std::to_string(static_cast<int>(r)));
}
#define PACI_CU_CHECK(expr)                                                       \
  do {                                                                            \
    const CUresult paci_r_ = (expr);                                              \
    if (paci_r_ != CUDA_SUCCESS) throw_cu(paci_r_, #expr, __FILE__, __LINE__);    \
  } while (0)

template <typename Fn>
Fn driver_fn(const char* name) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult q{};
  PACI_CUDA_CHECK(cudaGetDriverEntryPointByVersion(name, &p, CUDART_VERSION, cudaEnableDefault, &q));
  if (q != cudaDriverEntryPointSuccess || !p) {
    throw std::runtime_error(std::string("the CUDA driver lacks ") + name +
                             " (green contexts need driver 12.4+)");
  }
  return reinterpret_cast<Fn>(p);
}

struct Driver {
  PFN_cuDeviceGet_v2000 DeviceGet = driver_fn<PFN_cuDeviceGet_v2000>("cuDeviceGet");
  PFN_cuDeviceGetDevResource_v12040 DeviceGetDevResource =
      driver_fn<PFN_cuDeviceGetDevResource_v12040>("cuDeviceGetDevResource");
  PFN_cuDevSmResourceSplitByCount_v12040 SmSplitByCount =
      driver_fn<PFN_cuDevSmResourceSplitByCount_v12040>("cuDevSmResourceSplitByCount");
  PFN_cuDevResourceGenerateDesc_v12040 GenerateDesc =
      driver_fn<PFN_cuDevResourceGenerateDesc_v12040>("cuDevResourceGenerateDesc");
  PFN_cuGreenCtxCreate_v12040 GreenCtxCreate =
      driver_fn<PFN_cuGreenCtxCreate_v12040>("cuGreenCtxCreate");
  PFN_cuGreenCtxDestroy_v12040 GreenCtxDestroy =
      driver_fn<PFN_cuGreenCtxDestroy_v12040>("cuGreenCtxDestroy");
  PFN_cuGreenCtxGetDevResource_v12040 GreenCtxGetDevResource =
      driver_fn<PFN_cuGreenCtxGetDevResource_v12040>("cuGreenCtxGetDevResource");
  PFN_cuCtxFromGreenCtx_v12040 CtxFromGreenCtx =
      driver_fn<PFN_cuCtxFromGreenCtx_v12040>("cuCtxFromGreenCtx");
  PFN_cuCtxSetCurrent_v4000 CtxSetCurrent = driver_fn<PFN_cuCtxSetCurrent_v4000>("cuCtxSetCurrent");
  PFN_cuCtxGetCurrent_v4000 CtxGetCurrent = driver_fn<PFN_cuCtxGetCurrent_v4000>("cuCtxGetCurrent");
  PFN_cuCtxPushCurrent_v4000 CtxPushCurrent = driver_fn<PFN_cuCtxPushCurrent_v4000>("cuCtxPushCurrent");
  PFN_cuCtxPopCurrent_v4000 CtxPopCurrent = driver_fn<PFN_cuCtxPopCurrent_v4000>("cuCtxPopCurrent");
};

const Driver& driver() {
  static const Driver d;  // resolved on first use (thread-safe static init)
  return d;
}

CUdevice device_handle(int device) {
  PACI_CUDA_CHECK(cudaSetDevice(device));
  PACI_CUDA_CHECK(cudaFree(nullptr));  // make the primary context active first (cheap later)
  CUdevice dev = 0;
  PACI_CU_CHECK(driver().DeviceGet(&dev, device));
  return dev;
}

}  // namespace

DeviceSmResource query_sm_resource(int device, int unit) {
  const Driver& d = driver();
  const CUdevice dev = device_handle(device);
  CUdevResource res{};
  PACI_CU_CHECK(d.DeviceGetDevResource(dev, &res, CU_DEV_RESOURCE_TYPE_SM));
  DeviceSmResource out;
  out.sm_count = static_cast<int>(res.sm.smCount);
  out.min_partition_size = static_cast<int>(res.sm.minSmPartitionSize);
  out.coscheduled_alignment = static_cast<int>(res.sm.smCoscheduledAlignment);
  if (unit > 0) {
    unsigned nb = 0;
    PACI_CU_CHECK(d.SmSplitByCount(nullptr, &nb, &res, nullptr, 0, static_cast<unsigned>(unit)));
    out.groups_of_unit = static_cast<int>(nb);
  }
  return out;
}

struct GreenContexts::Impl {
  std::vector<CUgreenCtx> green;
  std::vector<CUcontext> ctx;
  std::vector<int> sms;
};

GreenContexts::GreenContexts(int device, const SmSplit& split) : impl_(new Impl) {
  const Driver& d = driver();
  if (split.units.empty()) throw std::invalid_argument("GreenContexts: empty SM split");
  const CUdevice dev = device_handle(device);
  CUdevResource res{};
  PACI_CU_CHECK(d.DeviceGetDevResource(dev, &res, CU_DEV_RESOURCE_TYPE_SM));
  unsigned nb = 0;
  PACI_CU_CHECK(d.SmSplitByCount(nullptr, &nb, &res, nullptr, 0, static_cast<unsigned>(split.unit)));
  unsigned need = 0;
  for (int u : split.units) need += static_cast<unsigned>(u);
  if (need > nb) {
    throw std::invalid_argument("GreenContexts: the split needs " + std::to_string(need) +
                                " groups of " + std::to_string(split.unit) +
                                " SMs, the driver offers " + std::to_string(nb) +
                                " (plan with units_available = " + std::to_string(nb) + ")");
  }
  std::vector<CUdevResource> groups(nb);
  CUdevResource rest{};
  PACI_CU_CHECK(d.SmSplitByCount(groups.data(), &nb, &res, &rest, 0,
                                 static_cast<unsigned>(split.unit)));
  if (need > nb) throw std::runtime_error("GreenContexts: the driver created fewer groups");
  try {
    unsigned k = 0;
    for (int u : split.units) {
      CUdevResourceDesc desc{};
      PACI_CU_CHECK(d.GenerateDesc(&desc, groups.data() + k, static_cast<unsigned>(u)));
      k += static_cast<unsigned>(u);
      CUgreenCtx g = nullptr;
      PACI_CU_CHECK(d.GreenCtxCreate(&g, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM));
      impl_->green.push_back(g);
      CUcontext c = nullptr;
      PACI_CU_CHECK(d.CtxFromGreenCtx(&c, g));
      impl_->ctx.push_back(c);
      CUdevResource got{};
      PACI_CU_CHECK(d.GreenCtxGetDevResource(g, &got, CU_DEV_RESOURCE_TYPE_SM));
      impl_->sms.push_back(static_cast<int>(got.sm.smCount));
    }
  } catch (...) {
    for (CUgreenCtx g : impl_->green) (void)d.GreenCtxDestroy(g);
    throw;
  }
}

GreenContexts::~GreenContexts() {
  for (CUgreenCtx g : impl_->green) (void)driver().GreenCtxDestroy(g);
}

int GreenContexts::stages() const { return static_cast<int>(impl_->green.size()); }
int GreenContexts::sm_count(int s) const { return impl_->sms.at(s); }
void* GreenContexts::context(int s) const { return impl_->ctx.at(s); }
std::string GreenContexts::describe() const {
  std::string s = std::to_string(stages()) + " green contexts:";
  for (size_t i = 0; i < impl_->sms.size(); ++i) s += (i ? "+" : " ") + std::to_string(impl_->sms[i]);
  return s + " SMs";
}

void set_current_context(void* c) {
  PACI_CU_CHECK(driver().CtxSetCurrent(static_cast<CUcontext>(c)));
}

void* current_context() {
  CUcontext c = nullptr;
  PACI_CU_CHECK(driver().CtxGetCurrent(&c));
  return c;
}

void* primary_context(int device) {
  const Driver& d = driver();
  CUcontext before = nullptr;
  PACI_CU_CHECK(d.CtxGetCurrent(&before));
  PACI_CUDA_CHECK(cudaSetDevice(device));
  PACI_CUDA_CHECK(cudaFree(nullptr));  // creates and binds the primary context
  CUcontext primary = nullptr;
  PACI_CU_CHECK(d.CtxGetCurrent(&primary));
  // Give the caller its context back (cudaSetDevice replaced it). With none before, the
  // primary context stays bound, as the runtime API would have bound it on the next call anyway.
  if (before && before != primary) PACI_CU_CHECK(d.CtxSetCurrent(before));
  return primary;
}

ScopedContext::ScopedContext(void* cu_context) {
  if (!cu_context) return;
  const Driver& d = driver();
  CUcontext cur = nullptr;
  PACI_CU_CHECK(d.CtxGetCurrent(&cur));
  if (cur == static_cast<CUcontext>(cu_context)) return;
  PACI_CU_CHECK(d.CtxPushCurrent(static_cast<CUcontext>(cu_context)));
  pushed_ = true;
}

ScopedContext::~ScopedContext() {
  if (!pushed_) return;
  CUcontext popped = nullptr;
  (void)driver().CtxPopCurrent(&popped);
}

}  // namespace cuda
}  // namespace paci
