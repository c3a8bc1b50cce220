// Host-side tables of the CUDA backend, built once at load: the LoomSegment / LoomView arrays the
// generated kernels read (layout: codegen/FORMAT.md "Segment tables") and the GEMM epilogue jobs. Layout
// only: every number comes from the plan.
#include <cstring>
#include <string>

#include "backend_cuda.h"

namespace loom {

namespace {

[[noreturn]] void bad(const launch_plan& plan, const launch& l, const std::string& msg) {
  throw loom_error(launch_where(plan, l) + ": " + msg);
}

void put8(long long (&dst)[8], const std::vector<int64_t>& src, const launch_plan& plan, const launch& l, const char* what) {
  if (src.size() > 8)
    bad(plan, l, std::string(what) + " has " + std::to_string(src.size()) + " entries; the segment table holds at most 8");
  for (size_t i = 0; i < 8; i++) dst[i] = i < src.size() ? static_cast<long long>(src[i]) : 0;
}

// The epilogue kernel and the skinny-GEMM kernel's fused store (backend_cuda_activation.cuh) switch on these
// enums as plain ints: none row col full = 0 1 2 3, and activation_kind's order (none first, then
// ACTIVATION_KINDS). A reordered contract list must fail here, not compute the wrong activation.
static_assert(static_cast<int>(bias_mode::none) == 0 && static_cast<int>(bias_mode::row) == 1 && static_cast<int>(bias_mode::col) == 2 &&
                  static_cast<int>(bias_mode::full) == 3 && bias_mode_count == 4,
              "cuda_epi_job::bias_mode codes");
static_assert(static_cast<int>(activation_kind::none) == 0 && static_cast<int>(activation_kind::relu) == 1 &&
                  static_cast<int>(activation_kind::sigmoid) == 2 && static_cast<int>(activation_kind::tanh) == 3 &&
                  static_cast<int>(activation_kind::gelu_erf) == 4 && static_cast<int>(activation_kind::gelu_tanh) == 5 &&
                  static_cast<int>(activation_kind::leaky_relu) == 6 && static_cast<int>(activation_kind::clip) == 7 &&
                  static_cast<int>(activation_kind::hard_sigmoid) == 8 && static_cast<int>(activation_kind::hard_swish) == 9 &&
                  activation_kind_count == 10,
              "cuda_epi_job::act and cuda_gemv_args::act codes (cuda_activation in backend_cuda_activation.cuh)");

} // namespace

cuda_kernel_tables cuda_build_kernel_tables(const launch_plan& plan, const launch& l, const cuda_arenas& arenas) {
  if (!l.grid.present) {
    bad(plan, l,
        "the plan has no kernels.grids / kernels.names entry for this kernel launch (the CUDA backend needs plan.json written by codegen)");
  }
  if (l.grid.work.size() != l.segments.size()) {
    bad(plan, l,
        "kernels.grids gives work for " + std::to_string(l.grid.work.size()) + " segments, the launch has " +
            std::to_string(l.segments.size()));
  }
  cuda_kernel_tables t;
  t.segs.resize(l.segments.size());
  for (size_t i = 0; i < l.segments.size(); i++) {
    const segment& s = l.segments[i];
    LoomSegment& g = t.segs[i];
    std::memset(&g, 0, sizeof g);
    if (l.grid.work[i] < 0) bad(plan, l, "negative work in kernels.grids");
    g.workBegin = t.total_work;
    g.work = l.grid.work[i];
    t.total_work += g.work;
    put8(g.shape, s.shape, plan, l, "segment shape");
    put8(g.dims, s.dims, plan, l, "segment dims");
    if ((l.op.kind == kernel_kind::fill || l.op.kind == kernel_kind::gather_table) && s.dims.empty()) g.dims[0] = s.count;
    if (s.has_geom) {
      const pool_geometry& p = s.geom;
      const int64_t geom[16] = {p.n,  p.c,  p.h,       p.w,        p.oh,         p.ow,        p.kh, p.kw,
                                p.sh, p.sw, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right, p.dh, p.dw};
      for (int k = 0; k < 16; k++) g.geom[k] = geom[k];
    }
    if (!s.params.empty()) {
      if (l.op.kind != kernel_kind::eltwise) bad(plan, l, "only eltwise segments carry params");
      if (s.params.size() > elt_max_params)
        bad(plan, l, "segment has " + std::to_string(s.params.size()) + " params; the segment table holds at most 16");
      for (size_t k = 0; k < s.params.size(); k++) g.params[k] = s.params[k];
    }
    g.out = arenas.at(s.out);
    if (s.has_out_strides) {
      put8(g.outStrides, s.out_strides, plan, l, "segment outStrides");
    } else {
      long long c = 1;
      if (s.shape.size() > 8) bad(plan, l, "segment shape has more than 8 dims");
      for (size_t d = s.shape.size(); d-- > 0;) {
        g.outStrides[d] = c;
        c *= s.shape[d];
      }
    }
    g.rank = static_cast<int>(s.shape.size());
    g.nInputs = static_cast<int>(s.inputs.size());
    g.firstView = static_cast<long long>(t.views.size());
    for (const auto& v : s.inputs) {
      LoomView lv;
      std::memset(&lv, 0, sizeof lv);
      lv.ptr = arenas.at(v.r);
      put8(lv.strides, v.strides, plan, l, "input strides");
      t.views.push_back(lv);
    }
  }
  return t;
}

void cuda_activation_params(const activation& a, float& p0, float& p1) {
  p0 = 0, p1 = 0;
  switch (a.kind) {
    case activation_kind::leaky_relu: p0 = static_cast<float>(a.alpha); break;
    case activation_kind::hard_sigmoid:
      p0 = static_cast<float>(a.alpha);
      p1 = static_cast<float>(a.beta);
      break;
    case activation_kind::clip:
      p0 = static_cast<float>(a.min);
      p1 = static_cast<float>(a.max);
      break;
    default: break;
  }
}

std::vector<cuda_epi_job> cuda_build_epilogue(const launch& l, const cuda_arenas& arenas, std::vector<int32_t>* tenants,
                                              std::vector<int64_t>* units) {
  std::vector<cuda_epi_job> jobs;
  if (tenants) tenants->clear();
  if (units) units->clear();
  long long begin = 0;
  for (const auto& g : l.groups) {
    const gemm_problem& p = g.problem;
    const bool has_bias = p.bias != bias_mode::none;
    const bool needed = has_bias || p.residual || p.act.kind != activation_kind::none || p.k == 0;
    if (!needed || p.m == 0 || p.n == 0) continue;
    for (const auto& e : g.entries) {
      cuda_epi_job j;
      std::memset(&j, 0, sizeof j);
      j.begin = begin;
      j.m = p.m;
      j.n = p.n;
      j.ldc = p.ldc;
      j.ld_bias = p.ld_bias;
      j.c = arenas.at(e.c);
      j.bias = has_bias && e.has_bias ? arenas.at(e.bias) : 0;
      j.residual = p.residual && e.has_residual ? arenas.at(e.residual) : 0;
      j.bias_mode = static_cast<int>(p.bias); // none row col full = 0 1 2 3
      j.act = static_cast<int>(p.act.kind);
      j.beta = static_cast<float>(p.beta);
      cuda_activation_params(p.act, j.p0, j.p1);
      j.zero_c = p.k == 0 ? 1 : 0;
      begin += p.m * p.n;
      jobs.push_back(j);
      if (tenants) tenants->push_back(e.tenant);
      if (units) units->push_back(p.rows_unit);
    }
  }
  return jobs;
}

std::vector<unsigned long long> cuda_pointer_arrays(const std::vector<const gemm_entry*>& entries, const cuda_arenas& arenas) {
  const size_t n = entries.size();
  std::vector<unsigned long long> arr(kGemmPointerArrays * n);
  for (size_t i = 0; i < n; i++) {
    const gemm_entry& e = *entries[i];
    arr[i] = arenas.at(e.b);
    arr[n + i] = arenas.at(e.a);
    arr[2 * n + i] = arenas.at(e.c);
    arr[3 * n + i] = e.has_bias ? arenas.at(e.bias) : 0ULL;
    arr[4 * n + i] = e.has_residual ? arenas.at(e.residual) : 0ULL;
  }
  return arr;
}

} // namespace loom
