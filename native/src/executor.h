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

  // active: one byte per tenant. Returns one buffer per requested output.
  std::vector<std::vector<uint8_t>> run_tick(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs,
                                             const tenant_mask& active);

  const launch_plan& plan() const { return plan_; }
  const char* backend_name() const { return backend_.ops->name; }
  int threads() const { return backend_.ops->threads(backend_.ctx); }
  backend_stats stats();
  // Replays a whole tick `iters` times (backends with a captured tick only); microseconds per replay.
  void bench(int iters, std::vector<double>& wall_us, std::vector<double>& device_us);
  // Device time of every launch of one eager tick (backends with a captured tick only).
  std::vector<std::pair<int32_t, double>> profile();

 private:
  void check_io(int64_t offset, int64_t bytes, const char* what) const;
  void poison(const std::vector<tick_output>& outputs);

  launch_plan plan_;
  backend backend_;
  std::mutex tick_mu_;
  bool poison_outputs_ = false;
};

} // namespace loom
