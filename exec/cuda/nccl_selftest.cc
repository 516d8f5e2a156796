// GPU check: a 1-rank NCCL communicator sends to itself and receives (the NCCL transport's
// calls); prints one line and exits 0 on success, 1 on a mismatch or error, 3 without a GPU.
#include <cstdio>
#include <string>

#include "exec/cuda/nccl_transport.h"

int main() {
  const size_t n = 8 * 1024 * 768;  // one activation message of gpt2-124m at B=8, T=1024... /8
  std::string err = paci::nccl_self_send_recv(n);
  if (err == "no CUDA device") {
    std::printf("nccl self send/recv: no CUDA device\n");
    return 3;
  }
  std::printf("nccl self send/recv of %zu floats: %s\n", n, err.empty() ? "ok" : err.c_str());
  return err.empty() ? 0 : 1;
}
