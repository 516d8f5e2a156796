#include "exec/mpi/mpi.h"

// The C API only (the C++ bindings include <mpi.h> from their own directory).
#define OMPI_SKIP_MPICXX 1
#include <mpi/mpi.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace paci {
namespace {

constexpr uint32_t kMagic = 0x50414349;  // "PACI"

struct Header {
  uint32_t magic = kMagic;
  int32_t kind = 0, stage = 0, mb = 0;
  int64_t count = 0;
};

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw std::runtime_error(fmt::format("{} failed: {}", what, std::string(msg, len)));
  }
}

int tag_of(const MessageKey& key) {
  // Receives name source and tag exactly; the header check catches any wrap-around.
  return static_cast<int>((static_cast<int64_t>(key.mb) * 3 + static_cast<int>(key.kind)) % (1 << 20));
}

}  // namespace

bool launched_by_mpi_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"})
    if (std::getenv(v)) return true;
  return false;
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_SERIALIZED)
    throw std::runtime_error("the MPI library does not support MPI_THREAD_SERIALIZED");
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::barrier() { check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

std::vector<std::string> MpiSession::gather(const std::string& mine, int root) {
  long long n = static_cast<long long>(mine.size());
  std::vector<long long> sizes(size_);
  check(MPI_Gather(&n, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Gather");
  std::vector<int> counts(size_), displs(size_);
  std::string all;
  if (rank_ == root) {
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      if (total + sizes[r] > (1LL << 31) - 1)
        throw std::runtime_error("gather of more than 2 GiB over MPI");
      counts[r] = static_cast<int>(sizes[r]);
      displs[r] = static_cast<int>(total);
      total += sizes[r];
    }
    all.resize(total);
  }
  check(MPI_Gatherv(mine.data(), static_cast<int>(n), MPI_BYTE, all.data(), counts.data(), displs.data(),
                    MPI_BYTE, root, MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  if (rank_ == root)
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(displs[r], counts[r]));
  return out;
}

std::string MpiSession::broadcast(const std::string& value, int root) {
  long long n = static_cast<long long>(value.size());
  check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
  std::string out = rank_ == root ? value : std::string(n, '\0');
  check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  return out;
}

void MpiSession::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

struct MpiTransport::Pending {
  std::vector<char> buf;
  MPI_Request req = MPI_REQUEST_NULL;
};

MpiTransport::MpiTransport(const Schedule& schedule) : stage_device_(schedule.stage_device) {}

MpiTransport::~MpiTransport() {
  if (!aborted_) {
    reap_sends(true);
  } else {
    for (Pending* p : sends_) {
      MPI_Cancel(&p->req);
      MPI_Request_free(&p->req);
      delete p;
    }
  }
}

int MpiTransport::source_rank(const MessageKey& key) const {
  return stage_device_.at(sender_stage(key, static_cast<int>(stage_device_.size())));
}

void MpiTransport::reap_sends(bool wait) {
  for (auto it = sends_.begin(); it != sends_.end();) {
    int done = 0;
    if (wait) {
      MPI_Wait(&(*it)->req, MPI_STATUS_IGNORE);
      done = 1;
    } else {
      MPI_Test(&(*it)->req, &done, MPI_STATUS_IGNORE);
    }
    if (done) {
      delete *it;
      it = sends_.erase(it);
    } else {
      ++it;
    }
  }
}

void MpiTransport::send(const MessageKey& key, const float* data, size_t n) {
  reap_sends(false);
  auto* p = new Pending;
  Header h;
  h.kind = static_cast<int32_t>(key.kind);
  h.stage = key.stage;
  h.mb = key.mb;
  h.count = static_cast<int64_t>(n);
  p->buf.resize(sizeof h + n * sizeof(float));
  std::memcpy(p->buf.data(), &h, sizeof h);
  std::memcpy(p->buf.data() + sizeof h, data, n * sizeof(float));
  const int dest = stage_device_.at(key.stage);
  check(MPI_Isend(p->buf.data(), static_cast<int>(p->buf.size()), MPI_BYTE, dest, tag_of(key),
                  MPI_COMM_WORLD, &p->req),
        "MPI_Isend");
  sends_.push_back(p);
}

bool MpiTransport::recv(const MessageKey& key, float* out, size_t n, std::chrono::milliseconds timeout) {
  std::vector<char> buf(sizeof(Header) + n * sizeof(float));
  MPI_Request req;
  const int src = source_rank(key);
  check(MPI_Irecv(buf.data(), static_cast<int>(buf.size()), MPI_BYTE, src, tag_of(key), MPI_COMM_WORLD, &req),
        "MPI_Irecv");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int done = 0;
  MPI_Status status;
  auto nap = std::chrono::microseconds(20);
  while (true) {
    check(MPI_Test(&req, &done, &status), "MPI_Test");
    if (done) break;
    reap_sends(false);
    if (aborted_ || std::chrono::steady_clock::now() > deadline) {
      MPI_Cancel(&req);
      MPI_Wait(&req, MPI_STATUS_IGNORE);
      return false;
    }
    std::this_thread::sleep_for(nap);
    if (nap < std::chrono::microseconds(2000)) nap *= 2;
  }
  int bytes = 0;
  MPI_Get_count(&status, MPI_BYTE, &bytes);
  Header h;
  std::memcpy(&h, buf.data(), sizeof h);
  if (static_cast<size_t>(bytes) != buf.size() || h.magic != kMagic || h.kind != static_cast<int32_t>(key.kind) ||
      h.stage != key.stage || h.mb != key.mb || h.count != static_cast<int64_t>(n))
    throw std::runtime_error(fmt::format(
        "rank {} sent a message that does not match the {} expected: header kind {}, stage {}, "
        "micro-batch {}, {} floats in {} bytes (expected {} floats)",
        src, describe(key), h.kind, h.stage, h.mb, h.count, bytes, n));
  std::memcpy(out, buf.data() + sizeof h, n * sizeof(float));
  return true;
}

}  // namespace paci
