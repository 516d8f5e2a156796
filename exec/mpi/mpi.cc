#include "exec/mpi/mpi.h"

// The C API only (the C++ bindings include <mpi.h> from their own directory).
#define OMPI_SKIP_MPICXX 1
#include <mpi/mpi.h>

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
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

// How a rank waits for a message: it polls MPI_Test, giving its core away between polls
// (sched_yield) for the first kSpin of a wait, then sleeps in naps that double from 20 us up to
// kMaxNap. A message that arrives is taken within about one nap, so a receive on the critical
// path is late by at most kMaxNap (naps capped at 2 ms let a rank sleep up to 2 ms past its
// message), while a long wait in a pipeline bubble holds the core only for kSpin.
class Poller {
 public:
  void pause() {
    const auto now = std::chrono::steady_clock::now();
    if (now - start_ < kSpin) {
      sched_yield();
      return;
    }
    std::this_thread::sleep_for(nap_);
    if (nap_ < kMaxNap) nap_ = std::min(kMaxNap, 2 * nap_);
  }

 private:
  static constexpr std::chrono::microseconds kSpin{1000}, kMaxNap{200};
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::microseconds nap_{20};
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
  auto* c = new MPI_Comm;
  check(MPI_Comm_dup(MPI_COMM_WORLD, c), "MPI_Comm_dup");
  comm_ = c;
}

MpiSession::~MpiSession() {
  delete static_cast<MPI_Comm*>(comm_);
  MPI_Finalize();
}

// Outstanding non-blocking operations of one collective, each with the peer it involves and
// what it is (for the error message).
struct MpiSession::Requests {
  std::vector<MPI_Request> req;
  std::vector<int> peer;
  std::vector<const char*> kind;
  void add(MPI_Request r, int p, const char* k) {
    req.push_back(r);
    peer.push_back(p);
    kind.push_back(k);
  }
};

int MpiSession::next_tag() {
  // Collectives are called in the same order on every rank; 4 tags each, below the 32767
  // every MPI library allows.
  const int t = (seq_ % 8000) * 4;
  ++seq_;
  return t;
}

void MpiSession::wait(Requests& r, const std::string& what, std::chrono::milliseconds timeout) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + timeout;
  Poller poller;
  std::vector<char> done(r.req.size(), 0);
  while (true) {
    bool all = true;
    for (size_t i = 0; i < r.req.size(); ++i) {
      if (done[i]) continue;
      int flag = 0;
      check(MPI_Test(&r.req[i], &flag, MPI_STATUS_IGNORE), "MPI_Test");
      if (flag) done[i] = 1;
      else all = false;
    }
    if (all) return;
    if (std::chrono::steady_clock::now() > deadline) {
      std::set<int> missing;
      std::string kinds;
      for (size_t i = 0; i < r.req.size(); ++i)
        if (!done[i]) missing.insert(r.peer[i]), kinds = r.kind[i];
      std::string peers;
      for (int p : missing) peers += (peers.empty() ? "" : ", ") + std::to_string(p);
      const size_t n = missing.size();
      throw std::runtime_error(fmt::format(
          "stuck: rank {} waited {:.1f} s at {} for rank{} {} ({}): {} stopped answering (--stall-timeout)",
          rank_, timeout.count() / 1000.0, what, n > 1 ? "s" : "", peers, kinds, n > 1 ? "they" : "that rank"));
    }
    poller.pause();
  }
}

void MpiSession::barrier(const std::string& what, std::chrono::milliseconds timeout) {
  if (size_ == 1) return;
  MPI_Comm comm = *static_cast<MPI_Comm*>(comm_);
  const int tag = next_tag();
  char token = 1;
  std::vector<char> in(size_, 0);
  if (rank_ == 0) {
    Requests arrive;
    for (int r = 1; r < size_; ++r) {
      MPI_Request q;
      check(MPI_Irecv(&in[r], 1, MPI_CHAR, r, tag, comm, &q), "MPI_Irecv");
      arrive.add(q, r, "its arrival at the barrier");
    }
    wait(arrive, what, timeout);
    Requests release;
    for (int r = 1; r < size_; ++r) {
      MPI_Request q;
      check(MPI_Isend(&token, 1, MPI_CHAR, r, tag + 1, comm, &q), "MPI_Isend");
      release.add(q, r, "taking the barrier's release");
    }
    wait(release, what, timeout);
  } else {
    Requests rq;
    MPI_Request q;
    check(MPI_Isend(&token, 1, MPI_CHAR, 0, tag, comm, &q), "MPI_Isend");
    rq.add(q, 0, "its release of the barrier, given when every rank arrived");
    check(MPI_Irecv(&in[0], 1, MPI_CHAR, 0, tag + 1, comm, &q), "MPI_Irecv");
    rq.add(q, 0, "its release of the barrier, given when every rank arrived");
    wait(rq, what, timeout);
  }
}

