// The CUDA backend's context and the internal functions its files share (backend_cuda.cc: load, the
// backend_ops, extensions and registry entry; backend_cuda_device.cc: error reporting, context binding, the
// device query; backend_cuda_enqueue.cc: putting launches on the stream and capturing graphs;
// backend_cuda_sparse.cc: the sparse tick of a partly occupied fleet; backend_cuda_bench.cc: timing).
// Not part of the backend interface: nothing outside backend_cuda*.cc includes it.
#pragma once

#include <chrono>
#include <cstdlib>
#include <initializer_list>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend_cuda.h"
#include "backend_cuda_gemv.h"
#include "backend_cuda_io_gather.h"
#include "backend_cuda_lt.h"
#include "thread_pool.h"

namespace loom {

constexpr size_t kCudaTableAlign = 256;
// n rounded up to kCudaTableAlign: where device tables and workspaces carved from one allocation start
inline size_t cuda_align_up(size_t n) { return (n + kCudaTableAlign - 1) / kCudaTableAlign * kCudaTableAlign; }

// gemv_strided / gemv_batched: the strided / batched call run by the skinny-GEMM kernel (backend_cuda_gemv.cu)
// instead of cuBLAS, same fields; chosen per call at load (cuda_choose_gemv, cuda_choose_gemm_paths).
// lt_strided: the strided call as one cublasLtMatmul (gemm_call::lt; cuda_choose_gemm_paths).
enum class gemm_mode { strided, batched, grouped, grouped_split, gemv_strided, gemv_batched, lt_strided };

inline bool gemm_mode_is_gemv(gemm_mode m) { return m == gemm_mode::gemv_strided || m == gemm_mode::gemv_batched; }

enum class gemv_policy { automatic, off, force };
// LOOM_CUDA_FUSE: whether a GEMM call may apply its launch's epilogue itself (skinny-GEMM kernel, cuBLASLt)
// instead of a separate epilogue launch. auto: where measured no slower; force: wherever expressible.
enum class fuse_policy { automatic, never, force };
// LOOM_CUDA_LT: whether strided calls may run as cublasLtMatmul. auto: where measured faster; force: wherever
// cuBLASLt has an algorithm (the skinny-GEMM kernel keeps the calls LOOM_CUDA_GEMV=force gives it).
enum class lt_policy { automatic, off, force };
// LOOM_CUDA_TILE: the tiled kernel with the epilogue in its store as a measured candidate (auto, the default),
// never (off), or the only path for launches it can run (force).
enum class tile_policy { automatic, off, force };

// One GEMM call in column-major terms (operands already swapped): A' = the plan's B, B' = the plan's A.
struct gemm_call {
  gemm_mode mode = gemm_mode::strided;
  cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
  int m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0, batch = 0;
  // the plan problem's rowsUnit (0: n, the plan's m, never scales); grouped: one per group, parallel to gn
  int64_t rows_unit = 0;
  std::vector<int64_t> grows_unit;
  float alpha = 1;
  // A'/B' storage: CUDA_R_32F, or CUDA_R_16BF / CUDA_R_16F for bf16/f16 launches (C is always CUDA_R_32F and
  // those run with CUBLAS_COMPUTE_32F: FORMAT.md "gemm dtype")
  cudaDataType_t ab = CUDA_R_32F;
  size_t ab_size = 4;               // bytes of one A'/B' element
  CUdeviceptr a = 0, b = 0, c = 0;  // strided: first matrices
  long long sa = 0, sb = 0, sc = 0; // strided: element strides
  size_t arr_off = 0;               // batched / grouped: offset of the pointer arrays in the load-time table
  CUdeviceptr arr = 0;              // ... and their device address: A'[total], B'[total], C[total], bias[total] (0: none)
  int total = 0;                    // pointers per array
  // grouped: host arrays, one element per group (cuBLAS reads them at call time)
  std::vector<cublasOperation_t> gta, gtb;
  std::vector<int> gm, gn, gk, glda, gldb, gldc, gsize;
  std::vector<float> galpha, gbeta;
  // The launch's epilogue (gemm launches), and whether this call applies it itself (the skinny-GEMM kernel's
  // store, or the cuBLASLt epilogue): a launch whose calls all do runs no epilogue kernel.
  cuda_gemm_epi epi;
  bool fused = false;
  bool tiled = false; // gemv modes: the tiled kernel rather than the skinny ones (cuda_gemv_args.tiled)
  // the tiled kernel's split-K (cuda_gemv_args.splits / ws / sem): 1 unsplit; else this call's own workspace and
  // counters (backend_cuda_split_k.cc), so launches on other lanes never share them
  int splits = 1;
  CUdeviceptr split_ws = 0, split_sem = 0;
  bool gemv_swap = true;            // the skinny kernel may run the call transposed (LOOM_CUDA_GEMV_SWAP; cuda_gemv_args.swap)
  const cuda_lt_plan* lt = nullptr; // lt_strided: its plan (owned by cuda_gemm_state::lt_plans)
};

// Whether a launch's epilogue jobs are applied by its GEMM calls (no epilogue kernel runs).
inline bool cuda_epilogue_fused(const std::vector<gemm_call>& calls) {
  if (calls.empty()) return false;
  for (const auto& g : calls)
    if (!g.fused) return false;
  return true;
}

// One launch of the plan as the stream sees it. Device addresses are absolute, so the same enqueue code runs
// the full tick (load-time tables) and a sparse tick (its own compacted tables).
struct launch_state {
  const launch* l = nullptr;
  std::vector<gemm_call> calls;
  // kernel
  CUfunction fn = nullptr;
  unsigned grid = 0, block = 0;
  size_t segs_off = 0, views_off = 0;
  CUdeviceptr segs = 0, views = 0;
  int nsegs = 0;
  long long total = 0;
  // GEMM epilogue
  size_t epi_off = 0;
  CUdeviceptr epi = 0;
  int n_epi = 0;
  long long epi_total = 0;
};

struct range {
  int64_t offset, bytes;
};

// What a sparse tick needs of one launch of the full tick, kept on the host from load on.
struct launch_src {
  std::vector<std::vector<const gemm_entry*>> call_entries; // per gemm_call, in pointer-array order
  std::vector<LoomSegment> segs;                            // kernel: the load-time segment table
  std::vector<int32_t> seg_tenants;
  std::vector<cuda_epi_job> jobs; // GEMM epilogue jobs
  std::vector<int32_t> job_tenants;
  std::vector<int64_t> job_units; // each job's problem rowsUnit (0: never scales)
  int api_launches = 0;           // cuBLAS calls + kernels this launch enqueues
};

// A sparse tick for one occupancy mask (and row bucket): its copies, its launches over compacted tables (uploaded once into
// a table slot), and, from its second use on, its captured graph.
struct sparse_program {
  std::vector<range> in, out, poison;
  // A staged tick's input copies: `in` merged across small gaps even over inactive tenants' output slots (a
  // staged tick reads only live tenants' outputs, so fewer, larger copies win: each is one API call)
  std::vector<range> in_coarse;
  std::vector<launch_state> launches;
  // A staged tick's inputs by the io gather kernel instead (backend_cuda_io_gather.h), where its coarse copies
  // would move at least twice the live bytes: n_gather moves from the staging layout in the program's table
  // slot, then n_gather more from a buffer of the io arena's layout (benchTick)
  CUdeviceptr gather = 0;
  int n_gather = 0;
  int slot = -1;
  size_t table_bytes = 0;
  cudaGraphExec_t exec = nullptr;
  bool capture_failed = false;
  int uses = 0;
};

struct mask_entry {
  uint64_t id = 0; // unique per entry (a staged tick names its program by id: the entry may be evicted before it finishes)
  tenant_mask mask;
  int64_t rows = 0;        // the row bucket its GEMMs run at (executor.h row_bucket; 0: every row)
  bool forced = false;     // a row-bucket program of the whole fleet: always built, never measured away
  bool sparse = false;     // the rule's choice for this mask
  double estimate_us = 0;  // the rule's estimate of the sparse tick (host wall, launch to synchronize)
  double measured_us = -1; // the fastest measured replay of its graph; < 0: none yet
  int measured_n = 0;
  std::unique_ptr<sparse_program> prog; // when sparse
  uint64_t last_use = 0;
};

enum class sparse_policy { never, always, automatic };

struct sparse_state {
  sparse_policy policy = sparse_policy::automatic;
  bool available = false;
  std::string note;
  std::vector<launch_src> src;                                   // parallel to cuda_ctx::full.launches
  std::vector<std::vector<std::pair<size_t, double>>> by_tenant; // tenant → (launch index, share of its work)
  std::vector<std::vector<range>> tenant_in, tenant_out;         // tenant → its io slots
  std::vector<range> all_out;                                    // every output slot, sorted
  std::vector<io_span> staging_in;                               // the executor's staging layout of inputs (empty: no gather)
  int64_t staging_in_bytes = 0;
  // measured at load (auto only), microseconds
  bool calibrated = false;
  double full_wall_us = 0, full_device_us = 0, fixed_us = 0, node_us = 0, host_launch_us = 0, min_launch_us = 0, launch_sum_us = 0;
  std::vector<double> launch_us; // per launch, device time in an eager tick
  // tables: one pinned staging buffer, `n_slots` device slots of `slot_bytes` (worst case: every entry live)
  size_t slot_bytes = 0;
  int n_slots = 0;
  void* slab = nullptr;
  uint8_t* pinned = nullptr;
  void* scratch = nullptr; // a few bytes the calibration graph writes
  std::vector<int> free_slots;
  std::vector<std::unique_ptr<mask_entry>> cache; // LRU by last_use, at most n_slots entries
  uint64_t clock = 0, next_id = 1;
  // counters
  uint64_t sparse_ticks = 0, full_ticks = 0, captures = 0, evictions = 0, uploads = 0, gathered = 0;
  uint64_t bucket_ticks = 0; // ticks run at a row bucket (a program of its own, sparse or whole-fleet)
  int64_t last_rows = 0;     // the row bucket the last tick ran at (0: every row)
  double last_estimate_us = -1, last_measured_us = -1;
  int last_bench_sparse = -1; // -1: no masked bench yet
};

// The CUDA backend's context, one sub-struct per concern so each file names what it touches
// (c.dev.stream, c.mem.pin_in, c.graph.exec, ...).

// The device and the handles every call goes through: set up by backend_cuda_create, freed by cuda_destroy.
struct cuda_device_handles {
  int device = 0;
  CUcontext cu_ctx = nullptr;
  cudaDeviceProp props{};
  cudaStream_t stream = nullptr;
  cudaEvent_t ev0 = nullptr, ev1 = nullptr; // timing on `stream` (benches, load-time measurements)
  cuda_gemm_ctx gemm;                       // `stream`'s cuBLAS / cuBLASLt handles and workspace
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
};

// The tick's DAG (plan.json lanes, FORMAT.md "Lanes"): lanes 1.. on their own streams, each with its own
// cuBLAS / cuBLASLt handles and workspace, forked from the tick's stream after its input copies and joined back
// before its output copies, inside the captured graph (backend_cuda_lanes.cc). Lane 0 is c.dev.gemm.
enum class lanes_policy { automatic, off };
enum class priority_policy { automatic, off };

struct cuda_lanes_state {
  lanes_policy policy = lanes_policy::automatic; // LOOM_CUDA_LANES (off: every launch on lane 0, in plan order)
  bool enabled = false;                          // the plan has > 1 lane and the policy allows them
  int plan_lanes = 1;
  std::string note;
  priority_policy priority = priority_policy::automatic; // LOOM_CUDA_PRIORITY (off: the plan's priorityLanes run at normal priority)
  std::vector<cuda_gemm_ctx> extra; // lanes 1.., owned with their streams (each launch's lane and waits: s.l->lane, s.l->after)
  cuda_gemm_ctx first;              // lane 0's own stream when lane 0 runs at high priority (else lane 0 is the tick's stream)
  int high = 0;                     // lanes whose streams run at the device's highest priority
  std::vector<cudaEvent_t> done;    // per full-tick launch: recorded after it when some launch waits for it
  cudaEvent_t fork = nullptr;
  std::vector<cudaEvent_t> join; // per extra lane
  int waits = 0;                 // cross-lane waits per tick
};

// Programmatic dependent launch (backend_cuda_pdl.cuh): a Loom kernel (generated, epilogue, skinny / tiled
// GEMM) right after another Loom kernel on the same stream is launched with programmatic stream serialization,
// so it is scheduled while that one runs (in a captured tick: a programmatic edge). Never after a cuBLAS call,
// a copy or a cross-lane wait (backend_cuda_enqueue.cc decides per launch).
// LOOM_CUDA_PDL: automatic = programmatic launches, their skinny-GEMM kernels prefetching their first W lines into
// L2 before the grid dependency wait (backend_cuda_gemv.cu) where kPdlPrefetchByDefault; prefetch / noprefetch =
// with / without that prefetch; off = no programmatic launches.
enum class pdl_policy { automatic, prefetch, no_prefetch, off };
constexpr bool kPdlPrefetchByDefault = false; // opt-in until a GPU measures it (written without one)

struct cuda_pdl_state {
  pdl_policy policy = pdl_policy::automatic; // LOOM_CUDA_PDL
  bool enabled = false;                      // the policy allows it and the device is sm_90 or later
  int prefetch = 0;       // enabled and prefetching (prefetch, or auto where kPdlPrefetchByDefault): W k steps a warp prefetches
  long long launched = 0; // kernels launched programmatically so far
  int graph_launches = 0; // ... of them in the captured full tick
  std::string note;
};

// The plan's arenas in device memory and the pinned host staging a tick copies through.
struct cuda_memory {
  arena_sizes sizes;
  cuda_arenas arenas;
  void* arena_mem[3] = {nullptr, nullptr, nullptr};
  uint8_t* pin_in = nullptr;
  uint8_t* pin_out = nullptr;
  std::unique_ptr<thread_pool> copy_pool; // host staging copies of big ticks, made on first need (backend_cuda.cc)

