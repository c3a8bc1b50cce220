// Pooling, im2col/col2im, strided copies, fills and gathers on the CPU. Image inputs are [n, c, h, w]
// (or a strided view of one); every (segment, image plane) is one task.
#include <limits>
#include <vector>

#include "backend_cpu.h"

namespace loom {

namespace {

struct plane_task {
  const segment* s;
  int64_t plane;
};

// Element strides (n, c, h, w) of an image view.
void image_strides(const tensor_view& v, const pool_geometry& g, int64_t out[4]) {
  if (v.strides.size() == 4) {
    for (int i = 0; i < 4; i++) out[i] = v.strides[static_cast<size_t>(i)];
  } else if (v.strides.size() == 3) {
    out[0] = 0;
    for (int i = 0; i < 3; i++) out[i + 1] = v.strides[static_cast<size_t>(i)];
  } else {
    out[3] = 1;
    out[2] = g.w;
    out[1] = g.h * g.w;
    out[0] = g.c * g.h * g.w;
  }
}

template <typename F>
void for_planes(cpu_ctx& ctx, const launch& l, const tenant_mask& active, F fn) {
  std::vector<plane_task> tasks;
  for (const auto& s : l.segments) {
    if (!tenant_active(active, s.tenant)) continue;
    for (int64_t p = 0; p < s.geom.n * s.geom.c; p++) tasks.push_back({&s, p});
  }
  ctx.pool.parallel_for(static_cast<int64_t>(tasks.size()),
                        [&](int64_t i) { fn(*tasks[static_cast<size_t>(i)].s, tasks[static_cast<size_t>(i)].plane); });
}

// Linear element walk over `shape` with two stride sets (copy); calls fn(src_off, dst_off) per element.
template <typename F>
void walk2(const std::vector<int64_t>& shape, const int64_t* sa, const int64_t* sb, int64_t start, int64_t len, F fn) {
  const size_t rank = shape.size();
  if (rank == 0) {
    if (len > 0) fn(0, 0);
    return;
  }
  int64_t idx[16], rem = start, oa = 0, ob = 0;
  for (size_t d = rank; d-- > 0;) {
    idx[d] = rem % shape[d];
    rem /= shape[d];
    oa += idx[d] * sa[d];
    ob += idx[d] * sb[d];
  }
  for (int64_t t = 0; t < len; t++) {
    fn(oa, ob);
    for (size_t d = rank; d-- > 0;) {
      idx[d]++;
      oa += sa[d];
      ob += sb[d];
      if (idx[d] < shape[d] || d == 0) break;
      oa -= idx[d] * sa[d];
      ob -= idx[d] * sb[d];
      idx[d] = 0;
    }
  }
}

template <typename E>
void copy_elems(const uint8_t* src, uint8_t* dst, const std::vector<int64_t>& shape, const int64_t* ss, const int64_t* ds, int64_t start,
                int64_t len) {
  walk2(shape, ss, ds, start, len, [&](int64_t a, int64_t b) {
    std::memcpy(dst + b * static_cast<int64_t>(sizeof(E)), src + a * static_cast<int64_t>(sizeof(E)), sizeof(E));
  });
}

} // namespace

void cpu_pool(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  const bool is_max = l.op.pool_max, include_pad = l.op.count_include_pad;
  for_planes(ctx, l, active, [&](const segment& s, int64_t plane) {
    const pool_geometry& g = s.geom;
    const tensor_view& v = s.inputs[0];
    int64_t st[4];
    image_strides(v, g, st);
    const int64_t n = plane / g.c, c = plane % g.c, es = static_cast<int64_t>(dtype_size(v.dt));
    const uint8_t* in = ctx.at(v.r) + (n * st[0] + c * st[1]) * es;
    const int64_t oes = static_cast<int64_t>(dtype_size(s.out_dt));
    uint8_t* out = ctx.at(s.out) + plane * g.oh * g.ow * oes;
    for (int64_t oy = 0; oy < g.oh; oy++) {
      for (int64_t ox = 0; ox < g.ow; ox++) {
        double acc = is_max ? -std::numeric_limits<double>::infinity() : 0;
        int64_t count = 0, padded = 0;
        for (int64_t ky = 0; ky < g.kh; ky++) {
          const int64_t y = oy * g.sh - g.pad_top + ky * g.dh;
          const bool yin = y >= 0 && y < g.h, ypad = y >= -g.pad_top && y < g.h + g.pad_bottom;
          for (int64_t kx = 0; kx < g.kw; kx++) {
            const int64_t x = ox * g.sw - g.pad_left + kx * g.dw;
            if (ypad && x >= -g.pad_left && x < g.w + g.pad_right) padded++;
            if (!yin || x < 0 || x >= g.w) continue;
            const double e = cpu_load(in + (y * st[2] + x * st[3]) * es, v.dt);
            if (is_max) acc = (e > acc || std::isnan(e)) ? e : acc;
            else acc += e;
            count++;
          }
        }
        if (!is_max) {
          const int64_t div = include_pad ? padded : count;
          acc = div > 0 ? acc / static_cast<double>(div) : 0;
        }
        cpu_store(out + (oy * g.ow + ox) * oes, s.out_dt, acc);
      }
    }
  });
}

// Depthwise convolution: plane (image, channel) = bias[c] + Σ x[plane] ⋆ w[c] over the window, then the
// launch's activation; inputs [x [n,c,h,w], w [c,kh,kw], bias? [c]], all contiguous. f64 accumulation.
void cpu_depthwise(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  for_planes(ctx, l, active, [&](const segment& s, int64_t plane) {
    const pool_geometry& g = s.geom;
    const tensor_view &xv = s.inputs[0], &wv = s.inputs[1];
    const int64_t c = plane % g.c, xes = static_cast<int64_t>(dtype_size(xv.dt)), wes = static_cast<int64_t>(dtype_size(wv.dt));
    const int64_t oes = static_cast<int64_t>(dtype_size(s.out_dt));
    const uint8_t* x = ctx.at(xv.r) + plane * g.h * g.w * xes;
    const uint8_t* k = ctx.at(wv.r) + c * g.kh * g.kw * wes;
    const double bias =
        s.inputs.size() > 2 ? cpu_load(ctx.at(s.inputs[2].r) + c * static_cast<int64_t>(dtype_size(s.inputs[2].dt)), s.inputs[2].dt) : 0;
    uint8_t* out = ctx.at(s.out) + plane * g.oh * g.ow * oes;
    for (int64_t oy = 0; oy < g.oh; oy++) {
      for (int64_t ox = 0; ox < g.ow; ox++) {
        double acc = bias;
        for (int64_t ky = 0; ky < g.kh; ky++) {
          const int64_t y = oy * g.sh - g.pad_top + ky * g.dh;
          if (y < 0 || y >= g.h) continue;
          for (int64_t kx = 0; kx < g.kw; kx++) {
            const int64_t xx = ox * g.sw - g.pad_left + kx * g.dw;
            if (xx < 0 || xx >= g.w) continue;
            acc += cpu_load(x + (y * g.w + xx) * xes, xv.dt) * cpu_load(k + (ky * g.kw + kx) * wes, wv.dt);
          }
        }
        cpu_store(out + (oy * g.ow + ox) * oes, s.out_dt, cpu_activation<double>(l.op.act, acc));
      }
    }
  });
}

void cpu_im2col(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  for_planes(ctx, l, active, [&](const segment& s, int64_t plane) {
    const pool_geometry& g = s.geom;
    const tensor_view& v = s.inputs[0];
    int64_t st[4];
    image_strides(v, g, st);
    const int64_t n = plane / g.c, c = plane % g.c, es = static_cast<int64_t>(dtype_size(v.dt));
    const uint8_t* in = ctx.at(v.r) + (n * st[0] + c * st[1]) * es;
    const int64_t oes = static_cast<int64_t>(dtype_size(s.out_dt)), cols = g.oh * g.ow;
    const int64_t rows = g.c * g.kh * g.kw + (l.op.ones ? 1 : 0); // an image's rows: with ones, one more after the last channel's
    // rows (c, ky, kx) of image n: out[n][(c*kh + ky)*kw + kx][oy*ow + ox]
    uint8_t* out = ctx.at(s.out) + (n * rows + c * g.kh * g.kw) * cols * oes;
    if (l.op.ones && c == g.c - 1) {
      uint8_t* one = ctx.at(s.out) + (n * rows + g.c * g.kh * g.kw) * cols * oes;
      for (int64_t i = 0; i < cols; i++) cpu_store(one + i * oes, s.out_dt, 1.0);
    }
    const bool f32 = v.dt == dtype::f32 && s.out_dt == dtype::f32 && st[3] == 1;
    for (int64_t ky = 0; ky < g.kh; ky++) {
      for (int64_t kx = 0; kx < g.kw; kx++) {
        uint8_t* row = out + (ky * g.kw + kx) * cols * oes;
        for (int64_t oy = 0; oy < g.oh; oy++) {
          const int64_t y = oy * g.sh - g.pad_top + ky * g.dh;
          for (int64_t ox = 0; ox < g.ow; ox++) {
            const int64_t x = ox * g.sw - g.pad_left + kx * g.dw;
            const bool inside = y >= 0 && y < g.h && x >= 0 && x < g.w;
            if (f32) {
              float e = inside ? reinterpret_cast<const float*>(in)[y * st[2] + x] : 0.0f;
              reinterpret_cast<float*>(row)[oy * g.ow + ox] = e;
            } else {
              cpu_store(row + (oy * g.ow + ox) * oes, s.out_dt, inside ? cpu_load(in + (y * st[2] + x * st[3]) * es, v.dt) : 0.0);
            }
          }
        }
      }
    }
  });
}

void cpu_col2im(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  for_planes(ctx, l, active, [&](const segment& s, int64_t plane) {
    const pool_geometry& g = s.geom;
    const tensor_view& cv = s.inputs[0];
    const int64_t n = plane / g.c, c = plane % g.c, es = static_cast<int64_t>(dtype_size(cv.dt)), hw = g.h * g.w;
    const uint8_t* cols = ctx.at(cv.r) + (n * g.c * g.kh * g.kw + c * g.kh * g.kw) * hw * es;
    const double bias =
        s.inputs.size() > 1 ? cpu_load(ctx.at(s.inputs[1].r) + c * static_cast<int64_t>(dtype_size(s.inputs[1].dt)), s.inputs[1].dt) : 0.0;
    const int64_t oes = static_cast<int64_t>(dtype_size(s.out_dt));
    uint8_t* out = ctx.at(s.out) + plane * g.oh * g.ow * oes;
    for (int64_t y = 0; y < g.oh; y++) {
      for (int64_t x = 0; x < g.ow; x++) {
        double acc = bias;
        for (int64_t ky = 0; ky < g.kh; ky++) {
          const int64_t ty = y + g.pad_top - ky * g.dh;
          if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.h) continue;
          const int64_t iy = ty / g.sh;
          for (int64_t kx = 0; kx < g.kw; kx++) {
            const int64_t tx = x + g.pad_left - kx * g.dw;
            if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.w) continue;
            const int64_t ix = tx / g.sw;
            acc += cpu_load(cols + ((ky * g.kw + kx) * hw + iy * g.w + ix) * es, cv.dt);
          }
        }
        cpu_store(out + (y * g.ow + x) * oes, s.out_dt, acc);
      }
    }
  });
}

