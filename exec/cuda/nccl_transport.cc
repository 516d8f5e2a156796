#include "exec/cuda/nccl_transport.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "exec/cuda/check.h"
#include "exec/cuda/host_pool.h"
#include "exec/cuda/p2p_plan.h"
#include "exec/runtime/p2p_order.h"

#define PACI_NCCL_CHECK(expr)                                                                     \
  do {                                                                                            \
    const ncclResult_t paci_r_ = (expr);                                                          \
    if (paci_r_ != ncclSuccess)                                                                   \
      throw std::runtime_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": " #expr \
                               " failed: " + ncclGetErrorString(paci_r_));                        \
  } while (0)

namespace paci {

namespace {
size_t round256(size_t b) { return (b + 255) / 256 * 256; }
}  // namespace

struct NcclTransport::State {
  int device = 0;
  cudaStream_t compute = nullptr;
  // Channel kToHigherRank / kToLowerRank (p2p_plan.h): a communicator and its own stream each.
  ncclComm_t comm[cuda::kNcclChannels] = {nullptr, nullptr};
  cudaStream_t stream[cuda::kNcclChannels] = {nullptr, nullptr};

  std::mutex mu;  // everything below
  std::vector<cudaEvent_t> spare_events;
  cuda::BlockPool pool;  // per-message send buffers, by size
  struct InFlight {
    void* buf;
    size_t bytes;
    cudaEvent_t sent;  // after the last use of buf (the send, or the copy out of a self message)
  };
  std::deque<InFlight> in_flight;
  struct Local {  // a message to this rank itself
    void* buf;
    size_t n;
  };
  std::map<std::tuple<int, int, int>, Local> local;
  std::condition_variable local_cv;

