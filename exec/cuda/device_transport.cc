#include "exec/cuda/device_transport.h"

#include <cuda_runtime_api.h>

#include <stdexcept>

#include <fmt/format.h>

#include "exec/cuda/check.h"
#include "exec/cuda/cuda_backend.h"

namespace paci {

CudaDeviceTransport::CudaDeviceTransport(const std::vector<Backend*>& stage_backends) : backends_(stage_backends) {
  for (Backend* b : backends_)
    if (!dynamic_cast<CudaBackend*>(b))
      throw std::invalid_argument("CudaDeviceTransport needs a CUDA backend on every stage");
}

CudaDeviceTransport::~CudaDeviceTransport() {
  for (auto& [k, m] : box_) {
    cudaFree(m.buf);
    cudaEventDestroy(static_cast<cudaEvent_t>(m.ready));
  }
}

void* CudaDeviceTransport::stream_of(int stage) const {
  return static_cast<CudaBackend*>(backends_.at(stage))->stream();
}

void CudaDeviceTransport::send(const MessageKey& key, const float* data, size_t n) {
  const int from = sender_stage(key, static_cast<int>(backends_.size()));
  auto stream = static_cast<cudaStream_t>(stream_of(from));
  Message m;
  m.n = n;
  PACI_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&m.buf), n * sizeof(float), stream));
  PACI_CUDA_CHECK(cudaMemcpyAsync(m.buf, data, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  cudaEvent_t ev;
  PACI_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  PACI_CUDA_CHECK(cudaEventRecord(ev, stream));
  m.ready = ev;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!box_.emplace(Key{static_cast<int>(key.kind), key.stage, key.mb}, m).second)
      throw std::logic_error("duplicate message: " + describe(key));
  }
  cv_.notify_all();
}

bool CudaDeviceTransport::recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) {
  Message m;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const Key k{static_cast<int>(key.kind), key.stage, key.mb};
    if (!cv_.wait_for(lock, timeout, [&] { return aborted_ || box_.count(k) > 0; }) || aborted_) return false;
    auto it = box_.find(k);
    m = it->second;
    box_.erase(it);
  }
  if (m.n != n)
    throw std::logic_error(fmt::format("{}: {} floats sent, {} expected", describe(key), m.n, n));
  auto stream = static_cast<cudaStream_t>(stream_of(key.stage));
  // The receiver's stream waits for the sender's copy, then copies out and frees the buffer in
  // its own order; the host thread never waits.
  PACI_CUDA_CHECK(cudaStreamWaitEvent(stream, static_cast<cudaEvent_t>(m.ready), 0));
  PACI_CUDA_CHECK(cudaMemcpyAsync(out, m.buf, n * sizeof(float), cudaMemcpyDeviceToDevice, stream));
  PACI_CUDA_CHECK(cudaFreeAsync(m.buf, stream));
  PACI_CUDA_CHECK(cudaEventDestroy(static_cast<cudaEvent_t>(m.ready)));
  return true;
}

void CudaDeviceTransport::abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = true;
  cv_.notify_all();
}

bool CudaDeviceTransport::aborted() const {
  return aborted_;
}

}  // namespace paci
