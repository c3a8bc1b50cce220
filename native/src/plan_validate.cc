// Every byte a launch may touch is checked against its arena once, at load: a bad plan is a clear error,
// never a crash or a silent overwrite. Data-dependent reads (gather indices, gather tables) are checked by
// the kernels themselves.
#include <algorithm>
#include <string>

#include "plan.h"

namespace loom {

size_t dtype_size(dtype d) {
  switch (d) {
    case dtype::f64:
    case dtype::i64: return 8;
    case dtype::f32:
    case dtype::i32: return 4;
    case dtype::f16:
    case dtype::bf16: return 2;
    case dtype::i8:
    case dtype::u8:
    case dtype::boolean: return 1;
  }
  return 1;
}

bool dtype_is_float(dtype d) { return d == dtype::f32 || d == dtype::f64 || d == dtype::f16 || d == dtype::bf16; }

std::string launch_where(const launch_plan& plan, const launch& l) {
  (void)plan;
  return "launch " + std::to_string(l.id) + " (" + (l.label.empty() ? l.kernel : l.label) + ")";
}

namespace {

struct checker {
  const launch_plan& plan;
  const launch& l;
  std::vector<byte_span>* writes; // l.writes, filled as the written views are checked

  [[noreturn]] void bad(const std::string& msg) const { throw loom_error(launch_where(plan, l) + ": " + msg); }

  int64_t arena_size(arena_id a) const {
    switch (a) {
      case arena_id::weights: return plan.arenas.weights;
      case arena_id::act: return plan.arenas.act;
      case arena_id::io: return plan.arenas.io;
    }
    return 0;
  }

  void tenant(int32_t t) const {
    if (t < 0 || static_cast<size_t>(t) >= plan.tenants.size()) bad("tenant index " + std::to_string(t) + " is out of range");
  }

  // Element span [lo, hi] (inclusive, relative to r) of a view; empty when any dim is 0.
  void span(const char* what, ref r, dtype dt, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, bool written) const {
    if (!strides.empty() && strides.size() != shape.size()) {
      bad(std::string(what) + ": " + std::to_string(strides.size()) + " strides for a rank-" + std::to_string(shape.size()) + " view");
    }
    int64_t lo = 0, hi = 0, contiguous = 1;
    for (size_t i = shape.size(); i-- > 0;) {
      int64_t s = shape[i];
      if (s < 0) bad(std::string(what) + ": negative extent " + std::to_string(s));
      if (s == 0) return;
      int64_t st = strides.empty() ? contiguous : strides[i];
      contiguous *= s;
      int64_t far = (s - 1) * st;
      if (far < 0) lo += far;
      else hi += far;
    }
    int64_t es = static_cast<int64_t>(dtype_size(dt));
    int64_t first = r.offset + lo * es, end = r.offset + (hi + 1) * es;
    if (first < 0 || end > arena_size(r.arena)) {
      bad(std::string(what) + " reads/writes bytes [" + std::to_string(first) + ", " + std::to_string(end) + ") outside the " +
          arena_id_name(r.arena) + " arena of " + std::to_string(arena_size(r.arena)) + " bytes");
    }
    if (written && r.arena == arena_id::weights) bad(std::string(what) + " writes into the read-only weights arena");
    if (written && writes) writes->push_back({r.arena, first, end});
  }

  void flat(const char* what, ref r, dtype dt, int64_t count, bool written) const { span(what, r, dt, {count}, {}, written); }

  void need_inputs(const segment& s, size_t lo, size_t hi) const {
    if (s.inputs.size() < lo || s.inputs.size() > hi) {
      bad("segment of tenant " + std::to_string(s.tenant) + " has " + std::to_string(s.inputs.size()) + " inputs, expected " +
          std::to_string(lo) + (hi != lo ? ".." + std::to_string(hi) : ""));
    }
  }

  void need_dims(const segment& s, size_t n) const {
    if (s.dims.size() != n) bad("segment dims has " + std::to_string(s.dims.size()) + " entries, expected " + std::to_string(n));
  }

  void need_geom(const segment& s) const {
    if (!s.has_geom) bad("segment has no geom");
    const pool_geometry& g = s.geom;
    if (g.sh <= 0 || g.sw <= 0 || g.dh <= 0 || g.dw <= 0 || g.kh <= 0 || g.kw <= 0)
      bad("geom has a non-positive kernel, stride or dilation");
  }

