// Runs a validated launch_plan on one backend: copies a tick's inputs in, runs every launch in plan order,
// copies the requested outputs out. Makes no planning decisions. One tick at a time per executor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.h"
#include "plan.h"

namespace loom {

// tick_input / tick_output: backend.h.

// Rows per plan tenant in one tick (the live tenants' request rows, 1..maxBatch; ignored for the others); empty:
// every tenant at its full maxBatch. The executor turns it into the tick's row bucket (row_bucket below).
using tick_rows = std::vector<int32_t>;

struct backend_fault_ext;

struct executor_options {
  std::string backend = "cpu"; // "cpu" | "cuda" | "cuda-emu"
  int threads = 0;             // 0: hardware concurrency
  bool poison_outputs = false; // debug: output slots are filled with 0xFF bytes (NaN) before every tick's launches
  cuda_options cuda;           // backend "cuda" only
  emu_options emu;             // backend "cuda-emu" only
  int pipeline_depth = 3;      // staging sets: ticks that may be in flight at once (1..8)
  // The weights come later, in chunks (weights_window / weights_commit / weights_finish), not with the
  // constructor: the caller reads weights.bin straight into the backend's memory and checks its hash on the way.
  bool defer_weights = false;
};

// What a finished staged tick hands back: its result block (read in place), or, when the result pool was
// exhausted, the landing buffer its bytes are in (copy them before the set's next tick); or, for a compact tick,
// `packed`: the live tenants' output bytes (tick_staging.h compact_copy), gathered on the thread that awaited it.
struct staged_result {
  std::shared_ptr<host_block> block;
  const uint8_t* landing = nullptr;
  size_t bytes = 0;
  bool compact = false;
  std::vector<uint8_t> packed;
};

class executor {
 public:
  executor(launch_plan plan, const uint8_t* weights, size_t weight_bytes, const executor_options& opts);
  ~executor();
  executor(const executor&) = delete;
  executor& operator=(const executor&) = delete;

  // active: one byte per tenant; rows: tick_rows. Output i is written to dst[i] (outputs[i].bytes bytes).
  void run_tick(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                const tick_rows& rows, uint8_t* const* dst);

  // Staged ticks (tick_staging.h): the caller writes a tick's inputs into staging set `set` at the layout's
  // input offsets, then submit (the submitting thread) → await (any thread; blocks until done, or, on a backend
  // without asynchronous ticks, runs the tick in submission order) → finish (the submitting thread). Up to
  // depth() ticks are in flight; a set is busy from submit to finish.
  const io_layout& layout() const { return layout_; }
  int depth() const { return static_cast<int>(staging_.size()); }
  const std::shared_ptr<host_block>& staging(int set) const { return staging_.at(static_cast<size_t>(set)); }
  // `live` (compact ticks): the live tenants, in the order their outputs go into the compact result; each must be
  // live in `active`. The tick's row bucket and the CPU backend's slot lists then follow `live`, not every tenant.
  // A compact tick's live outputs are gathered by await, off the submitting thread.
  void submit(int set, tenant_mask active, const tick_rows& rows, std::vector<int32_t> live = {}, bool compact = false);
  // Whether compact ticks are possible: the plan has an I/O slot table (not a hand-built plan).
  bool compact_results() const { return !plan_.io.empty(); }
  void await(int set);
  staged_result finish(int set);

  // The tick's row bucket: the most rows of any live tenant rounded up to a power of two, so one GEMM call
  // (and, on CUDA, one captured graph per bucket) serves every tick of that size; 0 (every row) when that reaches
  // full_rows() or when rows is empty. Throws on a row count < 1 for a live tenant.
  int64_t row_bucket(const tenant_mask& active, const tick_rows& rows) const;
  // The same for a compact tick, looking only at `live` (each checked to be a live tenant of the plan).
  int64_t row_bucket_live(const tenant_mask& active, const tick_rows& rows, const std::vector<int32_t>& live) const;
  // The most rows any rows-scaled GEMM problem of the plan runs (max m / rowsUnit); 0 when none scales.
  int64_t full_rows() const { return full_rows_; }

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
  // Time of every launch of one tick: the backend's profile extension (CUDA: device time of an eager tick), else,
  // for a backend that runs launches through its ops (CPU), each launch on the host clock.
  std::vector<std::pair<int32_t, double>> profile();
  // Deferred weights (executor_options.defer_weights), in order: a host window for the bytes at [offset,
  // +bytes) (at most kMaxWeightsChunk; up to two open at once: the next chunk is read while the last is
  // hashed) — the backend's arena itself where that is host memory (CPU), else a host buffer (pinned on CUDA) —;
  // weights_commit once those bytes are written (copies a buffer to the arena; chunks in file order; `data`
  // non-null: the bytes come from there instead of a window, for runtimes without external buffers); then
  // weights_finish (every byte in: prepares the backend and the staging sets). Ticks are refused until then.
  // Host memory for the chunk at `offset`: `data`, owned by `block` when the window is a buffer of its own
  // (pinned on CUDA; it stays valid while the caller holds `block`, even after weights_finish), or null when
  // the chunk is read straight into the backend's host arena (valid while this executor lives).
  struct window_view {
    uint8_t* data = nullptr;
    std::shared_ptr<host_block> block;
  };
  window_view weights_window(int64_t offset, int64_t bytes);
  void weights_commit(int64_t offset, int64_t bytes, const uint8_t* data = nullptr);
  void weights_finish();
  bool loading() const { return loading_; }
  static constexpr int64_t kMaxWeightsChunk = int64_t{256} << 20;
  static constexpr int64_t kWeightsStagingBytes = int64_t{8} << 20;
  // TEST ONLY: after `after` more ticks, the next `ticks` ticks fail inside the backend (backend_fault_ext);
  // ticks 0 disarms. Throws when the backend offers no fault hook.
  void inject_fault(int ticks, int after);

