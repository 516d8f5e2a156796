// Transport between threads of one process: a mailbox per message key.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "exec/runtime/transport.h"

namespace paci {

class InProcessTransport : public Transport {
 public:
  void send(const MessageKey& key, const float* data, size_t n) override;
  bool recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) override;
  void abort() override;
  bool aborted() const override { return aborted_.load(); }
  size_t pending() const;  // messages sent and not yet received

 private:
  using Key = std::tuple<int, int, int>;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, std::vector<float>> box_;
  std::atomic<bool> aborted_{false};
};

}  // namespace paci
