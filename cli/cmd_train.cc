// `paci train`: train a GPT with a schedule on the CPU executor.
#include <unistd.h>

#include <atomic>
#include <functional>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "cli/common.h"
#include "cli/data.h"
#include "cli/device.h"
#include "cli/model_flags.h"
#include "exec/model/config.h"
#include "exec/mpi/mpi.h"
#include "exec/runtime/checkpoint.h"
#include "exec/runtime/measured_trace.h"
#include "exec/runtime/trainer.h"
#include "schedules/trace/chrome.h"

namespace paci::cli {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};

// SIGINT (Ctrl-C) and SIGTERM (Slurm, containers) stop the run at once; the state kept is
// the last checkpoint (see exec/runtime/trainer.h). Exit 130 / 143 (128 + signal).
extern "C" void on_stop_signal(int sig) {
  if (g_stop.exchange(true)) std::_Exit(128 + sig);  // second signal: leave now
  g_signal.store(sig);
}

struct TrainFlags {
  ScheduleFlags sched;
  ModelFlags model;
  double lr = 1e-3, wd = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, min_lr = 0.1;
  int warmup = -1, decay_steps = 0;
  int eval_every = 0, eval_batches = 8;
  std::string save, resume, trace, metrics, init_llmc, export_llmc, calibration;
  int save_every = 0;
  uint64_t seed = 1337;
  std::string data = "sotu", cache;
  double stall_timeout = 60;
  DeviceFlags device;
  int hang_rank = -1, hang_after = -1;
  std::string hang_at = "update";
};

}  // namespace

