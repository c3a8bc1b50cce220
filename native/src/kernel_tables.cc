// The segment tables of a kernel launch (kernel_tables.h). Layout only: every number comes from the plan.
#include "kernel_tables.h"

#include <cstring>
#include <string>

namespace loom {

namespace {

[[noreturn]] void bad(const std::string& msg) { throw loom_error(msg); }

void put8(long long (&dst)[8], const std::vector<int64_t>& src, const char* what) {
  if (src.size() > 8) bad(std::string(what) + " has " + std::to_string(src.size()) + " entries; the segment table holds at most 8");
  for (size_t i = 0; i < 8; i++) dst[i] = i < src.size() ? static_cast<long long>(src[i]) : 0;
}

} // namespace

kernel_tables build_kernel_tables(const launch& l, const arena_addresses& arenas) {
  if (!l.grid.present) {
    bad("the plan has no kernels.grids / kernels.names entry for this kernel launch (the CUDA backend needs plan.json written by codegen)");
  }
  if (l.grid.work.size() != l.segments.size()) {
    bad("kernels.grids gives work for " + std::to_string(l.grid.work.size()) + " segments, the launch has " +
        std::to_string(l.segments.size()));
  }
  kernel_tables t;
  t.segs.resize(l.segments.size());
  for (size_t i = 0; i < l.segments.size(); i++) {
    const segment& s = l.segments[i];
    LoomSegment& g = t.segs[i];
    std::memset(&g, 0, sizeof g);
    if (l.grid.work[i] < 0) bad("negative work in kernels.grids");
    g.workBegin = t.total_work;
    g.work = l.grid.work[i];
    t.total_work += g.work;
    put8(g.shape, s.shape, "segment shape");
    put8(g.dims, s.dims, "segment dims");
    if ((l.op.kind == kernel_kind::fill || l.op.kind == kernel_kind::gather_table) && s.dims.empty()) g.dims[0] = s.count;
    if (s.has_geom) {
      const pool_geometry& p = s.geom;
      const int64_t geom[16] = {p.n,  p.c,  p.h,       p.w,        p.oh,         p.ow,        p.kh, p.kw,
                                p.sh, p.sw, p.pad_top, p.pad_left, p.pad_bottom, p.pad_right, p.dh, p.dw};
      for (int k = 0; k < 16; k++) g.geom[k] = geom[k];
    }
    if (!s.params.empty()) {
      if (l.op.kind != kernel_kind::eltwise) bad("only eltwise segments carry params");
      if (s.params.size() > elt_max_params)
        bad("segment has " + std::to_string(s.params.size()) + " params; the segment table holds at most 16");
      for (size_t k = 0; k < s.params.size(); k++) g.params[k] = s.params[k];
    }
    g.out = arenas.at(s.out);
    if (s.has_out_strides) {
      put8(g.outStrides, s.out_strides, "segment outStrides");
    } else {
      long long c = 1;
      if (s.shape.size() > 8) bad("segment shape has more than 8 dims");
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
      put8(lv.strides, v.strides, "input strides");
      t.views.push_back(lv);
    }
  }
  return t;
}

} // namespace loom
