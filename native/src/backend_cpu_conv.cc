// conv on the CPU (FORMAT.md "conv"): per (segment, output channel), the channel's row of out accumulated one
// weight at a time over the image (k in order — taps outer, channels inner — as the generated kernel sums it),
// then bias, residual and the activation. f32 data and sums.
#include <vector>

#include "backend_cpu.h"

namespace loom {

void cpu_conv(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  struct task {
    const segment* s;
    int64_t m;
  };
  std::vector<task> tasks;
  for (const auto& s : l.segments) {
    if (!tenant_active(active, s.tenant)) continue;
    for (int64_t m = 0; m < s.dims[0]; m++) tasks.push_back({&s, m});
  }
  ctx.pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t t) {
    const segment& s = *tasks[static_cast<size_t>(t)].s;
    const int64_t m = tasks[static_cast<size_t>(t)].m;
    const pool_geometry& g = s.geom;
    const int64_t p = g.oh * g.ow, k = g.c * g.kh * g.kw;
    auto f32 = [&](size_t i) { return reinterpret_cast<const float*>(ctx.at(s.inputs[i].r)); };
    const float* x = f32(0);
    const float* w = f32(1) + m * k;
    std::vector<float> row(static_cast<size_t>(p), 0.0f);
    for (int64_t ki = 0; ki < g.kh; ki++) {
      for (int64_t kj = 0; kj < g.kw; kj++) {
        for (int64_t c = 0; c < g.c; c++) {
          const float wv = w[(ki * g.kw + kj) * g.c + c];
          for (int64_t oy = 0; oy < g.oh; oy++) {
            const int64_t iy = oy * g.sh - g.pad_top + ki * g.dh;
            if (iy < 0 || iy >= g.h) continue;
            const float* xr = x + (c * g.h + iy) * g.w;
            float* o = row.data() + oy * g.ow;
            for (int64_t ox = 0; ox < g.ow; ox++) {
              const int64_t ix = ox * g.sw - g.pad_left + kj * g.dw;
              if (ix >= 0 && ix < g.w) o[ox] += wv * xr[ix];
            }
          }
        }
      }
    }
    size_t next = 2;
    const float bias = l.op.conv_bias ? f32(next++)[m] : 0.0f;
    const float* residual = l.op.conv_residual ? f32(next) + m * p : nullptr;
    float* y = reinterpret_cast<float*>(ctx.at(s.out)) + m * p;
    for (int64_t i = 0; i < p; i++) {
      float v = row[static_cast<size_t>(i)] + bias;
      if (residual) v += residual[i];
      y[i] = cpu_activation<float>(l.op.act, v);
    }
  });
}

} // namespace loom