void add_train_command(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  auto* cmd = app.add_subcommand("train", "Train a GPT with a pipeline schedule on the CPU executor "
                                          "(one thread per pipeline device)");
  f->sched.add_to(cmd);
  f->model.add_to(cmd);
  f->device.add_to(cmd);
  cmd->add_option("--lr", f->lr, "Peak learning rate")->capture_default_str();
  cmd->add_option("--warmup", f->warmup, "Warm-up steps (default 1% of the steps, at least 1)");
  cmd->add_option("--decay-steps", f->decay_steps,
                  "Steps of the cosine LR schedule (default: this run's steps; set it to resume a longer run in parts)");
  cmd->add_option("--min-lr", f->min_lr, "Final LR as a fraction of the peak (cosine)")->capture_default_str();
  cmd->add_option("--weight-decay", f->wd, "AdamW weight decay on matrices")->capture_default_str();
  cmd->add_option("--beta1", f->beta1, "AdamW first-moment decay, in [0, 1)")->capture_default_str();
  cmd->add_option("--beta2", f->beta2, "AdamW second-moment decay, in [0, 1) (llm.c uses 0.999)")->capture_default_str();
  cmd->add_option("--eps", f->eps, "AdamW epsilon, in (0, 1]")->capture_default_str();
  cmd->add_option("--eval-every", f->eval_every, "Validation loss every K steps (0: at the end only)")->capture_default_str();
  cmd->add_option("--eval-batches", f->eval_batches, "Micro-batches per validation")->capture_default_str();
  cmd->add_option("--save", f->save, "Checkpoint folder: DIR/step-N/ at the end and every --save-every steps, the older one removed once the new one is complete (a new, empty or paci checkpoint folder)");
  cmd->add_option("--save-every", f->save_every, "Steps per checkpoint (each ends a pipeline segment: a flush)")->capture_default_str();
  cmd->add_option("--resume", f->resume, "Resume from the newest complete checkpoint in a --save folder");
  cmd->add_option("--init-llmc", f->init_llmc, "Start from weights in llm.c's fp32 checkpoint format (with --tied)");
  cmd->add_option("--export-llmc", f->export_llmc, "Write the final weights in llm.c's fp32 checkpoint format (with --tied)");
  cmd->add_option("--seed", f->seed, "Seed of the initial weights")->capture_default_str();
  cmd->add_option("--calibration", f->calibration,
                  "zb-1p / zb-2p / paci-dynamic: build them from this calibration (paci calibrate) instead of the "
                  "analytic model");
  cmd->add_option("--trace", f->trace, "Write a Chrome/Perfetto trace of every action (JSON; the last "
                                       "segment when --save-every splits the run)");
  cmd->add_option("--metrics", f->metrics, "Write metrics as JSON lines (step, loss, lr, tokens/s; val loss)");
  cmd->add_option("--data", f->data, "sotu (GPT-2 BPE, prepared on first use), sotu-bytes (the same text as "
                                     "bytes, vocabulary 256: with --model bytes), synthetic, or a path to a "
                                     "train shard NAME_train.bin (NAME_val.bin next to it)")->capture_default_str();
  cmd->add_option("--cache", f->cache, "Data cache directory (default $PACI_CACHE or ~/.cache/paci)");
  cmd->add_option("--stall-timeout", f->stall_timeout, "Seconds a device may wait before the run is declared stuck")->capture_default_str();
  auto* hang = cmd->add_option("--inject-hang", f->hang_rank,
                               "Fault injection (tests): this rank stops answering after --inject-hang-after updates");
  hang->group("");
  cmd->add_option("--inject-hang-after", f->hang_after, "See --inject-hang")->group("");
  cmd->add_option("--inject-hang-at", f->hang_at, "See --inject-hang: update or checkpoint")->group("");
  cmd->callback([f] {
    TrainOptions o;
    o.schedule = f->sched.request();
    o.model = f->model.config(f->data == "synthetic");
    o.seq_len = f->model.seq_len(o.model);
    o.builders = f->model.schedule_builders(o.model, user_path(f->calibration));
    if (!(f->lr > 0 && f->lr <= 10)) throw UsageError(fmt::format("--lr must be in (0, 10] (got {})", f->lr));
    if (!(f->min_lr >= 0 && f->min_lr <= 1)) throw UsageError(fmt::format("--min-lr must be in 0..1 (got {})", f->min_lr));
    if (!(f->wd >= 0 && f->wd <= 10))
      throw UsageError(fmt::format("--weight-decay must be in 0..10 (got {})", f->wd));
    if (!(f->beta1 >= 0 && f->beta1 < 1)) throw UsageError(fmt::format("--beta1 must be in [0, 1) (got {})", f->beta1));
    if (!(f->beta2 >= 0 && f->beta2 < 1)) throw UsageError(fmt::format("--beta2 must be in [0, 1) (got {})", f->beta2));
    if (!(f->eps > 0 && f->eps <= 1)) throw UsageError(fmt::format("--eps must be in (0, 1] (got {})", f->eps));
    if (f->warmup < -1)
      throw UsageError(fmt::format("--warmup must be >= 0 steps (got {}; leave it out for 1% of the steps)", f->warmup));
    if (f->eval_every < 0) throw UsageError(fmt::format("--eval-every must be >= 0 (got {})", f->eval_every));
    if (f->eval_batches < 1) throw UsageError(fmt::format("--eval-batches must be >= 1 (got {})", f->eval_batches));
    if (f->save_every < 0) throw UsageError(fmt::format("--save-every must be >= 0 (got {})", f->save_every));
    if (f->save_every > 0 && f->save.empty()) throw UsageError("--save-every needs --save DIR");
    if (f->hang_at != "update" && f->hang_at != "checkpoint")
      throw UsageError(fmt::format("--inject-hang-at {}: must be update or checkpoint", f->hang_at));
    if (!(f->stall_timeout >= 0.001 && f->stall_timeout <= 1e6))
      throw UsageError(fmt::format("--stall-timeout {}: must be between 0.001 and 1000000 seconds", f->stall_timeout));
    o.micro_batch = f->model.batch;
    o.adamw.lr = f->lr;
    o.adamw.weight_decay = f->wd;
    o.adamw.beta1 = f->beta1;
    o.adamw.beta2 = f->beta2;
    o.adamw.eps = f->eps;
    o.adamw.min_lr_fraction = f->min_lr;
    o.seed = f->seed;
    o.eval_every = f->eval_every;
    o.eval_batches = f->eval_batches;
    o.save_dir = user_path(f->save);
    o.save_every = f->save_every;
    o.resume_dir = user_path(f->resume);
    o.metrics_path = user_path(f->metrics);
    o.init_llmc = user_path(f->init_llmc);
    o.export_llmc = user_path(f->export_llmc);
    o.stall_timeout = std::chrono::milliseconds(static_cast<long>(f->stall_timeout * 1000));

    // Check the schedule before touching data, so flag errors come first.
    Schedule probe = !o.schedule.file.empty() && o.schedule.params.steps > 0
                         ? get_schedule_for_steps(o.schedule, o.schedule.params.steps, o.builders)
                         : get_schedule(o.schedule, o.builders);
    const int updates = probe.spec.total_microbatches() / probe.accum;
    o.partition = f->model.stage_partition(o.model, probe.stages());
    ExecDevice dev = make_exec_device(f->device, probe.stages());
    o.make_backend = dev.make_backend;
    o.make_transport = dev.make_transport;
    o.peak_flops = dev.peak_flops;
    if (f->decay_steps < 0) throw UsageError(fmt::format("--decay-steps must be >= 0 (got {})", f->decay_steps));
    o.adamw.total_steps = f->decay_steps > 0 ? f->decay_steps : updates;
    o.adamw.warmup_steps = f->warmup >= 0 ? f->warmup : std::max(1, static_cast<int>(o.adamw.total_steps) / 100);

    MpiSession* mpi = mpi_session();
    std::unique_ptr<MpiTransport> mpi_transport;
    const bool reporter = !mpi || mpi->rank() == probe.stage_device[probe.stages() - 1];
    if (mpi) {
      if (mpi->size() != probe.devices())
        throw UsageError(fmt::format("{} ranks were launched but --schedule {} with --stages {} has {} "
                                     "devices: use mpirun -np {}", mpi->size(), probe.name,
                                     probe.stages(), probe.devices(), probe.devices()));
      o.group = mpi;
      mpi_transport = std::make_unique<MpiTransport>(probe, o.stall_timeout);
      o.transport = mpi_transport.get();
      // --inject-hang (tests): this rank stops answering after an update or at a checkpoint.
      if (mpi->rank() == f->hang_rank) {
        const int after = f->hang_after;
        auto hang = [after](int k) {
          if (k == after)
            for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
        };
        if (f->hang_at == "update") o.hooks.after_update = hang;
        else o.hooks.before_checkpoint = hang;
      }
      mpi->set_timeout(o.stall_timeout);
    }
    // Every output is checked before any work (data preparation included).
    try {
      check_outputs(o);
      if (!mpi || mpi->rank() == 0) check_output_file("--trace", user_path(f->trace));
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    // Rank 0 prepares the data first so that ranks do not race on the cache.
    std::ostringstream quiet;
    std::ostream& data_log = !mpi || mpi->rank() == 0 ? static_cast<std::ostream&>(std::cout) : quiet;
    TrainData data;
    // Preparing the data may take minutes on first use: this wait gets at least 30 minutes.
    const auto prep_wait = std::max<std::chrono::milliseconds>(o.stall_timeout, std::chrono::minutes(30));
    if (mpi && mpi->rank() != 0) mpi->barrier("the data preparation (rank 0 prepares)", prep_wait);
    data = open_train_data(f->data, user_path(f->cache), o.micro_batch, o.seq_len, o.model.vocab_size,
                           o.seed, data_log);
    if (mpi && mpi->rank() == 0) mpi->barrier("the data preparation (rank 0 prepares)", prep_wait);
    o.train = data.train.get();
    o.val = data.val.get();
    o.log = &std::cout;
    o.live = !mpi && isatty(STDOUT_FILENO);
    o.stop = &g_stop;
    if (reporter)
      std::cout << fmt::format("paci train: {}{} on {} stages, {} micro-batches of {}x{} per step, {} "
                             "steps ({} updates), model {} ({:.1f}M parameters), partition {}, data {}, device {}\n",
                             probe.name + (probe.policy == WeightPolicy::kForward || probe.policy == WeightPolicy::kRecompute
                                               ? fmt::format(" (backward {})", policy_name(probe.policy))
                                               : std::string()),
                             mpi ? fmt::format(" ({} MPI ranks)", mpi->size()) : "",
                             probe.stages(), probe.spec.microbatches, o.micro_batch,
                             o.seq_len, probe.spec.steps, updates, describe(o.model),
                             num_parameters(o.model) / 1e6, format_layout(o.partition), data.description,
                             dev.description);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    TrainReport rep;
    try {
      rep = train(o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    } catch (const CheckpointError& e) {
      throw UsageError(e.what());
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    // 130 for SIGINT (main's Interrupted), 143 for SIGTERM.
    auto leave_interrupted = [&] {
      if (g_signal.load() == SIGTERM) {
        std::cout.flush();
        mpi_transport.reset();
        std::exit(128 + SIGTERM);  // static destructors end the MPI session
      }
      throw Interrupted();
    };
    if (!f->trace.empty() && (!mpi || mpi->rank() == 0)) {
      write_chrome_trace(measured_trace(rep.schedule, rep.actions, rep.memory, o.micro_batch, o.seq_len,
                                        "executor on " + dev.description),
                         user_path(f->trace));
      std::cout << "wrote trace " << f->trace << "\n";
    }
    if (!rep.reports) {
      if (rep.interrupted) leave_interrupted();
      return;
    }
    if (!f->metrics.empty()) std::cout << "wrote metrics " << f->metrics << "\n";
    if (rep.interrupted) {
      const char* sig = g_signal.load() == SIGTERM ? "SIGTERM" : "SIGINT";
      if (!rep.checkpoint.empty())
        std::cout << fmt::format("interrupted ({}) at step {}: nothing written; --resume {} restarts from step {} "
                                 "(the last checkpoint; {} steps after it are redone) and gives the same "
                                 "result as an uninterrupted run\n", sig, rep.interrupted_at, rep.checkpoint,
                                 rep.resume_step, rep.interrupted_at - rep.resume_step);
      else
        std::cout << fmt::format("interrupted ({}) at step {}: nothing saved, no checkpoint was written yet "
                                 "(--save DIR --save-every K writes one every K steps); a new run starts from "
                                 "step 0\n", sig, rep.interrupted_at);
      leave_interrupted();
    }
    std::cout << fmt::format("done: {} steps in {:.1f} s, {:.0f} tokens/s, final train loss {:.4f}",
                             rep.updates_done, rep.seconds, rep.tokens_per_second,
                             rep.loss.empty() ? 0.0 : rep.loss.back());
    if (!rep.val_loss.empty())
      std::cout << fmt::format(", val loss {:.4f} (perplexity {:.2f})", rep.val_loss.back().second,
                               std::exp(rep.val_loss.back().second));
    std::cout << "\n";
    // Measured memory: what each device's stages had allocated at most (the allocator's count),
    // and this process's peak resident set.
    std::map<int, size_t> allocated;
    for (size_t st = 0; st < rep.memory.size() && st < rep.schedule.stage_device.size(); ++st)
      if (rep.memory[st].device_allocated_peak > 0)
        allocated[rep.schedule.stage_device[st]] = rep.memory[st].device_allocated_peak;
    if (!allocated.empty()) {
      std::string per;
      for (const auto& [d, bytes] : allocated) per += fmt::format(" {}:{:.1f}", d, bytes / 1048576.0);
      std::cout << fmt::format("memory: allocated peak per device (MiB){}; process peak RSS {:.1f} MiB\n", per,
                               peak_rss_bytes() / 1048576.0);
    }
    if (!rep.checkpoint.empty()) std::cout << "checkpoint: " << rep.checkpoint << "\n";
  });
}

}  // namespace paci::cli
