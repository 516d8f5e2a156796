// Checked CUDA / cuBLAS calls: every call's status becomes a std::runtime_error that names the
// call, file:line and the library's error string.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace paci {
namespace cuda {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* what, const char* file, int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what +
                           " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                           ")");
}
[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* what, const char* file,
                                      int line) {
  throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what +
                           " failed: " + cublasGetStatusName(s) + " (" + cublasGetStatusString(s) +
                           ")");
}

}  // namespace cuda
}  // namespace paci

#define PACI_CUDA_CHECK(expr)                                                          \
  do {                                                                                 \
    const cudaError_t paci_e_ = (expr);                                                \
    if (paci_e_ != cudaSuccess) ::paci::cuda::throw_cuda(paci_e_, #expr, __FILE__, __LINE__); \
  } while (0)

#define PACI_CUBLAS_CHECK(expr)                                                            \
  do {                                                                                     \
    const cublasStatus_t paci_s_ = (expr);                                                 \
    if (paci_s_ != CUBLAS_STATUS_SUCCESS)                                                  \
      ::paci::cuda::throw_cublas(paci_s_, #expr, __FILE__, __LINE__);                      \
  } while (0)
