// One way to get a schedule, whatever its source: a generator of the schedule library by name,
// a CSV or JSON file, or a builder that needs more than the IR (zero-bubble schedules built from
// a cost model, the order the dynamic PACI policy realises in simulation). `paci show`, `sim`,
// `train` and `compare` all ask here. Builders come from the caller (sim/ provides them, see
// sim/builders.h), so schedules/ depends on neither sim/ nor exec/.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "schedules/formats.h"
#include "schedules/ir.h"
#include "schedules/registry.h"

namespace paci {

struct ScheduleRequest {
  std::string name;       // a generator or a builder (zb-1p, zb-2p, paci-dynamic); or
  std::string file;       // a schedule file (.csv / .json); exactly one of the two
  ScheduleParams params;  // stages, microbatches, steps, virtual stages, accumulation
  CsvHints hints;         // for a CSV file
  // --backward: the backward semantics (current, forward, recompute) of a schedule whose
  // policy is current; empty keeps the schedule's own policy.
  std::optional<WeightPolicy> backward;
};

// `s` with the backward semantics `b` (current, forward or recompute) as its policy. Throws
// ParamError for a schedule with another policy (stash, double-buffer), for recompute on a
// schedule with a split backward (I, W), or for a policy that is not a backward semantics.
Schedule with_backward(Schedule s, WeightPolicy b);

// Builds the schedule `name` for `params` (e.g. from a cost model). Throws ParamError or
// ScheduleError for what it cannot build.
using ScheduleBuilder = std::function<Schedule(const std::string& name, const ScheduleParams&)>;
using ScheduleBuilders = std::map<std::string, ScheduleBuilder>;

// The schedule of a request: a builder of that name, else the generator, else the file (read
// and validated). Throws ParamError naming what is allowed for an unknown name.
Schedule get_schedule(const ScheduleRequest& r, const ScheduleBuilders& builders = {});

// The same source for `steps` steps (a pipeline segment): regenerated for a name; for a file,
// the file's schedule repeated steps / (its steps) times, which must be whole (ParamError).
Schedule get_schedule_for_steps(const ScheduleRequest& r, int steps,
                                const ScheduleBuilders& builders = {});

// `times` copies of a complete schedule, one after the other on every device: the micro-batch
// ids of copy k are shifted by k x (its micro-batches), its steps follow the first copy's.
// Valid whenever `s` is (each copy ends with every micro-batch done).
Schedule repeat_schedule(const Schedule& s, int times);

// Generator and builder names, for help texts and errors.
std::vector<std::string> schedule_names(const ScheduleBuilders& builders = {});

}  // namespace paci