void cpu_copy(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  struct task {
    const segment* s;
    int64_t start, len;
  };
  std::vector<task> tasks;
  for (const auto& s : l.segments) {
    if (!tenant_active(active, s.tenant)) continue;
    if (s.shape.size() > 16) throw loom_error("copy rank above 16");
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    for (int64_t st = 0; st < n; st += cpu_block_elems) tasks.push_back({&s, st, std::min(cpu_block_elems, n - st)});
  }
  ctx.pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
    const task& t = tasks[static_cast<size_t>(i)];
    const segment& s = *t.s;
    const tensor_view& v = s.inputs[0];
    std::vector<int64_t> ds = s.out_strides;
    if (!s.has_out_strides) {
      ds.assign(s.shape.size(), 1);
      for (size_t d = s.shape.size(); d-- > 1;) ds[d - 1] = ds[d] * s.shape[d];
    }
    const uint8_t* src = ctx.at(v.r);
    uint8_t* dst = ctx.at(s.out);
    if (v.dt != s.out_dt) {
      const int64_t ses = static_cast<int64_t>(dtype_size(v.dt)), des = static_cast<int64_t>(dtype_size(s.out_dt));
      walk2(s.shape, v.strides.data(), ds.data(), t.start, t.len,
            [&](int64_t a, int64_t b) { cpu_store(dst + b * des, s.out_dt, cpu_load(src + a * ses, v.dt)); });
      return;
    }
    switch (dtype_size(v.dt)) {
      case 1: copy_elems<uint8_t>(src, dst, s.shape, v.strides.data(), ds.data(), t.start, t.len); break;
      case 2: copy_elems<uint16_t>(src, dst, s.shape, v.strides.data(), ds.data(), t.start, t.len); break;
      case 4: copy_elems<uint32_t>(src, dst, s.shape, v.strides.data(), ds.data(), t.start, t.len); break;
      default: copy_elems<uint64_t>(src, dst, s.shape, v.strides.data(), ds.data(), t.start, t.len); break;
    }
  });
}

