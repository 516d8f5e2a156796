#include "cli/device.h"

#include <fmt/format.h>

#include "cli/common.h"
#include "exec/model/blas_kernel.h"

#ifdef PACI_WITH_CUDA
#include "exec/cuda/cuda_backend.h"
#include "exec/cuda/device_transport.h"
#include "exec/cuda/green_context.h"
#include "exec/cuda/sm_split.h"
#endif

namespace paci::cli {

void DeviceFlags::add_to(CLI::App* cmd) {
  cmd->add_option("--device", device, "cpu, or cuda (a build with --config=cuda on a machine with a GPU)")
      ->capture_default_str();
  cmd->add_option("--precision", precision, "cuda: fp32, tf32 or bf16 (fp32 master weights)")->capture_default_str();
  cmd->add_option("--sm-partition", sm_partition,
                  "cuda, stages on one GPU: off, equal, weighted, or SM counts such as 64+32+32 (green contexts)")
      ->capture_default_str();
}

ExecDevice make_exec_device(const DeviceFlags& f, int stages) {
  ExecDevice d;
  if (f.device == "cpu") {
    if (f.precision != "fp32") throw UsageError(fmt::format("--precision {}: the CPU backend computes in fp32", f.precision));
    if (f.sm_partition != "off") throw UsageError("--sm-partition applies to --device cuda");
    d.description = "cpu (fp32, OpenBLAS kernel " + blas_kernel() + ")";
    return d;
  }
  if (f.device != "cuda") throw UsageError(fmt::format("--device must be cpu or cuda (got '{}')", f.device));
#ifndef PACI_WITH_CUDA
  (void)stages;
  throw UsageError("--device cuda: this paci was built without CUDA (build with `bazel build --config=cuda "
                   "//cli:paci` and run on a machine with an NVIDIA GPU)");
#else
  CudaPrecision precision;
  try {
    precision = parse_precision(f.precision);
  } catch (const std::invalid_argument&) {
    throw UsageError(fmt::format("--precision must be fp32, tf32 or bf16 (got '{}')", f.precision));
  }
  if (CudaBackend::device_count() == 0) throw RunError("--device cuda: no CUDA device is visible");
  const CudaDeviceInfo info = CudaBackend::device_info(0);
  // Dense peaks of the Hopper cards this project is lent (H100 SXM / H200): bf16 989, TF32
  // 494, fp32 67 TFLOP/s. Other cards: no MFU.
  if (info.cc_major == 9)
    d.peak_flops = precision == CudaPrecision::kBf16 ? 989e12 : precision == CudaPrecision::kTf32 ? 494e12 : 67e12;
  std::shared_ptr<cuda::GreenContexts> green;
  if (f.sm_partition != "off") {
    cuda::DeviceSmResource res = cuda::query_sm_resource(0);
    cuda::SmSplit split;
    try {
      split = cuda::parse_sm_partition(f.sm_partition, res.sm_count, stages, std::vector<double>(stages, 1.0),
                                       res.rules());
    } catch (const std::invalid_argument& e) {
      throw UsageError(fmt::format("--sm-partition: {}", e.what()));
    }
    green = std::make_shared<cuda::GreenContexts>(0, split);
    d.keep = green;
  }
  d.make_backend = [precision, green](int stage) -> std::unique_ptr<Backend> {
    CudaBackendOptions o;
    o.precision = precision;
    if (green) o.cu_context = green->context(stage);
    return std::make_unique<CudaBackend>(o);
  };
  d.make_transport = [](const std::vector<Backend*>& backends) -> std::unique_ptr<Transport> {
    return std::make_unique<CudaDeviceTransport>(backends);
  };
  d.description = fmt::format("cuda ({}, {}, {} SMs{})", info.name, f.precision, info.sm_count,
                              green ? ", " + green->describe() : std::string());
  return d;
#endif
}

}  // namespace paci::cli
