// Which NCCL channel (communicator + its stream) a point-to-point message between two ranks
// uses in NcclTransport (nccl_transport.h explains why). Host-only, CPU-tested against every
// schedule of the library (tests/cuda/p2p_plan_test.cc: in-order channels with rendezvous
// sends never deadlock with two channels; with one they do, for 1F1B).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "schedules/ir.h"

namespace paci {
namespace cuda {

constexpr int kNcclChannels = 2;
constexpr int kToHigherRank = 0;  // activations in a plain pipeline
constexpr int kToLowerRank = 1;   // gradients in a plain pipeline

// The channel of a message from rank `from` to rank `to` (from != to): the sender and the
// receiver compute the same value, so the k-th send of a pair meets the k-th receive.
inline int nccl_channel(int from, int to) { return to > from ? kToHigherRank : kToLowerRank; }

// A model of the transport: per device, in program order, the NCCL operations of a schedule
// (a receive from the previous stage's device and a send to the next one's for F; the other
// way for B and I; none between stages of one device), on one channel or the two above.
struct NcclOp {
  bool send;
  int peer;
  int channel;
};
std::vector<std::vector<NcclOp>> nccl_ops(const Schedule& s, bool two_channels);
// Runs the model: each device's thread posts its sends and goes on, posts a receive and waits;
// each (device, channel) stream matches its head send with the peer's head receive. "" when
// every device finishes, else the first device that stays stuck and where.
std::string nccl_first_stuck(const std::vector<std::vector<NcclOp>>& ops);
// One line naming the schedule and where it would deadlock, or nullopt: the NCCL transport
// refuses such a schedule before any operation.
std::optional<std::string> nccl_deadlock(const Schedule& s);

}  // namespace cuda
}  // namespace paci