void cpu_fill(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  const double value = l.op.value;
  std::vector<const segment*> segs;
  for (const auto& s : l.segments)
    if (tenant_active(active, s.tenant)) segs.push_back(&s);
  ctx.pool.parallel_for(static_cast<int64_t>(segs.size()), [&](int64_t i) {
    const segment& s = *segs[static_cast<size_t>(i)];
    const int64_t es = static_cast<int64_t>(dtype_size(s.out_dt));
    uint8_t one[8];
    cpu_store(one, s.out_dt, value);
    uint8_t* out = ctx.at(s.out);
    for (int64_t e = 0; e < s.count; e++) std::memcpy(out + e * es, one, static_cast<size_t>(es));
  });
}

void cpu_gather(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  std::vector<const segment*> segs;
  for (const auto& s : l.segments)
    if (tenant_active(active, s.tenant)) segs.push_back(&s);
  ctx.pool.parallel_for(static_cast<int64_t>(segs.size()), [&](int64_t i) {
    const segment& s = *segs[static_cast<size_t>(i)];
    const int64_t outer = s.dims[0], axis = s.dims[1], inner = s.dims[2], n_idx = s.dims[3];
    const tensor_view& data = s.inputs[0];
    const tensor_view& iv = s.inputs[1];
    const int64_t es = static_cast<int64_t>(dtype_size(data.dt)), row = inner * es;
    const uint8_t* src = ctx.at(data.r);
    const uint8_t* idx = ctx.at(iv.r);
    uint8_t* out = ctx.at(s.out);
    for (int64_t j = 0; j < n_idx; j++) {
      int64_t k;
      if (iv.dt == dtype::i64) std::memcpy(&k, idx + j * 8, 8);
      else {
        int32_t k32;
        std::memcpy(&k32, idx + j * 4, 4);
        k = k32;
      }
      if (k < -axis || k >= axis) {
        throw tenant_error(s.tenant, "gather index " + std::to_string(k) + " (position " + std::to_string(j) +
                                         ") is out of range for an axis of length " + std::to_string(axis));
      }
      if (k < 0) k += axis;
      for (int64_t o = 0; o < outer; o++) std::memcpy(out + (o * n_idx + j) * row, src + (o * axis + k) * row, static_cast<size_t>(row));
    }
  });
}