  cudaEvent_t event() {  // under mu
    if (!spare_events.empty()) {
      cudaEvent_t e = spare_events.back();
      spare_events.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    PACI_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  // Finished sends give their buffers and events back (under mu).
  void reclaim() {
    while (!in_flight.empty()) {
      const cudaError_t q = cudaEventQuery(in_flight.front().sent);
      if (q == cudaErrorNotReady) break;
      if (q != cudaSuccess) cuda::throw_cuda(q, "cudaEventQuery(send)", __FILE__, __LINE__);
      pool.give(in_flight.front().buf, in_flight.front().bytes);
      spare_events.push_back(in_flight.front().sent);
      in_flight.pop_front();
    }
  }
  void* buffer(size_t bytes) {  // under mu
    void* p = pool.take(bytes);
    if (!p) PACI_CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
  }
};

std::string NcclTransport::make_unique_id() {
  ncclUniqueId id;
  PACI_NCCL_CHECK(ncclGetUniqueId(&id));
  return std::string(reinterpret_cast<const char*>(&id), sizeof id);
}

NcclTransport::NcclTransport(const Schedule& schedule, int rank, int ranks, const std::string& unique_id,
                             void* compute_stream, int cuda_device)
    : stage_device_(schedule.stage_device), rank_(rank), st_(std::make_unique<State>()) {
  if (auto why = p2p_order_mismatch(schedule)) throw std::invalid_argument(*why);
  if (auto why = cuda::nccl_deadlock(schedule)) throw std::invalid_argument(*why);
  if (unique_id.size() != sizeof(ncclUniqueId))
    throw std::invalid_argument("NCCL unique id has the wrong size");
  ncclUniqueId id;
  std::memcpy(&id, unique_id.data(), sizeof id);
  st_->device = cuda_device;
  st_->compute = static_cast<cudaStream_t>(compute_stream);
  PACI_CUDA_CHECK(cudaSetDevice(cuda_device));
  for (cudaStream_t& s : st_->stream) PACI_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  PACI_NCCL_CHECK(ncclCommInitRank(&st_->comm[0], ranks, id, rank));
  // The second communicator: the same ranks (a collective call on every rank, in this order).
  PACI_NCCL_CHECK(ncclCommSplit(st_->comm[0], 0, rank, &st_->comm[1], nullptr));
}

NcclTransport::~NcclTransport() {
  (void)cudaSetDevice(st_->device);
  if (!aborted_.load()) {  // let queued sends finish before their buffers go
    for (cudaStream_t s : st_->stream)
      if (s) (void)cudaStreamSynchronize(s);
    if (st_->compute) (void)cudaStreamSynchronize(st_->compute);
  }
  for (ncclComm_t c : st_->comm)
    if (c) aborted_.load() ? ncclCommAbort(c) : ncclCommDestroy(c);
  for (auto& f : st_->in_flight) {
    (void)cudaFree(f.buf);
    (void)cudaEventDestroy(f.sent);
  }
  for (auto& [k, l] : st_->local) (void)cudaFree(l.buf);
  for (auto& b : st_->pool.release()) (void)cudaFree(b.first);
  for (cudaEvent_t e : st_->spare_events) (void)cudaEventDestroy(e);
  for (cudaStream_t s : st_->stream)
    if (s) (void)cudaStreamDestroy(s);
}

int NcclTransport::peer_of_sender(const MessageKey& key) const {
  return stage_device_.at(sender_stage(key, static_cast<int>(stage_device_.size())));
}

void NcclTransport::send(const MessageKey& key, const float* data, size_t n) {
  State& st = *st_;
  PACI_CUDA_CHECK(cudaSetDevice(st.device));
  const int peer = stage_device_.at(key.stage);
  const size_t bytes = round256(n * sizeof(float));
  std::unique_lock<std::mutex> lock(st.mu);
  st.reclaim();
  // The per-message copy, on the compute stream: after the kernels that wrote `data`, before
  // any later kernel that rewrites it.
  void* buf = st.buffer(bytes);
  if (n > 0) PACI_CUDA_CHECK(cudaMemcpyAsync(buf, data, n * sizeof(float), cudaMemcpyDeviceToDevice, st.compute));
  if (peer == rank_) {
    if (!st.local.emplace(std::make_tuple(static_cast<int>(key.kind), key.stage, key.mb), State::Local{buf, n}).second)
      throw std::logic_error("duplicate message: " + describe(key));
    lock.unlock();
    st.local_cv.notify_all();
    return;
  }
  const int dir = cuda::nccl_channel(rank_, peer);
  cudaEvent_t ready = st.event();
  PACI_CUDA_CHECK(cudaEventRecord(ready, st.compute));
  PACI_CUDA_CHECK(cudaStreamWaitEvent(st.stream[dir], ready, 0));
  st.spare_events.push_back(ready);  // reusable at once: the wait captured its state
  PACI_NCCL_CHECK(ncclSend(buf, n, ncclFloat, peer, st.comm[dir], st.stream[dir]));
  cudaEvent_t sent = st.event();
  PACI_CUDA_CHECK(cudaEventRecord(sent, st.stream[dir]));
  st.in_flight.push_back({buf, bytes, sent});
}

bool NcclTransport::recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) {
  State& st = *st_;
  PACI_CUDA_CHECK(cudaSetDevice(st.device));
  const int peer = peer_of_sender(key);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (peer == rank_) {
    std::unique_lock<std::mutex> lock(st.mu);
    const auto k = std::make_tuple(static_cast<int>(key.kind), key.stage, key.mb);
    if (!st.local_cv.wait_until(lock, deadline, [&] { return aborted_.load() || st.local.count(k) > 0; }) ||
        aborted_.load())
      return false;
    State::Local l = st.local.at(k);
    st.local.erase(k);
    if (l.n != n) throw std::logic_error(fmt::format("{}: {} floats sent, {} expected", describe(key), l.n, n));
    if (n > 0) PACI_CUDA_CHECK(cudaMemcpyAsync(out, l.buf, n * sizeof(float), cudaMemcpyDeviceToDevice, st.compute));
    cudaEvent_t copied = st.event();
    PACI_CUDA_CHECK(cudaEventRecord(copied, st.compute));
    st.in_flight.push_back({l.buf, round256(n * sizeof(float)), copied});
    return true;
  }
  const int dir = cuda::nccl_channel(peer, rank_);  // the sender's choice
  cudaEvent_t done = nullptr;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    // The landing buffer may still be read by kernels queued on the compute stream: the comm
    // stream writes it only after them.
    cudaEvent_t free_now = st.event();
    PACI_CUDA_CHECK(cudaEventRecord(free_now, st.compute));
    PACI_CUDA_CHECK(cudaStreamWaitEvent(st.stream[dir], free_now, 0));
    st.spare_events.push_back(free_now);
    PACI_NCCL_CHECK(ncclRecv(out, n, ncclFloat, peer, st.comm[dir], st.stream[dir]));
    done = st.event();
    PACI_CUDA_CHECK(cudaEventRecord(done, st.stream[dir]));
  }
  // Poll so that a peer that died ends in a timeout, not a hang.
  cudaError_t state;
  while ((state = cudaEventQuery(done)) == cudaErrorNotReady) {
    if (aborted_.load() || std::chrono::steady_clock::now() > deadline) {
      abort();  // the communicators are aborted (not destroyed) at destruction
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  if (state != cudaSuccess) cuda::throw_cuda(state, "cudaEventQuery(receive)", __FILE__, __LINE__);
  // The compute stream may use `out` from here on.
  PACI_CUDA_CHECK(cudaStreamWaitEvent(st.compute, done, 0));
  std::lock_guard<std::mutex> lock(st.mu);
  st.spare_events.push_back(done);
  return true;
}

void NcclTransport::abort() {
  aborted_.store(true);
  st_->local_cv.notify_all();
}

std::string nccl_self_send_recv(size_t n) {
  try {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) return "no CUDA device";
    PACI_CUDA_CHECK(cudaSetDevice(0));
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
    PACI_CUDA_CHECK(cudaMemset(b, 0xff, n * sizeof(float)));  // poisoned: NaN until received
    // A self send/receive must be one group (each waits for the other).
    PACI_NCCL_CHECK(ncclGroupStart());
    PACI_NCCL_CHECK(ncclSend(a, n, ncclFloat, 0, comm, stream));
    PACI_NCCL_CHECK(ncclRecv(b, n, ncclFloat, 0, comm, stream));
    PACI_NCCL_CHECK(ncclGroupEnd());
    PACI_CUDA_CHECK(cudaStreamSynchronize(stream));
    PACI_CUDA_CHECK(cudaMemcpy(back.data(), b, n * sizeof(float), cudaMemcpyDeviceToHost));
    // The split the transport makes for its second direction must work on this NCCL too.
    ncclComm_t second = nullptr;
    PACI_NCCL_CHECK(ncclCommSplit(comm, 0, 0, &second, nullptr));
    cudaFree(a);
    cudaFree(b);
    cudaStreamDestroy(stream);
    if (second) ncclCommDestroy(second);
    ncclCommDestroy(comm);
    for (size_t i = 0; i < n; ++i)
      if (back[i] != host[i]) return fmt::format("element {}: received {} but sent {}", i, back[i], host[i]);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace paci
