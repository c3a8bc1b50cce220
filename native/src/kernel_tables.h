// The segment tables the generated kernels read (codegen/FORMAT.md "Segment tables"): one LoomSegment per
// segment of a kernel launch and one LoomView per input, built from the plan once at load. Layout only, no
// device code: the CUDA backend uploads them, the cuda-emu backend hands them to the host-compiled kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "plan.h"

namespace loom {

// ---- the segment-table ABI of codegen/FORMAT.md ("Segment tables"), byte for byte ----
struct LoomView {
  unsigned long long ptr;
  long long strides[8];
};
struct LoomSegment {
  long long workBegin;
  long long work;
  long long shape[8];
  long long dims[8];
  union {
    long long geom[16]; // pool, im2col, col2im
    double params[16];  // eltwise: segment::params
  };
  unsigned long long out;
  long long outStrides[8];
  int rank;
  int nInputs;
  long long firstView;
};
static_assert(sizeof(LoomView) == 72, "LoomView layout (codegen/FORMAT.md)");
static_assert(sizeof(LoomSegment) == 360, "LoomSegment layout (codegen/FORMAT.md)");
static_assert(pool_geometry_field_count == 16, "LoomSegment::geom holds one entry per POOL_GEOMETRY_FIELDS name");
static_assert(elt_max_params == 16, "LoomSegment::params holds ELT_MAX_PARAMS values");
static_assert(offsetof(LoomSegment, params) == 144 && offsetof(LoomSegment, out) == 272, "LoomSegment: params share geom's bytes");

// Addresses of the three arenas where a backend keeps them (device or host): ref → address.
struct arena_addresses {
  unsigned long long base[3] = {0, 0, 0};
  unsigned long long at(ref r) const { return base[static_cast<int>(r.arena)] + static_cast<unsigned long long>(r.offset); }
};

// One kernel launch's tables (host side, before any upload): built from the plan's segments and grid.
struct kernel_tables {
  std::vector<LoomSegment> segs;
  std::vector<LoomView> views;
  long long total_work = 0;
};

// The LoomSegment / LoomView arrays of one kernel launch. Throws loom_error (the caller names the launch) on a
// launch without its kernels.grids entry or a segment the fixed-size ABI cannot hold.
kernel_tables build_kernel_tables(const launch& l, const arena_addresses& arenas);

} // namespace loom