  CUdeviceptr io() const { return arenas.base[static_cast<int>(arena_id::io)]; }
};

// The full tick as prepared at load: its copies, one state per launch of the plan, and the device table
// (segment tables, pointer arrays, epilogue jobs) those states point into.
struct cuda_full_tick {
  std::vector<range> in_ranges, out_ranges, poison_slots;
  std::vector<launch_state> launches;
  std::unordered_map<int32_t, size_t> by_id;
  std::vector<uint8_t> host_tables; // built at load, uploaded into `tables`, then freed
  void* tables = nullptr;
};

// The full tick captured as a CUDA graph, and what the capture holds (handleInfo()).
struct cuda_graph_state {
  cudaGraphExec_t exec = nullptr;
  bool captured = false; // false: ticks run eagerly (`note` says why)
  std::string note;
  int nodes = 0, kernel_nodes = 0, memcpy_nodes = 0, memset_nodes = 0, other_nodes = 0;
};

// Load-time choices reused across gemm calls of one shape (cuda_gemm_shape_key): a fleet of equal tenants, or a
// calibration plan's repetitions, times each shape's candidates once instead of once per launch (each
// candidate is a graph captured, instantiated and replayed: stop 18's calibration plan of 3,456 launches
// outlived a 10-minute call).
struct cuda_memo_path {
  gemm_mode mode = gemm_mode::strided;
  bool fused = false, tiled = false, lt = false;
  int algo = 0, splits = 1;
  double us = -1, today_us = -1; // the winner's time; today's path's (< 0: not timed)
  int first = -1;                // the launch it was measured on (plan id)
};
struct cuda_choice_memo {
  std::unordered_map<std::string, std::pair<double, double>> gemv; // cuda_choose_gemv: cuBLAS's and the kernel's us
  std::unordered_map<std::string, cuda_memo_path> paths;
  int gemv_hits = 0, path_hits = 0;
};

// Device memory of the tiled kernel's split-K calls: a scratch workspace and counters for the load-time
// timings, then one block holding each chosen split call's own (counters first, all zero between launches).
struct cuda_split_k_mem {
  CUdeviceptr scratch = 0;
  size_t scratch_sem_bytes = 0, scratch_ws_bytes = 0;
  CUdeviceptr block = 0;
  size_t sem_bytes = 0, ws_bytes = 0;
  int calls = 0; // split calls in the full tick
};

// How the GEMM launches run: the load-time choices (grouped vs split, cuBLAS vs the skinny-GEMM kernel vs
// cuBLASLt, the epilogue fused or not) and their counts.
struct cuda_gemm_state {
  int cublas_calls = 0, grouped_split = 0;
  int epilogue_launches = 0; // epilogue kernel launches in a full tick (set once the paths are chosen)
  int fused_epilogues = 0;   // launches whose bias / activation their GEMM call applies (no epilogue launch)
  std::string grouped_note;
  gemv_policy gemv = gemv_policy::automatic; // LOOM_CUDA_GEMV, read when the backend is created
  int gemv_calls = 0;
  bool gemv_vec = true;  // LOOM_CUDA_GEMV_VEC (off: the skinny kernel never takes its 16-byte-load form)
  bool gemv_swap = true; // LOOM_CUDA_GEMV_SWAP (off: the skinny kernel never runs a call transposed)
  std::string gemv_note;
  fuse_policy fuse = fuse_policy::automatic; // LOOM_CUDA_FUSE
  lt_policy lt = lt_policy::automatic;       // LOOM_CUDA_LT
  tile_policy tile = tile_policy::automatic; // LOOM_CUDA_TILE
  // LOOM_CUDA_SPLIT_K (cuda_split_k_from_env): 0 auto (split-K candidates for the tiled kernel where its blocks
  // of C leave SMs idle), -1 off, N: exactly N splits wherever the tiled kernel runs and k allows (tests)
  int split_k = 0;
  cuda_split_k_mem split_mem; // workspaces and counters of split calls (backend_cuda_split_k.cc)
  int lt_calls = 0;
  std::string paths_note;                              // the load-time choice, summed up
  std::vector<std::pair<int32_t, std::string>> paths;  // per gemm launch (plan id): the path it runs, as measured
  std::vector<std::unique_ptr<cuda_lt_plan>> lt_plans; // the plans lt_strided calls point to
  cuda_choice_memo memo;                               // load-time choices by call shape
  double choose_ms = 0;                                // wall time of the load-time choices (grouped, skinny, paths)
};

// The plan's generated kernels: the loaded module and how it was obtained (cubin or NVRTC).
struct cuda_kernel_module {
  CUmodule module = nullptr;
  std::string module_how = "none (no generated kernels)";
  int generated_launches = 0;
};

// After a failed tick (backend_cuda.cc cuda_recover), and the test-only fault hook (backend_fault_ext).
struct cuda_fault_state {
  bool armed = false; // TEST ONLY: the next tick fails as a failing cudaGraphLaunch would
  int injected = 0, failed_ticks = 0, recoveries = 0, recaptures = 0;
  std::string lost; // non-empty: recovery found a sticky error; every later tick fails at once, naming it
};

// Staged ticks in flight (backend_tick_ops submit / wait / finish; backend_cuda_staged.cc), one slot per staging set.
struct cuda_staged_slot {
  cudaEvent_t done = nullptr; // recorded after the tick's last copy
  uint64_t sparse_id = 0;     // the sparse program it ran (0: the full tick)
  bool whole = false;         // that program is a row-bucket program of the whole fleet (counted as a full tick)
  bool graphed = false;       // it ran as a captured graph (only those are measured)
  bool alone = false;         // nothing else was in flight when it was submitted (its wall time is its own)
  // overlap mode: the set's device copies of its staging and result buffers, and their events
  void* d_in = nullptr;
  void* d_out = nullptr;
  cudaEvent_t h2d = nullptr, computed = nullptr;
};

enum class overlap_policy { never, always, automatic };

constexpr int kCudaStagedSlots = 8; // the executor's deepest pipeline

struct cuda_staged_state {
  cuda_staged_slot slots[kCudaStagedSlots]; // fixed: a worker reads its slot while the JS thread submits others
  int in_flight = 0;
  uint64_t ticks = 0, overlapped = 0;
  overlap_policy overlap = overlap_policy::automatic; // LOOM_CUDA_OVERLAP
  cudaStream_t copy_stream = nullptr;                 // overlap mode's host↔device copies
};

struct cuda_ctx {
  cuda_options opts;
  cuda_device_handles dev;
  cuda_memory mem;
  cuda_full_tick full;
  cuda_graph_state graph;
  cuda_gemm_state gemm;
  cuda_kernel_module kernels;
  sparse_state sparse;
  cuda_fault_state fault;
  cuda_staged_state staged;
  cuda_lanes_state lanes;
  cuda_pdl_state pdl;
};

inline cuda_ctx& cuda_ctx_of(void* ctx) { return *static_cast<cuda_ctx*>(ctx); }

inline double cuda_since_us(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

// Ticks run on libuv's worker threads, load on the JS thread: make the context current on whichever calls.
void cuda_bind(cuda_ctx& c);

// Sorted, merged ranges; ranges closer than `gap` bytes are joined.
std::vector<range> cuda_merge_ranges(std::vector<range> r, int64_t gap);
// The bytes the ranges cover, summed.
inline int64_t cuda_range_bytes(const std::vector<range>& rs) {
  int64_t b = 0;
  for (const auto& r : rs) b += r.bytes;
  return b;
}
bool cuda_ranges_hold(const std::vector<range>& rs, int64_t off, int64_t bytes);

// backend_cuda.cc: whether `b` is a CUDA backend (its ctx a cuda_ctx).
bool cuda_backend_is(const backend& b);
// backend_cuda.cc: backend_cuda_entry.create. Throws when no GPU is visible or the device does not exist.
backend backend_cuda_create(const cuda_options& opts);
// The "device_info" extension (backend_ext.h): GPUs visible to the CUDA runtime (0 when none or no driver),
// device 0's name, compute capability, driver / runtime / cuBLAS versions. Never throw.
int cuda_device_count();
backend_stats cuda_device_info();

// ---- backend_cuda_enqueue.cc ----
// One gemm call on x's stream and handles; `may_fall_back` (load-time warm-up only): a grouped call cuBLAS
// refuses becomes split. `after_kernel`: the stream's last work is a Loom kernel (a skinny / tiled call may then
// launch programmatically: cuda_pdl_state). Returns whether the call ran as a Loom kernel.
bool cuda_enqueue_gemm(cuda_ctx& c, const cuda_gemm_ctx& x, gemm_call& g, bool may_fall_back, bool after_kernel = false);
// One launch (its kernel, or its GEMM calls and, unless they applied it, its epilogue kernel) on x's stream.
// `after_kernel` as above; returns whether the launch's last work is a Loom kernel (unchanged when it enqueued
// nothing), for the next launch on the stream.
bool cuda_enqueue_launch(cuda_ctx& c, const cuda_gemm_ctx& x, launch_state& s, bool may_fall_back, bool after_kernel = false);
// ... on the context's own stream (c.dev.gemm).
bool cuda_enqueue_launch(cuda_ctx& c, launch_state& s, bool may_fall_back, bool after_kernel = false);
// LOOM_CUDA_PDL (auto | prefetch | noprefetch | off: pdl_policy above), read at create.
pdl_policy cuda_pdl_policy_from_env();
int cuda_pdl_prefetch_from_env(); // LOOM_CUDA_PDL_PREFETCH: k steps per W row (1, 2, 4 or 8; default 2)
// A tick's body: poison memsets and the launches — what a captured graph holds. Its copies (`in`, `out`: io
// ranges) are enqueued around it by the caller, from and to whichever host buffer the tick uses (the pinned
// io mirror, or a staging set and result block). `check_each` synchronizes after every launch so a fault
// names its launch (load-time warm-up, a sparse tick's first run).
struct tick_body {
  const std::vector<range>* in;
  const std::vector<range>* poison;
  std::vector<launch_state>* launches;
  const std::vector<range>* out;
};
tick_body cuda_full_body(cuda_ctx& c);
void cuda_enqueue_body(cuda_ctx& c, const tick_body& b, bool check_each, bool may_fall_back);
// H2D of io ranges from host memory / D2H into it. `spans` null: the host buffer mirrors the io arena (c.mem.pin_in,
// pin_out); otherwise it has that compact layout (tick_staging.h) and every range must lie inside one span.
// Where io range `r` sits in a buffer of `spans`' layout (null: the buffer mirrors the io arena); throws when no
// span holds it.
int64_t cuda_staging_offset(const range& r, const std::vector<io_span>* spans);
// The general form: between the io arena and `buf` (host or device memory, laid out as above), on `stream`;
// to_io: buf → arena.
void cuda_enqueue_io_copies(cuda_ctx& c, const std::vector<range>& ranges, void* buf, const std::vector<io_span>* spans, bool to_io,
                            cudaMemcpyKind kind, cudaStream_t stream);
void cuda_enqueue_copies_in(cuda_ctx& c, const std::vector<range>& ranges, const uint8_t* host, const std::vector<io_span>* spans);
void cuda_enqueue_copies_out(cuda_ctx& c, const std::vector<range>& ranges, uint8_t* host, const std::vector<io_span>* spans);
// Captures `b` on the context's stream into an uploaded executable graph (throws loom_error on failure);
// `count` (the full tick only) tallies its nodes into the context's stats.
cudaGraphExec_t cuda_capture(cuda_ctx& c, const tick_body& b, bool count);
// Every node of graph `g` (top level).
std::vector<cudaGraphNode_t> cuda_graph_nodes(cudaGraph_t g);
void cuda_choose_grouped(cuda_ctx& c);
// A backend switch read from the environment when the backend is created (LOOM_CUDA_GEMV, ..._SPARSE, ...):
// unset or empty gives `fallback`; a value not among `choices` fails the load, naming the variable, what it
// takes (in the order given) and what it got.
template <typename E>
E cuda_env_choice(const char* var, E fallback, std::initializer_list<std::pair<const char*, E>> choices) {
  const char* env = std::getenv(var);
  const std::string v = env ? env : "";
  if (v.empty()) return fallback;
  std::string names;
  size_t i = 0;
  for (const auto& [name, value] : choices) {
    if (v == name) return value;
    names += std::string(i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + name;
    i++;
  }
  throw loom_error(std::string(var) + " must be " + names + ", got '" + v + "'");
}

// ---- backend_cuda_split_k.cc ----
int cuda_split_k_from_env(); // LOOM_CUDA_SPLIT_K (cuda_gemm_state::split_k)
// The split counts worth timing for g as the tiled kernel with its epilogue (g: its call with that path applied):
// none where its blocks of C already fill the SMs (auto), or the forced count where k allows. The load-time
// scratch is grown to the largest of them.
std::vector<int> cuda_split_k_choices(cuda_ctx& c, const gemm_call& g);
// g's split count `splits` on the load-time scratch (timings, an equal shape's choice run once).
void cuda_split_k_use_scratch(cuda_ctx& c, gemm_call& g, int splits);
// After the load-time choices: every split call of the full tick gets its own workspace and zeroed counters, the
// scratch is freed.
void cuda_split_k_assign(cuda_ctx& c);
void cuda_split_k_reset(cuda_ctx& c); // after a failed tick: every counter zero again
void cuda_split_k_stats(const cuda_ctx& c, backend_stats& out);
void cuda_split_k_destroy(cuda_ctx& c);

// Reads LOOM_CUDA_GEMV (auto|off|force; throws on anything else).
gemv_policy cuda_gemv_policy_from_env();
bool cuda_gemv_vec_from_env();  // LOOM_CUDA_GEMV_VEC=auto|off
bool cuda_gemv_swap_from_env(); // LOOM_CUDA_GEMV_SWAP=auto|off
// Reads LOOM_CUDA_FUSE (auto|never|force) and LOOM_CUDA_LT (auto|off|force); throw on anything else.
fuse_policy cuda_fuse_policy_from_env();
lt_policy cuda_lt_policy_from_env();
tile_policy cuda_tile_policy_from_env();
// The kernel's arguments for a strided / batched call (either mode: the cuBLAS one or its gemv twin), and
// whether the kernel can run it (m <= 16 rows per entry, or any rows and f32 when g.tiled; trans_a false, dense
// leading dims).
cuda_gemv_args cuda_gemv_args_of(const gemm_call& g);
bool cuda_gemv_eligible(const gemm_call& g);
// At load, after warm-up: per eligible call, cuBLAS vs the skinny-GEMM kernel (auto: measured, kept only
// when > 10% faster; force: every eligible call; off: none).
void cuda_choose_gemv(cuda_ctx& c);
// Device µs of one launch as it is configured now: one untimed, checked run, then the best of a few timed rounds.
double cuda_time_launch(cuda_ctx& c, launch_state& s);

// What makes two gemm calls time alike: mode, sizes, leading dims, strides, dtypes, the epilogue's form and the
// operands' 16-byte alignment (not their addresses). Calls with equal keys take one load-time measurement.
std::string cuda_gemm_shape_key(const gemm_call& g, int n_epi);

// ---- backend_cuda_gemm_paths.cc ----
// At load, after cuda_choose_gemv: per gemm launch with one call, the path it runs — today's (cuBLAS or the
// skinny-GEMM kernel, then the epilogue kernel), the skinny-GEMM kernel with the epilogue in its store,
// cuBLASLt (heuristic candidates, epilogue fused where exact) — measured, never slower than today's within
// noise (a fused path wins near ties: it is one launch less), under LOOM_CUDA_FUSE / LOOM_CUDA_LT. Then sets
// the counts (cublas, lt, gemv calls; epilogue launches; fused epilogues).
void cuda_choose_gemm_paths(cuda_ctx& c);

// ---- backend_cuda_lt.cc ----
// The cuBLASLt plan of a strided call (g.mode strided or gemv_strided: a, b, c, strides and batch set) with, when
// `fuse` and cuBLASLt expresses g.epi exactly, the launch's epilogue (else the plain product). Null, with `why`,
// when cuBLASLt has no algorithm. At most `max_algos` heuristic candidates are kept.
std::unique_ptr<cuda_lt_plan> cuda_lt_plan_make(const cuda_gemm_ctx& x, const gemm_call& g, cublasComputeType_t compute, bool fuse,
                                                int max_algos, std::string& why);
// Enqueues g (mode lt_strided) with its plan's chosen algorithm on x's stream.
void cuda_lt_enqueue(const cuda_gemm_ctx& x, const gemm_call& g);

// ---- backend_cuda_lanes.cc ----
// Reads LOOM_CUDA_LANES (auto|off; throws on anything else).
lanes_policy cuda_lanes_policy_from_env();
priority_policy cuda_priority_policy_from_env();
// At load, before the warm-up: the plan's lanes (streams, GEMM contexts with workspaces of `workspace_bytes`,
// events) when it has more than one and the policy allows. Throws loom_error (out of memory, a failing call).
void cuda_lanes_prepare(cuda_ctx& c, const launch_plan& plan, size_t workspace_bytes);
// The full tick's launches across the lanes: fork after what lane 0 already holds, each launch on its lane
// after its waits, join back into lane 0. What the captured graph holds when lanes are enabled.
void cuda_lanes_enqueue(cuda_ctx& c, bool may_fall_back);
// Waits for every extra lane (after a failed tick). Never throws.
void cuda_lanes_synchronize(cuda_ctx& c);
void cuda_lanes_stats(const cuda_ctx& c, backend_stats& out);
void cuda_lanes_destroy(cuda_ctx& c);

// ---- backend_cuda_sparse.cc ----
// Reads LOOM_CUDA_SPARSE (never|always|auto; throws on anything else).
sparse_policy cuda_sparse_policy_from_env();
// At load, after the full tick is prepared and captured: host sources, table slots, and (auto) the
// measurements the rule uses. `layout`: the staging layout the executor hands JS (cuda_prepare made it).
void cuda_sparse_prepare(cuda_ctx& c, const launch_plan& plan, const io_layout& layout);
// The program a tick of this mask and row bucket (0: every row) runs instead of the full tick: the mask's sparse
// tick when the rule picks one, else, for rows > 0, the whole fleet's program at that bucket (one per bucket: a
// captured graph bakes its sizes in); null: the full tick. Built on first sight, cached with the sparse ticks.
mask_entry* cuda_sparse_choose(cuda_ctx& c, const tenant_mask& active, int64_t rows);
// Notes which program the tick finally runs (null: the full tick) for the row-bucket counters.
void cuda_note_rows(cuda_ctx& c, const mask_entry* e);
// backend_cuda_sparse_cost.cc: per-tenant shares of each launch's work, the load-time measurements, and the
// estimate of a mask's sparse tick (host wall µs) from them.
void cuda_sparse_build_shares(cuda_ctx& c, size_t n_tenants);
void cuda_sparse_calibrate(cuda_ctx& c);
double cuda_sparse_estimate_us(const cuda_ctx& c, const tenant_mask& m);
// Enqueues the entry's sparse tick's launches (eagerly and checked on first use, then as its captured graph);
// the caller copies prog->in before and prog->out after. Returns whether the graph ran (only those runs are
// measured).
bool cuda_sparse_enqueue(cuda_ctx& c, mask_entry& e);
void cuda_sparse_record(cuda_ctx& c, mask_entry& e, double wall_us);
void cuda_sparse_stats(const cuda_ctx& c, backend_stats& out);
void cuda_sparse_destroy(cuda_ctx& c);

// ---- backend_cuda_staged.cc ----
// Reads LOOM_CUDA_OVERLAP (never|always|auto; throws on anything else).
overlap_policy cuda_overlap_policy_from_env();
void cuda_staged_submit(void* ctx, const staged_tick& t);
void cuda_staged_wait(void* ctx, int slot);
void cuda_staged_finish(void* ctx, int slot, double wall_us);
void cuda_staged_destroy(cuda_ctx& c);
// Pinned host memory for staging sets and result blocks (backend_ops host_alloc / host_free).
uint8_t* cuda_pinned_alloc(size_t bytes);
void cuda_pinned_free(uint8_t* p);
// backend_cuda.cc: throws when an earlier tick left a sticky error (the context cannot run another).
void cuda_check_usable(cuda_ctx& c);
// backend_cuda.cc: TEST ONLY (backend_fault_ext): when armed, fails as a failing graph launch would.
void cuda_fail_if_armed(cuda_ctx& c);
// backend_cuda.cc: after a failed tick, on the thread that ran it (waits for the stream, re-captures the full
// tick's graph, or marks the context lost). Never throws.
void cuda_recover(cuda_ctx& c);

// ---- backend_cuda_bench.cc ----
// One eager tick twice with an event between launches; the second round's device µs per launch, and the
// host µs per API launch of enqueueing it.
void cuda_profile_launches(cuda_ctx& c, std::vector<double>& per_launch_us, double& host_us_per_api_launch);
// The full tick once on the stream from and to the pinned io mirror: its copies in, its graph (or eagerly
// without one), its copies out.
void cuda_launch_full(cuda_ctx& c);
// The full tick's launches only (its graph, or eagerly).
void cuda_launch_full_compute(cuda_ctx& c);
// The "bench", "profile" and "bench_concurrent" extensions (backend_ext.h).
void cuda_bench_tick(void* ctx, int iters, const tenant_mask* active, std::vector<double>& wall_us, std::vector<double>& device_us);
void cuda_profile_tick(void* ctx, std::vector<std::pair<int32_t, double>>& per_launch_us);
void cuda_bench_concurrent(const std::vector<backend*>& backends, int iters, std::vector<double>& wall_us, std::vector<double>& device_us);

} // namespace loom