  void gemm_entry(const gemm_problem& p, const gemm_entry& e) const {
    tenant(e.tenant);
    int64_t ra = p.trans_a ? p.k : p.m, ca = p.trans_a ? p.m : p.k;
    int64_t rb = p.trans_b ? p.n : p.k, cb = p.trans_b ? p.k : p.n;
    if (p.m < 0 || p.n < 0 || p.k < 0) bad("negative gemm size");
    if (p.lda < ca || p.ldb < cb || p.ldc < p.n) bad("gemm leading dimension smaller than the row length");
    if (p.rows_unit < 0 || (p.rows_unit > 0 && (p.trans_a || p.m % p.rows_unit != 0)))
      bad("gemm rowsUnit " + std::to_string(p.rows_unit) + " must divide m = " + std::to_string(p.m) + " of an untransposed A");
    span("gemm A", e.a, l.dt, {ra, ca}, {p.lda, 1}, false);
    span("gemm B", e.b, l.dt, {rb, cb}, {p.ldb, 1}, false);
    // l.dt is A's and B's dtype; C and bias are f32 (FORMAT.md "gemm dtype")
    span("gemm C", e.c, dtype::f32, {p.m, p.n}, {p.ldc, 1}, true);
    if ((p.bias != bias_mode::none) != e.has_bias) bad("gemm entry bias does not match the problem's bias mode");
    switch (p.bias) {
      case bias_mode::none: break;
      case bias_mode::row: flat("gemm bias", e.bias, dtype::f32, p.n, false); break;
      case bias_mode::col: flat("gemm bias", e.bias, dtype::f32, p.m, false); break;
      case bias_mode::full:
        if (p.ld_bias < p.n) bad("gemm ldBias smaller than n");
        span("gemm bias", e.bias, dtype::f32, {p.m, p.n}, {p.ld_bias, 1}, false);
        break;
    }
    if (p.residual != e.has_residual) bad("gemm entry residual does not match the problem's residual flag");
    if (e.has_residual) span("gemm residual", e.residual, dtype::f32, {p.m, p.n}, {p.ldc, 1}, false);
  }

  int32_t program_depth(const std::vector<elt_instr>& prog, size_t n_inputs, size_t n_params) const {
    if (n_params > elt_max_params)
      bad("eltwise segment has " + std::to_string(n_params) + " params, at most " + std::to_string(elt_max_params));
    int32_t depth = 0, deepest = 0;
    for (const auto& ins : prog) {
      int32_t pops = 0, pushes = 1;
      switch (ins.op) {
        case elt_op::in:
          if (ins.input < 0 || static_cast<size_t>(ins.input) >= n_inputs)
            bad("eltwise program reads input " + std::to_string(ins.input) + " of " + std::to_string(n_inputs));
          break;
        case elt_op::param:
          if (ins.param < 0 || static_cast<size_t>(ins.param) >= n_params)
            bad("eltwise program reads param " + std::to_string(ins.param) + " of " + std::to_string(n_params));
          break;
        case elt_op::constant: break;
        case elt_op::where: pops = 3; break;
        case elt_op::clip:
        case elt_op::act: pops = 1; break;
        default: pops = elt_op_is_unary(ins.op) ? 1 : 2; break; // the rest: unary or binary (plan_enums.gen.h)
      }
      if (depth < pops) bad("eltwise program pops an empty stack");
      depth += pushes - pops;
      deepest = std::max(deepest, depth);
    }
    if (depth != 1) bad("eltwise program leaves " + std::to_string(depth) + " values on the stack, expected 1");
    return deepest;
  }