std::vector<std::string> MpiSession::gather(const std::string& mine, int root, const std::string& what) {
  if (mine.size() > (1u << 31) - 1) throw std::runtime_error("gather of more than 2 GiB over MPI");
  std::vector<std::string> out;
  if (size_ == 1) {
    out.push_back(mine);
    return out;
  }
  MPI_Comm comm = *static_cast<MPI_Comm*>(comm_);
  const int tag = next_tag();
  long long n = static_cast<long long>(mine.size());
  if (rank_ != root) {
    Requests rq;
    MPI_Request q;
    check(MPI_Isend(&n, 1, MPI_LONG_LONG, root, tag, comm, &q), "MPI_Isend");
    rq.add(q, root, "the gather's receiver");
    check(MPI_Isend(mine.data(), static_cast<int>(n), MPI_BYTE, root, tag + 1, comm, &q), "MPI_Isend");
    rq.add(q, root, "the gather's receiver");
    wait(rq, what, timeout_);
    return out;
  }
  std::vector<long long> sizes(size_, 0);
  Requests rs;
  for (int r = 0; r < size_; ++r) {
    if (r == root) continue;
    MPI_Request q;
    check(MPI_Irecv(&sizes[r], 1, MPI_LONG_LONG, r, tag, comm, &q), "MPI_Irecv");
    rs.add(q, r, "its part of the gather");
  }
  wait(rs, what, timeout_);
  out.resize(size_);
  Requests rd;
  for (int r = 0; r < size_; ++r) {
    if (r == root) {
      out[r] = mine;
      continue;
    }
    if (sizes[r] < 0 || sizes[r] > (1LL << 31) - 1)
      throw std::runtime_error(fmt::format("rank {} announced {} bytes for {}", r, sizes[r], what));
    out[r].resize(static_cast<size_t>(sizes[r]));
    MPI_Request q;
    check(MPI_Irecv(out[r].data(), static_cast<int>(sizes[r]), MPI_BYTE, r, tag + 1, comm, &q), "MPI_Irecv");
    rd.add(q, r, "its part of the gather");
  }
  wait(rd, what, timeout_);
  return out;
}

void MpiSession::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

struct MpiTransport::Pending {
  std::vector<char> buf;
  int dest = 0;
  MPI_Request req = MPI_REQUEST_NULL;
};

MpiTransport::MpiTransport(const Schedule& schedule, std::chrono::milliseconds stall_timeout)
    : stage_device_(schedule.stage_device), stall_timeout_(stall_timeout) {}

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
    MPI_Test(&(*it)->req, &done, MPI_STATUS_IGNORE);
    if (wait && !done) {
      // Bounded: a rank that never takes its message must not keep this one alive.
      const auto deadline = std::chrono::steady_clock::now() + stall_timeout_;
      Poller poller;
      while (!done) {
        if (std::chrono::steady_clock::now() > deadline) {
          int me = 0;
          MPI_Comm_rank(MPI_COMM_WORLD, &me);
          std::fprintf(stderr, "error: stuck: rank %d waited %.1f s at the end of the run for rank %d to "
                       "receive a message: that rank stopped answering (--stall-timeout)\n",
                       me, stall_timeout_.count() / 1000.0, (*it)->dest);
          std::fflush(stderr);
          MPI_Abort(MPI_COMM_WORLD, 1);
          std::_Exit(1);
        }
        poller.pause();
        MPI_Test(&(*it)->req, &done, MPI_STATUS_IGNORE);
      }
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
  p->dest = dest;
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
  Poller poller;
  while (true) {
    check(MPI_Test(&req, &done, &status), "MPI_Test");
    if (done) break;
    reap_sends(false);
    if (aborted_ || std::chrono::steady_clock::now() > deadline) {
      MPI_Cancel(&req);
      MPI_Wait(&req, MPI_STATUS_IGNORE);
      return false;
    }
    poller.pause();
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
