// Generators of the schedule library (one file each). Parameters are already checked by
// make_schedule (registry.cc); each generator returns a schedule with its declared bounds.
#pragma once

#include <vector>

#include "schedules/ir.h"

namespace paci {

// 1F1B order for one stage over micro-batches [first, first+count): warm-up of
// min(P-1-s, count) forwards, then one forward one backward, then the remaining backwards;
// an OPT after every accum-th backward. The building block of 1f1b (per step), paci,
// pipedream and pipedream-2bw (over the whole run, no flush).
void append_1f1b(std::vector<Action>& prog, int stage, int P, int first, int count, int accum);

// A schedule skeleton: spec, one stage per device (stage s on device s), empty programs.
Schedule linear_skeleton(const char* name, int P, int M, int N, int accum, WeightPolicy policy);

// Per stage of the V (2D of them): F and B seconds, and activation bytes per micro-batch
// (empty: equal). All empty: F = 1, B = 2 and equal activations on every stage.
struct PaciVCosts {
  std::vector<double> f, b, act;
};
Schedule gen_gpipe(int P, int M, int N);
Schedule gen_1f1b(int P, int M, int N);
Schedule gen_paci(int P, int M, int N, int a);
Schedule gen_pipedream(int P, int M, int N);
Schedule gen_pipedream_2bw(int P, int M, int N);
Schedule gen_interleaved_1f1b(int D, int M, int N, int v);
Schedule gen_zb_h1(int P, int M, int N);
Schedule gen_zb_v(int D, int M, int N);
Schedule gen_v_half(int D, int M, int N);
Schedule gen_v_min(int D, int M, int N);
Schedule gen_dualpipev(int D, int M, int N);
Schedule gen_interleaved_zb(int D, int M, int N, int v);
Schedule gen_looped_bfs(int D, int M, int N, int v);
Schedule gen_paci_v(int D, int M, int N, int a, const PaciVCosts& costs = {});

// Activation caps in stage activations: per device (per stage for paci-v); see each file.
inline int zb_v_cap(int D) { return 2 * D; }
inline int v_half_cap(int D) { return D + 1; }
int v_min_cap(int D);
int interleaved_zb_cap(int D, int M, int v);
int paci_v_cap(int D, int stage);

// paci-v's periodic steady state (paci_v.cc): in whole units of time (F = 1, B = 2 without
// costs), micro-batch m's F and B of stage s start at f[s] + m period and b[s] + m period;
// cap[s] micro-batches are in flight on s; device_peak[d] stage activations on device d at
// most.
struct PaciVPattern {
  int period = 0;
  std::vector<int> f, b, cap, device_peak;
};
PaciVPattern paci_v_pattern(int D, const PaciVCosts& costs = {});

// The V placement on D devices: 2D stages, device d holds stages d and 2D-1-d, so the
// first and the last stage share device 0 and the turn (stages D-1, D) is on device D-1.
std::vector<int> v_placement(int D);

// The unit-time list scheduler (list_schedule.cc, where its rules are described): plays a
// split-backward pipeline with any stage-to-device map forward in time with fixed durations
// and returns the order each device ran, micro-batches 0..microbatches-1, no OPT.
struct ListScheduleOptions {
  std::vector<int> stage_device;  // device of each stage; the number of stages is its size
  int microbatches = 1;
  double f = 1, i = 1, w = 1;     // durations of F, I, W
  int device_cap = 0;             // activation slots per device (>= its stages); 0 = no cap
};
std::vector<std::vector<Action>> list_schedule(const ListScheduleOptions& o);

// N flush steps repeating one step's per-device order (micro-batches 0..M-1, no OPT), each
// ending with an OPT per stage of the device; declared drift, delay 0 and one weight copy.
Schedule flush_steps(const char* name, int D, int v, int M, int N, std::vector<int> stage_device,
                     const std::vector<std::vector<Action>>& step);

}  // namespace paci