  void kernel_segment(kernel_op& op, const segment& s) const {
    tenant(s.tenant);
    if (!s.params.empty() && op.kind != kernel_kind::eltwise) bad("only eltwise segments carry params");
    auto in = [&](size_t i) -> const tensor_view& { return s.inputs[i]; };
    switch (op.kind) {
      case kernel_kind::eltwise: {
        if (s.inputs.empty() && op.program.empty()) bad("empty eltwise segment");
        for (size_t i = 0; i < s.inputs.size(); i++) {
          if (in(i).strides.size() != s.shape.size()) bad("eltwise input " + std::to_string(i) + " strides do not match the shape's rank");
          span("eltwise input", in(i).r, in(i).dt, s.shape, in(i).strides, false);
        }
        span("eltwise output", s.out, s.out_dt, s.shape, {}, true);
        op.stack_depth = std::max(op.stack_depth, program_depth(op.program, s.inputs.size(), s.params.size()));
        break;
      }
      case kernel_kind::reduce:
      case kernel_kind::softmax: {
        need_dims(s, 3);
        need_inputs(s, 1, 1);
        span("input", in(0).r, in(0).dt, s.dims, in(0).strides, false);
        if (op.kind == kernel_kind::reduce) flat("output", s.out, s.out_dt, s.dims[0] * s.dims[2], true);
        else flat("output", s.out, s.out_dt, s.dims[0] * s.dims[1] * s.dims[2], true);
        break;
      }
      case kernel_kind::layernorm: {
        need_dims(s, 2);
        need_inputs(s, 1, 3);
        span("input", in(0).r, in(0).dt, s.dims, in(0).strides, false);
        for (size_t i = 1; i < s.inputs.size(); i++) flat("scale/bias", in(i).r, in(i).dt, s.dims[1], false);
        flat("output", s.out, s.out_dt, s.dims[0] * s.dims[1], true);
        break;
      }
      case kernel_kind::groupnorm: {
        need_dims(s, 4);
        need_inputs(s, 3, 3);
        int64_t total = s.dims[0] * s.dims[1] * s.dims[2] * s.dims[3];
        flat("input", in(0).r, in(0).dt, total, false);
        flat("scale", in(1).r, in(1).dt, s.dims[1] * s.dims[2], false);
        flat("bias", in(2).r, in(2).dt, s.dims[1] * s.dims[2], false);
        flat("output", s.out, s.out_dt, total, true);
        break;
      }
      case kernel_kind::pool:
      case kernel_kind::im2col:
      case kernel_kind::col2im: {
        need_geom(s);
        const pool_geometry& g = s.geom;
        if (op.kind == kernel_kind::col2im) {
          need_inputs(s, 1, 2);
          flat("columns", in(0).r, in(0).dt, g.n * g.c * g.kh * g.kw * g.h * g.w, false);
          if (s.inputs.size() == 2) flat("bias", in(1).r, in(1).dt, g.c, false);
          flat("output", s.out, s.out_dt, g.n * g.c * g.oh * g.ow, true);
        } else {
          need_inputs(s, 1, 1);
          span("input", in(0).r, in(0).dt,
               in(0).strides.size() == 3 ? std::vector<int64_t>{g.c, g.h, g.w} : std::vector<int64_t>{g.n, g.c, g.h, g.w}, in(0).strides,
               false);
          if (in(0).strides.size() == 3 && g.n != 1) bad("a [C,H,W] strided input needs geom.n = 1");
          if (op.ones && g.n != 1) bad("an im2col with ones takes one image per segment (geom.n = 1)");
          int64_t outs =
              op.kind == kernel_kind::pool ? g.n * g.c * g.oh * g.ow : g.n * (g.c * g.kh * g.kw + (op.ones ? 1 : 0)) * g.oh * g.ow;
          flat("output", s.out, s.out_dt, outs, true);
        }
        break;
      }
      case kernel_kind::depthwise: {
        need_geom(s);
        need_inputs(s, 2, 3);
        const pool_geometry& g = s.geom;
        flat("input", in(0).r, in(0).dt, g.n * g.c * g.h * g.w, false);
        flat("weights", in(1).r, in(1).dt, g.c * g.kh * g.kw, false);
        if (s.inputs.size() == 3) flat("bias", in(2).r, in(2).dt, g.c, false);
        flat("output", s.out, s.out_dt, g.n * g.c * g.oh * g.ow, true);
        break;
      }
      case kernel_kind::copy: {
        need_inputs(s, 1, 1);
        if (in(0).strides.size() != s.shape.size()) bad("copy input strides do not match the shape's rank");
        span("copy input", in(0).r, in(0).dt, s.shape, in(0).strides, false);
        if (s.has_out_strides && s.out_strides.size() != s.shape.size()) bad("copy outStrides do not match the shape's rank");
        span("copy output", s.out, s.out_dt, s.shape, s.has_out_strides ? s.out_strides : std::vector<int64_t>{}, true);
        break;
      }
      case kernel_kind::fill:
        need_inputs(s, 0, 0);
        flat("output", s.out, s.out_dt, s.count, true);
        break;
      case kernel_kind::gather: {
        need_dims(s, 4);
        need_inputs(s, 2, 2);
        if (in(1).dt != dtype::i64 && in(1).dt != dtype::i32)
          bad(std::string("gather indices must be i64 or i32, got ") + dtype_name(in(1).dt));
        if (dtype_size(in(0).dt) != dtype_size(s.out_dt)) bad("gather output dtype differs from the data's");
        flat("data", in(0).r, in(0).dt, s.dims[0] * s.dims[1] * s.dims[2], false);
        flat("indices", in(1).r, in(1).dt, s.dims[3], false);
        flat("output", s.out, s.out_dt, s.dims[0] * s.dims[3] * s.dims[2], true);
        break;
      }
      case kernel_kind::squeeze_excite: {
        need_dims(s, 4);
        need_inputs(s, 5, 5);
        const int64_t n = s.dims[0], c = s.dims[1], sp = s.dims[2], h = s.dims[3];
        if (c > se_max_channels || h > se_max_hidden || sp < 1)
          bad("squeeze_excite dims: at most " + std::to_string(se_max_channels) + " channels and " + std::to_string(se_max_hidden) +
              " hidden values, spatial >= 1");
        for (size_t i = 0; i < 5; i++)
          if (in(i).dt != dtype::f32) bad("squeeze_excite input " + std::to_string(i) + " must be f32");
        if (s.out_dt != dtype::f32) bad("squeeze_excite output must be f32");
        flat("input", in(0).r, in(0).dt, n * c * sp, false);
        flat("w1", in(1).r, in(1).dt, h * c, false);
        flat("b1", in(2).r, in(2).dt, h, false);
        flat("w2", in(3).r, in(3).dt, c * h, false);
        flat("b2", in(4).r, in(4).dt, c, false);
        flat("output", s.out, s.out_dt, n * c * sp, true);
        break;
      }
      case kernel_kind::conv: {
        need_geom(s);
        need_dims(s, 1);
        const size_t arity = 2 + (op.conv_bias ? 1 : 0) + (op.conv_residual ? 1 : 0);
        need_inputs(s, arity, arity);
        const pool_geometry& g = s.geom;
        if (g.n != 1) bad("a conv segment is one image (geom.n = 1)");
        for (size_t i = 0; i < arity; i++)
          if (in(i).dt != dtype::f32) bad("conv input " + std::to_string(i) + " must be f32");
        if (s.out_dt != dtype::f32) bad("conv output must be f32");
        const int64_t m = s.dims[0], p = g.oh * g.ow;
        flat("input", in(0).r, in(0).dt, g.c * g.h * g.w, false);
        flat("weights", in(1).r, in(1).dt, m * g.c * g.kh * g.kw, false);
        if (op.conv_bias) flat("bias", in(2).r, in(2).dt, m, false);
        if (op.conv_residual) flat("residual", in(arity - 1).r, in(arity - 1).dt, m * p, false);
        flat("output", s.out, s.out_dt, m * p, true);
        break;
      }
      case kernel_kind::gather_table: {
        need_inputs(s, 2, 2);
        if (in(1).dt != dtype::i32) bad(std::string("gather_table table must be i32, got ") + dtype_name(in(1).dt));
        if (dtype_size(in(0).dt) != dtype_size(s.out_dt)) bad("gather_table output dtype differs from the data's");
        flat("table", in(1).r, in(1).dt, s.count, false);
        flat("output", s.out, s.out_dt, s.count, true);
        break;
      }
    }
  }
};

} // namespace

// Lanes: in range, and every wait names an earlier launch of another lane (the DAG's coverage of each
// dependency is the JS validator's check: codegen/validate.ts checkLanes).
static void check_lanes(const launch_plan& plan) {
  if (plan.lanes < 1 || plan.lanes > 32) throw loom_error("plan: lanes " + std::to_string(plan.lanes) + " is outside 1..32");
  for (size_t i = 0; i < plan.launches.size(); i++) {
    const launch& l = plan.launches[i];
    const std::string where = launch_where(plan, l);
    if (l.lane < 0 || l.lane >= plan.lanes)
      throw loom_error(where + ": lane " + std::to_string(l.lane) + " is outside 0.." + std::to_string(plan.lanes - 1));
    for (int32_t a : l.after) {
      if (a < 0 || static_cast<size_t>(a) >= i)
        throw loom_error(where + ": waits for launch index " + std::to_string(a) + ", which is not earlier");
      if (plan.launches[static_cast<size_t>(a)].lane == l.lane)
        throw loom_error(where + ": waits for launch index " + std::to_string(a) + " of its own lane");
    }
  }
  std::vector<bool> named(static_cast<size_t>(plan.lanes), false);
  for (int32_t l : plan.priority_lanes) {
    if (l < 0 || l >= plan.lanes)
      throw loom_error("plan: priorityLanes names lane " + std::to_string(l) + ", outside 0.." + std::to_string(plan.lanes - 1));
    if (named[static_cast<size_t>(l)]) throw loom_error("plan: priorityLanes names lane " + std::to_string(l) + " twice");
    named[static_cast<size_t>(l)] = true;
  }
}

void plan_validate(launch_plan& plan) {
  check_lanes(plan);
  for (auto& l : plan.launches) {
    l.writes.clear();
    checker c{plan, l, &l.writes};
    switch (l.kind) {
      case launch_kind::gemm:
      case launch_kind::gemm_grouped:
        if (l.kind == launch_kind::gemm && l.groups.size() != 1) c.bad("a gemm launch has exactly one problem");
        if (!dtype_is_gemm_operand(l.dt)) c.bad(std::string("gemm dtype must be ") + gemm_dtype_expected() + ", got " + dtype_name(l.dt));
        for (const auto& g : l.groups)
          for (const auto& e : g.entries) c.gemm_entry(g.problem, e);
        break;
      case launch_kind::kernel:
        l.op.stack_depth = 0;
        for (const auto& s : l.segments) c.kernel_segment(l.op, s);
        break;
    }
  }
}

} // namespace loom
