#include "addon_plan.h"

#include <cmath>
#include <limits>
#include <string>

namespace loom {

namespace {

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw loom_error("plan: " + where + ": " + what); }

// A closed-list name through its generated parser (plan_enums.gen.h); an unknown one names the field, the
// value and the values the contract allows: "<where>: unknown <what> 'x' (expected a, b or c)".
template <typename E>
E parse_name(bool (*parse)(const std::string&, E&), const char* (*expected)(), const std::string& s, const std::string& where,
             const char* what) {
  E out{};
  if (!parse(s, out)) bad(where, std::string("unknown ") + what + " '" + s + "' (expected " + expected() + ")");
  return out;
}

Napi::Value field(const Napi::Object& o, const char* key, const std::string& where) {
  if (!o.Has(key)) bad(where, std::string("missing field '") + key + "'");
  return o.Get(key);
}

Napi::Object as_object(const Napi::Value& v, const std::string& where) {
  if (!v.IsObject() || v.IsArray()) bad(where, "expected an object");
  return v.As<Napi::Object>();
}

Napi::Array as_array(const Napi::Value& v, const std::string& where) {
  if (!v.IsArray()) bad(where, "expected an array");
  return v.As<Napi::Array>();
}

// Numbers JSON cannot hold (±Infinity, NaN) arrive as the strings "Infinity", "-Infinity", "NaN".
double as_double(const Napi::Value& v, const std::string& where) {
  if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
  if (v.IsString()) {
    const std::string s = v.As<Napi::String>().Utf8Value();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  }
  bad(where, "expected a number");
}

int64_t as_int(const Napi::Value& v, const std::string& where) {
  if (!v.IsNumber()) bad(where, "expected an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::trunc(d) != d || std::abs(d) > 9007199254740992.0)
    bad(where, "expected an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

bool as_bool(const Napi::Value& v, const std::string& where) {
  if (!v.IsBoolean()) bad(where, "expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string as_string(const Napi::Value& v, const std::string& where) {
  if (!v.IsString()) bad(where, "expected a string");
  return v.As<Napi::String>().Utf8Value();
}

double num(const Napi::Object& o, const char* k, const std::string& w) { return as_double(field(o, k, w), w + "." + k); }
int64_t integer(const Napi::Object& o, const char* k, const std::string& w) { return as_int(field(o, k, w), w + "." + k); }
bool boolean(const Napi::Object& o, const char* k, const std::string& w) { return as_bool(field(o, k, w), w + "." + k); }
std::string str(const Napi::Object& o, const char* k, const std::string& w) { return as_string(field(o, k, w), w + "." + k); }
bool present(const Napi::Object& o, const char* k) { return o.Has(k) && !o.Get(k).IsUndefined() && !o.Get(k).IsNull(); }

std::vector<int64_t> int_list(const Napi::Value& v, const std::string& where) {
  Napi::Array a = as_array(v, where);
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out[i] = as_int(a.Get(i), where + "[" + std::to_string(i) + "]");
  return out;
}

dtype parse_dtype(const std::string& s, const std::string& where) { return parse_name(dtype_parse, dtype_expected, s, where, "dtype"); }

ref parse_ref(const Napi::Value& v, const std::string& where) {
  Napi::Object o = as_object(v, where);
  ref r;
  r.arena = parse_name(arena_id_parse, arena_id_expected, str(o, "arena", where), where + ".arena", "arena");
  r.offset = integer(o, "offset", where);
  return r;
}

activation parse_activation(const Napi::Value& v, const std::string& where) {
  activation a;
  if (v.IsNull() || v.IsUndefined()) return a;
  Napi::Object o = as_object(v, where);
  a.kind = parse_name(activation_kind_parse, activation_kind_expected, str(o, "kind", where), where + ".kind", "activation");
  // the parameters some kinds carry
  switch (a.kind) {
    case activation_kind::leaky_relu: a.alpha = num(o, "alpha", where); break;
    case activation_kind::clip:
      a.min = num(o, "min", where);
      a.max = num(o, "max", where);
      break;
    case activation_kind::hard_sigmoid:
      a.alpha = num(o, "alpha", where);
      a.beta = num(o, "beta", where);
      break;
    default: break;
  }
  return a;
}

gemm_problem parse_problem(const Napi::Object& o, const std::string& w) {
  gemm_problem p;
  p.m = integer(o, "m", w);
  p.n = integer(o, "n", w);
  p.k = integer(o, "k", w);
  p.trans_a = boolean(o, "transA", w);
  p.trans_b = boolean(o, "transB", w);
  p.lda = integer(o, "lda", w);
  p.ldb = integer(o, "ldb", w);
  p.ldc = integer(o, "ldc", w);
  p.alpha = num(o, "alpha", w);
  p.beta = num(o, "beta", w);
  p.bias = parse_name(bias_mode_parse, bias_mode_expected, str(o, "bias", w), w + ".bias", "bias mode");
  p.ld_bias = present(o, "ldBias") ? integer(o, "ldBias", w) : 0;
  p.rows_unit = present(o, "rowsUnit") ? integer(o, "rowsUnit", w) : 0;
  p.residual = present(o, "residual") && boolean(o, "residual", w);
  p.act = parse_activation(o.Has("activation") ? o.Get("activation") : Napi::Value(), w + ".activation");
  return p;
}

std::vector<gemm_entry> parse_entries(const Napi::Value& v, const std::string& w) {
  Napi::Array a = as_array(v, w);
  std::vector<gemm_entry> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    const std::string wi = w + "[" + std::to_string(i) + "]";
    Napi::Object o = as_object(a.Get(i), wi);
    gemm_entry& e = out[i];
    e.tenant = static_cast<int32_t>(integer(o, "tenant", wi));
    e.a = parse_ref(field(o, "a", wi), wi + ".a");
    e.b = parse_ref(field(o, "b", wi), wi + ".b");
    e.c = parse_ref(field(o, "c", wi), wi + ".c");
    e.has_bias = present(o, "bias");
    if (e.has_bias) e.bias = parse_ref(o.Get("bias"), wi + ".bias");
    e.has_residual = present(o, "residual");
    if (e.has_residual) e.residual = parse_ref(o.Get("residual"), wi + ".residual");
  }
  return out;
}

kernel_op parse_kernel_op(const Napi::Object& o, const std::string& w) {
  kernel_op k;
  k.kind = parse_name(kernel_kind_parse, kernel_kind_expected, str(o, "op", w), w + ".op", "kernel op");
  // the fields each op carries (ir/contract/launch.ts KernelOp)
  switch (k.kind) {
    case kernel_kind::eltwise: {
      k.compute_f32 = boolean(o, "computeF32", w);
      Napi::Array prog = as_array(field(o, "program", w), w + ".program");
      for (uint32_t i = 0; i < prog.Length(); i++) {
        const std::string wi = w + ".program[" + std::to_string(i) + "]";
        Napi::Object io = as_object(prog.Get(i), wi);
        elt_instr ins;
        ins.op = parse_name(elt_op_parse, elt_op_expected, str(io, "op", wi), wi + ".op", "eltwise instruction");
        if (ins.op == elt_op::in) ins.input = static_cast<int32_t>(integer(io, "i", wi));
        if (ins.op == elt_op::constant) ins.value = num(io, "v", wi);
        if (ins.op == elt_op::param) ins.param = static_cast<int32_t>(integer(io, "i", wi));
        if (ins.op == elt_op::clip) {
          ins.min = num(io, "min", wi);
          ins.max = num(io, "max", wi);
        }
        if (ins.op == elt_op::act) ins.act = parse_activation(field(io, "act", wi), wi + ".act");
        k.program.push_back(ins);
      }
      break;
    }
    case kernel_kind::reduce:
      k.reduce = parse_name(reduce_kind_parse, reduce_kind_expected, str(o, "reduce", w), w + ".reduce", "reduction");
      k.select_last = present(o, "selectLast") && boolean(o, "selectLast", w);
      break;
    case kernel_kind::softmax: k.log = boolean(o, "log", w); break;
    case kernel_kind::layernorm:
    case kernel_kind::groupnorm: k.epsilon = num(o, "epsilon", w); break;
    case kernel_kind::pool:
      k.pool_max = parse_name(pool_mode_parse, pool_mode_expected, str(o, "mode", w), w + ".mode", "pool mode") == pool_mode::max;
      k.count_include_pad = boolean(o, "countIncludePad", w);
      break;
    case kernel_kind::fill: k.value = num(o, "value", w); break;
    case kernel_kind::depthwise: k.act = parse_activation(field(o, "activation", w), w + ".activation"); break;
    case kernel_kind::conv:
      k.act = parse_activation(field(o, "activation", w), w + ".activation");
      k.conv_bias = boolean(o, "bias", w);
      k.conv_residual = boolean(o, "residual", w);
      break;
    case kernel_kind::squeeze_excite:
      k.act = parse_activation(field(o, "act1", w), w + ".act1");
      k.act2 = parse_activation(field(o, "act2", w), w + ".act2");
      break;
    case kernel_kind::im2col: k.ones = present(o, "ones") && boolean(o, "ones", w); break;
    case kernel_kind::col2im:
    case kernel_kind::copy:
    case kernel_kind::gather:
    case kernel_kind::gather_table: break;
  }
  return k;
}

// pool_geometry's members in POOL_GEOMETRY_FIELDS order (plan_enums.gen.h names them).
constexpr int64_t pool_geometry::*kGeomMembers[] = {
    &pool_geometry::n,          &pool_geometry::c,         &pool_geometry::h,       &pool_geometry::w,
    &pool_geometry::oh,         &pool_geometry::ow,        &pool_geometry::kh,      &pool_geometry::kw,
    &pool_geometry::sh,         &pool_geometry::sw,        &pool_geometry::pad_top, &pool_geometry::pad_left,
    &pool_geometry::pad_bottom, &pool_geometry::pad_right, &pool_geometry::dh,      &pool_geometry::dw,
};
static_assert(sizeof(kGeomMembers) / sizeof(kGeomMembers[0]) == pool_geometry_field_count, "one member per POOL_GEOMETRY_FIELDS entry");

pool_geometry parse_geom(const Napi::Object& o, const std::string& w) {
  pool_geometry g;
  for (size_t i = 0; i < pool_geometry_field_count; i++) g.*kGeomMembers[i] = integer(o, pool_geometry_field_names[i], w);
  return g;
}

segment parse_segment(const Napi::Object& o, const std::string& w) {
  segment s;
  s.tenant = static_cast<int32_t>(integer(o, "tenant", w));
  if (present(o, "shape")) s.shape = int_list(o.Get("shape"), w + ".shape");
  if (present(o, "params")) {
    Napi::Array ps = as_array(o.Get("params"), w + ".params");
    for (uint32_t i = 0; i < ps.Length(); i++) s.params.push_back(as_double(ps.Get(i), w + ".params[" + std::to_string(i) + "]"));
  }
  if (present(o, "dims")) s.dims = int_list(o.Get("dims"), w + ".dims");
  if (present(o, "count")) s.count = integer(o, "count", w);
  s.has_geom = present(o, "geom");
  if (s.has_geom) s.geom = parse_geom(as_object(o.Get("geom"), w + ".geom"), w + ".geom");
  Napi::Array ins = as_array(field(o, "inputs", w), w + ".inputs");
  for (uint32_t i = 0; i < ins.Length(); i++) {
    const std::string wi = w + ".inputs[" + std::to_string(i) + "]";
    Napi::Object vo = as_object(ins.Get(i), wi);
    tensor_view v;
    v.r = parse_ref(field(vo, "ref", wi), wi + ".ref");
    v.dt = parse_dtype(str(vo, "dtype", wi), wi + ".dtype");
    if (present(vo, "strides")) v.strides = int_list(vo.Get("strides"), wi + ".strides");
    s.inputs.push_back(std::move(v));
  }
  s.out = parse_ref(field(o, "out", w), w + ".out");
  s.out_dt = parse_dtype(str(o, "outDType", w), w + ".outDType");
  s.has_out_strides = present(o, "outStrides");
  if (s.has_out_strides) s.out_strides = int_list(o.Get("outStrides"), w + ".outStrides");
  return s;
}

launch parse_launch(const Napi::Object& o, const std::string& w) {
  launch l;
  l.id = static_cast<int32_t>(integer(o, "id", w));
  if (present(o, "info")) {
    Napi::Object info = as_object(o.Get("info"), w + ".info");
    if (present(info, "label")) l.label = str(info, "label", w + ".info");
  }
  l.kind = parse_name(launch_kind_parse, launch_kind_expected, str(o, "kind", w), w + ".kind", "launch kind");
  if (present(o, "lane")) l.lane = static_cast<int32_t>(integer(o, "lane", w));
  if (present(o, "after"))
    for (int64_t a : int_list(o.Get("after"), w + ".after")) l.after.push_back(static_cast<int32_t>(a));
  if (l.kind == launch_kind::gemm) {
    l.dt = parse_dtype(str(o, "dtype", w), w + ".dtype");
    gemm_group g;
    g.problem = parse_problem(as_object(field(o, "problem", w), w + ".problem"), w + ".problem");
    g.entries = parse_entries(field(o, "entries", w), w + ".entries");
    l.groups.push_back(std::move(g));
    l.has_strides = present(o, "strides");
    if (l.has_strides) {
      Napi::Object so = as_object(o.Get("strides"), w + ".strides");
      l.strides = {integer(so, "a", w + ".strides"), integer(so, "b", w + ".strides"), integer(so, "c", w + ".strides"),
                   integer(so, "bias", w + ".strides")};
    }
  } else if (l.kind == launch_kind::gemm_grouped) {
    l.dt = parse_dtype(str(o, "dtype", w), w + ".dtype");
    Napi::Array groups = as_array(field(o, "groups", w), w + ".groups");
    for (uint32_t i = 0; i < groups.Length(); i++) {
      const std::string wi = w + ".groups[" + std::to_string(i) + "]";
      Napi::Object go = as_object(groups.Get(i), wi);
      gemm_group g;
      g.problem = parse_problem(as_object(field(go, "problem", wi), wi + ".problem"), wi + ".problem");
      g.entries = parse_entries(field(go, "entries", wi), wi + ".entries");
      l.groups.push_back(std::move(g));
    }
  } else { // launch_kind::kernel
    l.kernel = str(o, "kernel", w);
    l.op = parse_kernel_op(as_object(field(o, "op", w), w + ".op"), w + ".op");
    Napi::Array segs = as_array(field(o, "segments", w), w + ".segments");
    for (uint32_t i = 0; i < segs.Length(); i++) {
      const std::string wi = w + ".segments[" + std::to_string(i) + "]";
      l.segments.push_back(parse_segment(as_object(segs.Get(i), wi), wi));
    }
  }
  return l;
}

// tenants[].inputs / outputs: {ref (arena io), bytes} per slot.
std::vector<io_slot> parse_io_slots(const Napi::Value& v, const std::string& w) {
  Napi::Array a = as_array(v, w);
  std::vector<io_slot> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    const std::string wi = w + "[" + std::to_string(i) + "]";
    Napi::Object so = as_object(a.Get(i), wi);
    const ref r = parse_ref(field(so, "ref", wi), wi + ".ref");
    if (r.arena != arena_id::io) bad(wi + ".ref", "a tenant's I/O slot must lie in arena io");
    out.push_back({r.offset, integer(so, "bytes", wi)});
  }
  return out;
}

// kernels.names / kernels.grids (keyed by launch id) onto the kernel launches; the CUDA backend needs them.
void parse_kernel_grids(const Napi::Object& k, launch_plan& p) {
  if (!present(k, "grids") || !present(k, "names")) return;
  Napi::Object grids = as_object(k.Get("grids"), "kernels.grids");
  Napi::Object names = as_object(k.Get("names"), "kernels.names");
  for (auto& l : p.launches) {
    if (l.kind != launch_kind::kernel) continue;
    const std::string id = std::to_string(l.id);
    if (!grids.Has(id) || !names.Has(id)) continue;
    const std::string w = "kernels.grids[" + id + "]";
    Napi::Object g = as_object(grids.Get(id), w);
    l.grid.present = true;
    l.grid.symbol = as_string(names.Get(id), "kernels.names[" + id + "]");
    l.grid.block = integer(g, "block", w);
    l.grid.grid = integer(g, "grid", w);
    l.grid.work = int_list(field(g, "work", w), w + ".work");
  }
}

} // namespace

launch_plan addon_plan_from_js(const Napi::Object& o) {
  launch_plan p;
  Napi::Object arenas = as_object(field(o, "arenas", "plan"), "arenas");
  p.arenas.weights = integer(arenas, "weights", "arenas");
  p.arenas.act = integer(arenas, "act", "arenas");
  p.arenas.io = integer(arenas, "io", "arenas");
  Napi::Array tenants = as_array(field(o, "tenants", "plan"), "tenants");
  bool all_io = tenants.Length() > 0;
  for (uint32_t i = 0; i < tenants.Length(); i++) {
    Napi::Value t = tenants.Get(i);
    const std::string wi = "tenants[" + std::to_string(i) + "]";
    p.tenants.push_back(t.IsString() ? t.As<Napi::String>().Utf8Value() : str(as_object(t, wi), "id", wi));
    tenant_io tio;
    if (t.IsObject() && present(t.As<Napi::Object>(), "inputs") && present(t.As<Napi::Object>(), "outputs")) {
      tio.inputs = parse_io_slots(t.As<Napi::Object>().Get("inputs"), wi + ".inputs");
      tio.outputs = parse_io_slots(t.As<Napi::Object>().Get("outputs"), wi + ".outputs");
    } else {
      all_io = false;
    }
    p.io.push_back(std::move(tio));
  }
  if (!all_io) p.io.clear(); // a hand-built plan: no I/O slot table
  Napi::Array launches = as_array(field(o, "launches", "plan"), "launches");
  for (uint32_t i = 0; i < launches.Length(); i++) {
    const std::string wi = "launches[" + std::to_string(i) + "]";
    p.launches.push_back(parse_launch(as_object(launches.Get(i), wi), wi));
  }
  if (present(o, "lanes")) p.lanes = static_cast<int32_t>(integer(o, "lanes", "plan"));
  if (present(o, "priorityLanes"))
    for (int64_t l : int_list(o.Get("priorityLanes"), "priorityLanes")) p.priority_lanes.push_back(static_cast<int32_t>(l));
  if (present(o, "kernels")) parse_kernel_grids(as_object(o.Get("kernels"), "kernels"), p);
  return p;
}

} // namespace loom
