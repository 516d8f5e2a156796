#include "exec/runtime/inproc_transport.h"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace paci {

std::string describe(const MessageKey& key) {
  switch (key.kind) {
    case MessageKind::kActivation:
      return fmt::format("activation of micro-batch {} from stage {}", key.mb, key.stage - 1);
    case MessageKind::kGradient:
      return fmt::format("gradient of micro-batch {} from stage {}", key.mb, key.stage + 1);
    case MessageKind::kTiedEmbedding:
      return fmt::format("tied embedding gradient of update {} for stage {}", key.mb, key.stage);
  }
  return "message";
}

void InProcessTransport::send(const MessageKey& key, const float* data, size_t n) {
  std::vector<float> payload(data, data + n);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, fresh] = box_.emplace(Key{static_cast<int>(key.kind), key.stage, key.mb}, std::move(payload));
    if (!fresh) throw std::logic_error("duplicate message: " + describe(key));
  }
  cv_.notify_all();
}

bool InProcessTransport::recv(const MessageKey& key, float* out, size_t n,
                              std::chrono::milliseconds timeout) {
  Key k{static_cast<int>(key.kind), key.stage, key.mb};
  std::unique_lock<std::mutex> lock(mu_);
  bool ok = cv_.wait_for(lock, timeout, [&] { return aborted_.load() || box_.count(k) > 0; });
  if (!ok || aborted_.load()) return false;
  auto it = box_.find(k);
  if (it->second.size() != n)
    throw std::logic_error(fmt::format("{}: {} floats sent, {} expected", describe(key),
                                       it->second.size(), n));
  std::memcpy(out, it->second.data(), n * sizeof(float));
  box_.erase(it);
  return true;
}

void InProcessTransport::abort() {
  aborted_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  cv_.notify_all();
}

size_t InProcessTransport::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return box_.size();
}

}  // namespace paci
