// The LaunchPlan as C++ data: a 1:1 mirror of ir/contract/launch.ts (see codegen/FORMAT.md). Filled by
// addon_plan.cc from the parsed plan.json, checked by plan_validate.cc, executed by executor.cc. Plain
// structs: no N-API, no backend handles. The enums of the contract's closed name lists (arena_id, dtype,
// launch_kind, bias_mode, activation_kind, elt_op, kernel_kind, reduce_kind, pool_mode) with their name
// tables and parsers are generated from the contract into plan_enums.gen.h (npm run gen:native).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "plan_enums.gen.h"

namespace loom {

// Raised by everything below the addon boundary; addon.cc turns it into a JS Error with code 'EVAL'.
struct loom_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

size_t dtype_size(dtype d);
bool dtype_is_float(dtype d);

struct ref {
  arena_id arena = arena_id::act;
  int64_t offset = 0; // bytes
};

struct activation {
  activation_kind kind = activation_kind::none;
  double alpha = 0, beta = 0; // leaky_relu: alpha; hard_sigmoid: alpha, beta
  double min = 0, max = 0;    // clip
};

// ---- GEMM ----
struct gemm_problem {
  int64_t m = 0, n = 0, k = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0;
  double alpha = 1, beta = 1;
  bias_mode bias = bias_mode::none;
  int64_t ld_bias = 0;
  activation act;
  // residual (optional in plan.json): every entry adds its own f32 [m, n] residual (leading dim ldc) before the
  // activation: C = act(alpha · op(A) · op(B) + beta · bias + residual)
  bool residual = false;
  // rowsUnit (optional in plan.json; 0 = absent): m = rows_unit * the tenants' rows, with the rows outermost in A
  // and C, so a tick whose tenants carry at most `rows` rows may run m' = gemm_rows_m(p, rows) rows instead.
  int64_t rows_unit = 0;
};

// The m a tick runs for `p` when its live tenants carry at most `rows` rows (0: every row, the full m).
inline int64_t gemm_rows_m(const gemm_problem& p, int64_t rows) {
  if (rows <= 0 || p.rows_unit <= 0) return p.m;
  return p.rows_unit * rows < p.m ? p.rows_unit * rows : p.m;
}

struct gemm_entry {
  int32_t tenant = 0;
  ref a, b, c;
  bool has_bias = false;
  ref bias;
  bool has_residual = false; // exactly when the problem has residual
  ref residual;
};

struct gemm_strides {
  int64_t a = 0, b = 0, c = 0, bias = 0;
};

struct gemm_group {
  gemm_problem problem;
  std::vector<gemm_entry> entries;
};

// ---- generated kernels ----
struct elt_instr {
  elt_op op = elt_op::constant;
  int32_t input = 0;       // in
  int32_t param = 0;       // param: index into the segment's params
  double value = 0;        // constant
  double min = 0, max = 0; // clip
  activation act;          // act
};

struct kernel_op {
  kernel_kind kind = kernel_kind::copy;
  std::vector<elt_instr> program; // eltwise
  bool compute_f32 = true;        // eltwise
  int32_t stack_depth = 0;        // eltwise: the program's deepest stack (set by plan_validate)
  reduce_kind reduce = reduce_kind::sum;
  bool select_last = false;       // argmax/argmin
  bool log = false;               // softmax
  double epsilon = 0;             // layernorm/groupnorm
  bool pool_max = true;           // pool: pool_mode::max (else avg)
  bool count_include_pad = false; // pool avg
  double value = 0;               // fill
  bool ones = false;              // im2col: a row of ones after each image's columns (geom.n = 1)
  bool conv_bias = false;         // conv: inputs[2] is the bias
  bool conv_residual = false;     // conv: the last input is a residual added before the activation
  activation act;                 // depthwise, conv: applied to each output; squeeze_excite: act1 (kind none: no activation)
  activation act2;                // squeeze_excite: the gate's activation
};

struct tensor_view {
  ref r;
  dtype dt = dtype::f32;
  std::vector<int64_t> strides; // elements; may be empty where the op reads contiguously
};

struct pool_geometry {
  int64_t n = 0, c = 0, h = 0, w = 0, oh = 0, ow = 0, kh = 0, kw = 0, sh = 1, sw = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0, dh = 1, dw = 1;
};
// One int64 per POOL_GEOMETRY_FIELDS entry, in that order (addon_plan.cc reads them by name).
static_assert(sizeof(pool_geometry) == pool_geometry_field_count * sizeof(int64_t),
              "pool_geometry: one field per POOL_GEOMETRY_FIELDS entry");

struct segment {
  int32_t tenant = 0;
  std::vector<int64_t> shape; // eltwise, copy
  std::vector<double> params; // eltwise: the values its program's 'param' instructions read
  std::vector<int64_t> dims;  // reduce, softmax, layernorm, groupnorm, gather
  int64_t count = 0;          // fill, gather_table
  bool has_geom = false;
  pool_geometry geom; // pool, im2col, col2im
  std::vector<tensor_view> inputs;
  ref out;
  dtype out_dt = dtype::f32;
  bool has_out_strides = false;
  std::vector<int64_t> out_strides; // copy
};

// kernels.grids[id] of plan.json (codegen/FORMAT.md): how the CUDA backend starts a generated kernel.
// Absent (present = false) in hand-built plans, which the CPU backend runs without it.
struct kernel_grid {
  bool present = false;
  std::string symbol; // kernels.names[id]: the extern "C" symbol in kernels.cu / the cubin
  int64_t block = 0, grid = 0;
  std::vector<int64_t> work; // work items per segment
};

// Bytes [begin, end) of one arena.
struct byte_span {
  arena_id arena = arena_id::act;
  int64_t begin = 0, end = 0;
};

struct launch {
  launch_kind kind = launch_kind::kernel;
  int32_t id = 0;
  std::string label;              // LaunchInfo.label or the kernel name: for error messages
  dtype dt = dtype::f32;          // gemm, gemm_grouped
  std::vector<gemm_group> groups; // gemm: exactly one; gemm_grouped: one per problem
  bool has_strides = false;       // gemm: entries are uniformly strided (a strided-batched call may be used)
  gemm_strides strides;
  std::string kernel; // kernel: the generated kernel's name (CUDA backend)
  kernel_op op;
  std::vector<segment> segments;
  kernel_grid grid; // kernel: from plan.json kernels.grids / kernels.names (CUDA backend)
  // The tick's DAG (FORMAT.md "Lanes"): the lane it runs on, and the earlier launches of other lanes it waits
  // for. A backend without streams runs launches in plan order, which always respects both.
  int32_t lane = 0;
  std::vector<int32_t> after; // launch indices
  // Set by plan_validate: the bytes each view the launch writes may touch (a strided view's hull), so a checking
  // backend (cuda-emu) can tell a stray write from an output.
  std::vector<byte_span> writes;
};

struct arena_sizes {
  int64_t weights = 0, act = 0, io = 0;
};
static_assert(arena_id_count == 3, "arena_sizes and every backend's arena table hold weights, act and io");

// A tenant's input or output slot in the io arena (plan.json tenants[].inputs/outputs ref + bytes).
struct io_slot {
  int64_t offset = 0, bytes = 0;
};

struct tenant_io {
  std::vector<io_slot> inputs, outputs;
};

struct launch_plan {
  arena_sizes arenas;
  std::vector<std::string> tenants; // ids, for messages
  std::vector<launch> launches;
  int32_t lanes = 1;                   // parallel lanes of the tick (plan.json `lanes`, absent: 1)
  std::vector<int32_t> priority_lanes; // lanes on the critical path (plan.json `priorityLanes`, absent: none)
  // Parallel to `tenants` when plan.json names the tenants' I/O slots; empty for hand-built plans. The
  // CUDA backend copies exactly these ranges in and out of its captured tick.
  std::vector<tenant_io> io;
};

// Checks every reference of every launch against the arena sizes (a bad plan is an error, never a
// crash) and fills derived fields (eltwise stack_depth). Throws loom_error.
void plan_validate(launch_plan& plan);

std::string launch_where(const launch_plan& plan, const launch& l);

} // namespace loom
