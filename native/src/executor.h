// Runs a validated launch_plan on one backend: copies a tick's inputs in, runs every launch in plan order,
// copies the requested outputs out. Makes no planning decisions. One tick at a time per executor.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "plan.h"

namespace loom {

// tick_input / tick_output: backend.h.

struct executor_options {
  std::string backend = "cpu"; // "cpu" | "cuda"
  int threads = 0;             // 0: hardware concurrency
  bool poison_outputs = false; // debug: output slots are filled with 0xFF bytes (NaN) before every tick's launches
  cuda_options cuda;           // backend "cuda" only
};

class executor {
 public:
  executor(launch_plan plan, const uint8_t* weights, size_t weight_bytes, const executor_options& opts);
  ~executor();
  executor(const executor&) = delete;
  executor& operator=(const executor&) = delete;

  // active: one byte per tenant. Output i is written to dst[i] (outputs[i].bytes bytes).
  void run_tick(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                uint8_t* const* dst);

  const launch_plan& plan() const { return plan_; }
  const char* backend_name() const { return backend_.ops->name; }
  int threads() const { return backend_.ops->threads(backend_.ctx); }
  backend_stats stats();
  // Replays a whole tick `iters` times (backends with a captured tick only); microseconds per replay.
  // `active` null: every tenant live; otherwise one byte per plan tenant.
  void bench(int iters, const tenant_mask* active, std::vector<double>& wall_us, std::vector<double>& device_us);
  // Space-only measurement: every executor's full tick launched at once, each on its own stream (all must
  // run the CUDA backend); per round the host wall time and device time, microseconds.
  static void bench_concurrent(const std::vector<executor*>& execs, int iters, std::vector<double>& wall_us,
                               std::vector<double>& device_us);
  // Device time of every launch of one eager tick (backends with a captured tick only).
  std::vector<std::pair<int32_t, double>> profile();
  // TEST ONLY: after `after` more ticks, the next `ticks` ticks fail inside the backend (backend_fault_ext);
  // ticks 0 disarms. Throws when the backend offers no fault hook.
  void inject_fault(int ticks, int after);

 private:
  void check_io(int64_t offset, int64_t bytes, const char* what) const;
  // The tick through backend_ops, for backends without a whole-tick run_tick.
  void run_launches(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                    uint8_t* const* dst);
  void poison(const std::vector<tick_output>& outputs);

  launch_plan plan_;
  backend backend_;
  std::mutex tick_mu_;
  bool poison_outputs_ = false;
  int fault_ticks_ = 0, fault_after_ = 0; // inject_fault (test only)
  int faults_injected_ = 0, failed_ticks_ = 0;
  double last_tick_us_ = 0; // native time of the last run_tick (copy in, launches, copy out), for benches
};

} // namespace loom
