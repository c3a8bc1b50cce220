// squeeze_excite on the CPU: per (segment, image), the channel means, the hidden layer, the gates, and the
// channels scaled by their gates (FORMAT.md "squeeze_excite"). f32 data, f64 accumulation.
#include <vector>

#include "backend_cpu.h"

namespace loom {

void cpu_squeeze_excite(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  struct task {
    const segment* s;
    int64_t image;
  };
  std::vector<task> tasks;
  for (const auto& s : l.segments) {
    if (!tenant_active(active, s.tenant)) continue;
    for (int64_t i = 0; i < s.dims[0]; i++) tasks.push_back({&s, i});
  }
  ctx.pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t t) {
    const segment& s = *tasks[static_cast<size_t>(t)].s;
    const int64_t c = s.dims[1], sp = s.dims[2], h = s.dims[3], image = tasks[static_cast<size_t>(t)].image;
    auto f32 = [&](size_t i) { return reinterpret_cast<const float*>(ctx.at(s.inputs[i].r)); };
    const float *x = f32(0) + image * c * sp, *w1 = f32(1), *b1 = f32(2), *w2 = f32(3), *b2 = f32(4);
    float* y = reinterpret_cast<float*>(ctx.at(s.out)) + image * c * sp;
    std::vector<double> mean(static_cast<size_t>(c)), hidden(static_cast<size_t>(h));
    for (int64_t ch = 0; ch < c; ch++) {
      double sum = 0;
      for (int64_t i = 0; i < sp; i++) sum += x[ch * sp + i];
      mean[static_cast<size_t>(ch)] = sum / static_cast<double>(sp);
    }
    for (int64_t j = 0; j < h; j++) {
      double v = b1[j];
      for (int64_t ch = 0; ch < c; ch++) v += static_cast<double>(w1[j * c + ch]) * mean[static_cast<size_t>(ch)];
      hidden[static_cast<size_t>(j)] = cpu_activation<double>(l.op.act, v);
    }
    for (int64_t ch = 0; ch < c; ch++) {
      double v = b2[ch];
      for (int64_t j = 0; j < h; j++) v += static_cast<double>(w2[ch * h + j]) * hidden[static_cast<size_t>(j)];
      const double gate = cpu_activation<double>(l.op.act2, v);
      for (int64_t i = 0; i < sp; i++) y[ch * sp + i] = static_cast<float>(x[ch * sp + i] * gate);
    }
  });
}

} // namespace loom
