// Transport between stages on one GPU, each stage a CudaBackend on its own stream: a message
// is a device-to-device copy on the sender's stream into a buffer from the stream-ordered
// allocator, and an event; the receiver's stream waits on that event and copies out. Nothing
// goes through host memory and no thread blocks on the GPU.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "exec/model/backend.h"
#include "exec/runtime/transport.h"

namespace paci {

class CudaDeviceTransport : public Transport {
 public:
  // stage_backends: the CudaBackend of every stage (all on one device).
  explicit CudaDeviceTransport(const std::vector<Backend*>& stage_backends);
  ~CudaDeviceTransport() override;

  void send(const MessageKey& key, const float* data, size_t n) override;
  bool recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) override;
  void abort() override;
  bool aborted() const override;

 private:
  struct Message {
    float* buf = nullptr;
    void* ready = nullptr;  // cudaEvent_t recorded on the sender's stream after the copy
    size_t n = 0;
  };
  using Key = std::tuple<int, int, int>;
  void* stream_of(int stage) const;
  std::vector<Backend*> backends_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Message> box_;
  bool aborted_ = false;
};

}  // namespace paci