 private:
  void check_io(int64_t offset, int64_t bytes, const char* what) const;
  void require_loaded(const char* what) const;
  // The tick through backend_ops, for backends without a whole-tick run_tick.
  void run_launches(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                    int64_t bucket, uint8_t* const* dst);
  // run_tick with the bucket already chosen (staged ticks chose it at submit).
  void run_bucketed(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                    int64_t bucket, uint8_t* const* dst);
  void note_bucket(int64_t bucket);
  void poison(const std::vector<tick_output>& outputs);
  // Test only: the fault hook armed for this tick when inject_fault asked for it (null otherwise).
  const backend_fault_ext* arm_fault();
  // A staged tick on a backend without asynchronous ticks: its slots as tick_input / tick_output.
  void run_staged(int set);
  void pack(int set);
  void check_set(int set, const char* what) const;
  void setup_staging(int depth);
  block_pool& result_pool(); // the pooled result blocks of submitTick without a live list, made on first use
  // row_bucket's parts: whether the tick carries rows (checked to name every plan tenant), a live tenant's rows
  // (checked ≥ 1), the bucket for the most rows of any live tenant
  bool rows_given(const tick_rows& rows) const;
  int64_t live_rows(const tick_rows& rows, size_t t) const;
  int64_t bucket_for(int64_t most) const;

  struct staged_ticket {
    bool busy = false;
    uint64_t seq = 0;
    tenant_mask active;
    int64_t bucket = 0;
    std::shared_ptr<host_block> result; // null: the landing buffer
    bool compact = false;
    std::vector<int32_t> live;   // compact ticks
    std::vector<uint8_t> packed; // compact ticks: gathered by await
    std::chrono::steady_clock::time_point t0;
    bool done = false;
    std::exception_ptr error;
  };

  launch_plan plan_;
  backend backend_;
  struct weights_window_slot {
    std::shared_ptr<host_block> block; // kept across chunks, freed at weights_finish
    int64_t offset = -1;               // -1: not open
    int64_t bytes = 0;
  };
  bool loading_ = false; // defer_weights: until weights_finish
  int64_t weights_expected_ = 0, weights_committed_ = 0;
  int pipeline_depth_ = 3;
  weights_window_slot windows_[2];
  std::mutex tick_mu_;
  bool poison_outputs_ = false;
  int fault_ticks_ = 0, fault_after_ = 0; // inject_fault (test only)
  int faults_injected_ = 0, failed_ticks_ = 0;
  double last_tick_us_ = 0; // native time of the last run_tick (copy in, launches, copy out), for benches
  io_layout layout_;
  tenant_slots in_slots_, out_slots_; // per tenant (empty for a hand-built plan)
  std::vector<std::shared_ptr<host_block>> staging_, landing_;
  std::shared_ptr<block_pool> results_; // made by result_pool() on first use
  int result_blocks_ = 0;
  std::vector<staged_ticket> tickets_; // one per staging set
  std::mutex staged_mu_;               // tickets_' done/error and run order (await runs on worker threads)
  std::condition_variable staged_cv_;
  uint64_t next_seq_ = 0, next_run_ = 0;
  uint64_t staged_ticks_ = 0, pooled_results_ = 0, copied_results_ = 0, compact_results_ = 0;
  int64_t full_rows_ = 0;       // full_rows()
  int64_t last_bucket_ = 0;     // the row bucket of the last tick run or submitted (0: every row)
  uint64_t bucketed_ticks_ = 0; // ticks run with a bucket below full_rows()
};

} // namespace loom
