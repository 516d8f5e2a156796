// --device, --precision and --sm-partition of the commands that run the executor.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "exec/model/backend.h"
#include "exec/runtime/transport.h"

namespace paci::cli {

struct DeviceFlags {
  std::string device = "cpu";
  std::string precision = "fp32";     // cuda: fp32, tf32, bf16
  std::string sm_partition = "off";   // cuda: off, equal, weighted, or e.g. 64+32+32

  void add_to(CLI::App* cmd);
};

struct ExecDevice {
  // One backend per stage; empty for the CPU (the runtime's shared CPU backend).
  std::function<std::unique_ptr<Backend>(int stage)> make_backend;
  // The in-process transport between those backends (device-to-device); empty for the CPU.
  std::function<std::unique_ptr<Transport>(const std::vector<Backend*>&)> make_transport;
  double peak_flops = 0;       // for MFU; 0 = unknown
  std::string description;     // for the run's header line and traces
  std::shared_ptr<void> keep;  // what the backends need alive (green contexts)
};

// Throws UsageError for an unknown device or precision, RunError when CUDA is asked of a
// build or machine without it.
ExecDevice make_exec_device(const DeviceFlags& flags, int stages);

}  // namespace paci::cli
