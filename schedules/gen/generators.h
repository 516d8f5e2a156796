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

Schedule gen_gpipe(int P, int M, int N);
Schedule gen_1f1b(int P, int M, int N);
Schedule gen_paci(int P, int M, int N, int a);
Schedule gen_pipedream(int P, int M, int N);
Schedule gen_pipedream_2bw(int P, int M, int N);
Schedule gen_interleaved_1f1b(int D, int M, int N, int v);
Schedule gen_zb_h1(int P, int M, int N);

}  // namespace paci