void cpu_gather_table(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  std::vector<const segment*> segs;
  for (const auto& s : l.segments)
    if (tenant_active(active, s.tenant)) segs.push_back(&s);
  ctx.pool.parallel_for(static_cast<int64_t>(segs.size()), [&](int64_t i) {
    const segment& s = *segs[static_cast<size_t>(i)];
    const tensor_view& data = s.inputs[0];
    const int64_t es = static_cast<int64_t>(dtype_size(data.dt));
    const int64_t room = (ctx.arena_size(data.r.arena) - data.r.offset) / es; // elements readable from data
    const uint8_t* src = ctx.at(data.r);
    const uint8_t* table = ctx.at(s.inputs[1].r);
    uint8_t* out = ctx.at(s.out);
    for (int64_t e = 0; e < s.count; e++) {
      int32_t k;
      std::memcpy(&k, table + e * 4, 4);
      if (k == -1) {
        std::memset(out + e * es, 0, static_cast<size_t>(es));
        continue;
      }
      if (k < 0 || k >= room)
        throw tenant_error(s.tenant, "gather_table entry " + std::to_string(e) + " = " + std::to_string(k) + " reads outside its arena");
      std::memcpy(out + e * es, src + static_cast<int64_t>(k) * es, static_cast<size_t>(es));
    }
  });
}

} // namespace loom
