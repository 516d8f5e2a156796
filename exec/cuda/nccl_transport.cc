#include "exec/cuda/nccl_transport.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "exec/cuda/check.h"
#include "exec/runtime/p2p_order.h"

#define PACI_NCCL_CHECK(expr)                                                                     \
  do {                                                                                            \
    const ncclResult_t paci_r_ = (expr);                                                          \
    if (paci_r_ != ncclSuccess)                                                                   \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #expr \
                               " failed: " + ncclGetErrorString(paci_r_));                        \
  } while (0)

namespace paci {

struct NcclTransport::State {
  ncclComm_t comm = nullptr;
  cudaStream_t compute = nullptr, comm_stream = nullptr;
  cudaEvent_t ready = nullptr;  // compute -> comm: the data to send is written
};

std::string NcclTransport::make_unique_id() {
  ncclUniqueId id;
  PACI_NCCL_CHECK(ncclGetUniqueId(&id));
  return std::string(reinterpret_cast<const char*>(&id), sizeof id);
}

NcclTransport::NcclTransport(const Schedule& schedule, int rank, int ranks, const std::string& unique_id,
                             void* compute_stream)
    : stage_device_(schedule.stage_device), st_(std::make_unique<State>()) {
  if (auto why = p2p_order_mismatch(schedule)) throw std::invalid_argument(*why);
  if (unique_id.size() != sizeof(ncclUniqueId))
    throw std::invalid_argument("NCCL unique id has the wrong size");
  ncclUniqueId id;
  std::memcpy(&id, unique_id.data(), sizeof id);
  st_->compute = static_cast<cudaStream_t>(compute_stream);
  PACI_CUDA_CHECK(cudaStreamCreateWithFlags(&st_->comm_stream, cudaStreamNonBlocking));
  PACI_CUDA_CHECK(cudaEventCreateWithFlags(&st_->ready, cudaEventDisableTiming));
  PACI_NCCL_CHECK(ncclCommInitRank(&st_->comm, ranks, id, rank));
}

NcclTransport::~NcclTransport() {
  if (st_->comm) aborted_ ? ncclCommAbort(st_->comm) : ncclCommDestroy(st_->comm);
  if (st_->ready) cudaEventDestroy(st_->ready);
  if (st_->comm_stream) cudaStreamDestroy(st_->comm_stream);
}

int NcclTransport::peer_of_sender(const MessageKey& key) const {
  return stage_device_.at(sender_stage(key, static_cast<int>(stage_device_.size())));
}

void NcclTransport::send(const MessageKey& key, const float* data, size_t n) {
  // The comm stream waits for the compute stream to have written `data`.
  PACI_CUDA_CHECK(cudaEventRecord(st_->ready, st_->compute));
  PACI_CUDA_CHECK(cudaStreamWaitEvent(st_->comm_stream, st_->ready, 0));
  PACI_NCCL_CHECK(ncclGroupStart());
  PACI_NCCL_CHECK(ncclSend(data, n, ncclFloat, stage_device_.at(key.stage), st_->comm, st_->comm_stream));
  PACI_NCCL_CHECK(ncclGroupEnd());
}

bool NcclTransport::recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) {
  PACI_NCCL_CHECK(ncclGroupStart());
  PACI_NCCL_CHECK(ncclRecv(out, n, ncclFloat, peer_of_sender(key), st_->comm, st_->comm_stream));
  PACI_NCCL_CHECK(ncclGroupEnd());
  cudaEvent_t done;
  PACI_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  PACI_CUDA_CHECK(cudaEventRecord(done, st_->comm_stream));
  // Poll so that a peer that died ends in a timeout, not a hang.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  cudaError_t state;
  while ((state = cudaEventQuery(done)) == cudaErrorNotReady) {
    if (aborted_ || std::chrono::steady_clock::now() > deadline) {
      cudaEventDestroy(done);
      abort();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  if (state != cudaSuccess) cuda::throw_cuda(state, "cudaEventQuery(receive)", __FILE__, __LINE__);
  // The compute stream may use `out` from here on.
  PACI_CUDA_CHECK(cudaStreamWaitEvent(st_->compute, done, 0));
  PACI_CUDA_CHECK(cudaEventDestroy(done));
  return true;
}

void NcclTransport::abort() {
  aborted_ = true;
}

std::string nccl_self_send_recv(size_t n) {
  try {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) return "no CUDA device";
    ncclUniqueId id;
    PACI_NCCL_CHECK(ncclGetUniqueId(&id));
    ncclComm_t comm;
    PACI_NCCL_CHECK(ncclCommInitRank(&comm, 1, id, 0));
    cudaStream_t stream;
    PACI_CUDA_CHECK(cudaStreamCreate(&stream));
    float *a = nullptr, *b = nullptr;
    PACI_CUDA_CHECK(cudaMalloc(&a, n * sizeof(float)));
    PACI_CUDA_CHECK(cudaMalloc(&b, n * sizeof(float)));
    std::vector<float> host(n), back(n, -1.0f);
    for (size_t i = 0; i < n; ++i) host[i] = static_cast<float>(i % 1000) * 0.5f;
    PACI_CUDA_CHECK(cudaMemcpy(a, host.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    PACI_NCCL_CHECK(ncclGroupStart());
    PACI_NCCL_CHECK(ncclSend(a, n, ncclFloat, 0, comm, stream));
    PACI_NCCL_CHECK(ncclRecv(b, n, ncclFloat, 0, comm, stream));
    PACI_NCCL_CHECK(ncclGroupEnd());
    PACI_CUDA_CHECK(cudaStreamSynchronize(stream));
    PACI_CUDA_CHECK(cudaMemcpy(back.data(), b, n * sizeof(float), cudaMemcpyDeviceToHost));
    cudaFree(a);
    cudaFree(b);
    cudaStreamDestroy(stream);
    ncclCommDestroy(comm);
    for (size_t i = 0; i < n; ++i)
      if (back[i] != host[i]) return fmt::format("element {}: received {} but sent {}", i, back[i], host[i]);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace paci
