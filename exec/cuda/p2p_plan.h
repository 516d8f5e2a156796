// Which NCCL channel (communicator + its stream) a point-to-point message between two ranks
// uses in NcclTransport (nccl_transport.h explains why). Host-only, CPU-tested against every
// schedule of the library (tests/cuda/p2p_plan_test.cc: in-order channels with rendezvous
// sends never deadlock with two channels; with one they do, for 1F1B).
#pragma once

namespace paci {
namespace cuda {

constexpr int kNcclChannels = 2;
constexpr int kToHigherRank = 0;  // activations in a plain pipeline
constexpr int kToLowerRank = 1;   // gradients in a plain pipeline

// The channel of a message from rank `from` to rank `to` (from != to): the sender and the
// receiver compute the same value, so the k-th send of a pair meets the k-th receive.
inline int nccl_channel(int from, int to) { return to > from ? kToHigherRank : kToLowerRank; }

}  // namespace cuda
}  // namespace paci
