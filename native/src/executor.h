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

struct tick_input {
  int64_t offset = 0; // into the io arena
  std::vector<uint8_t> bytes;
};

struct tick_output {
  int64_t offset = 0; // into the io arena
  int64_t bytes = 0;
};

struct executor_options {
  std::string backend = "cpu"; // "cpu" | "cuda"
  int threads = 0;             // 0: hardware concurrency
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

 private:
  void check_io(int64_t offset, int64_t bytes, const char* what) const;

  launch_plan plan_;
  backend backend_;
  std::mutex tick_mu_;
};

} // namespace loom
