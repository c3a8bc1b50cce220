// Reductions, softmax and normalizations on the CPU, accumulated in double. Views are [outer, axis, inner]
// (reduce/softmax), [rows, cols] (layernorm) or [n, groups, channelsPerGroup, spatial] (groupnorm).
#include <limits>
#include <vector>

#include "backend_cpu.h"

namespace loom {

namespace {

// Element strides of a view over `dims`: the view's own, or contiguous.
std::vector<int64_t> view_strides(const tensor_view& v, const std::vector<int64_t>& dims) {
  if (!v.strides.empty()) return v.strides;
  std::vector<int64_t> s(dims.size());
  int64_t acc = 1;
  for (size_t i = dims.size(); i-- > 0;) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

struct row_task {
  const segment* s;
  int64_t row;
};

template <typename F>
void for_rows(cpu_ctx& ctx, const launch& l, const tenant_mask& active, int64_t (*rows_of)(const segment&),
              int64_t (*cost_of)(const segment&), F fn) {
  std::vector<row_task> tasks;
  for (const auto& s : l.segments) {
    if (!tenant_active(active, s.tenant)) continue;
    int64_t rows = rows_of(s), per = std::max<int64_t>(1, cpu_block_elems / std::max<int64_t>(1, cost_of(s)));
    for (int64_t r = 0; r < rows; r += per) tasks.push_back({&s, r});
  }
  ctx.pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
    const row_task& t = tasks[static_cast<size_t>(i)];
    int64_t rows = rows_of(*t.s), per = std::max<int64_t>(1, cpu_block_elems / std::max<int64_t>(1, cost_of(*t.s)));
    for (int64_t r = t.row; r < std::min(rows, t.row + per); r++) fn(*t.s, r);
  });
}

int64_t outer_inner(const segment& s) { return s.dims[0] * s.dims[2]; }
int64_t axis_len(const segment& s) { return s.dims[1]; }

} // namespace

void cpu_reduce(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  const reduce_kind kind = l.op.reduce;
  const bool last = l.op.select_last;
  for_rows(ctx, l, active, outer_inner, axis_len, [&](const segment& s, int64_t r) {
    const tensor_view& v = s.inputs[0];
    const auto st = view_strides(v, s.dims);
    const int64_t inner = s.dims[2], axis = s.dims[1], o = r / inner, i = r % inner;
    const int64_t es = static_cast<int64_t>(dtype_size(v.dt));
    thread_local std::vector<double> x;
    x.resize(static_cast<size_t>(axis));
    cpu_load_run(ctx.at(v.r) + (o * st[0] + i * st[2]) * es, v.dt, st[1], axis, x.data());
    double acc = 0;
    switch (kind) {
      case reduce_kind::sum:
      case reduce_kind::mean:
      case reduce_kind::logsum:
        for (double e : x) acc += e;
        if (kind == reduce_kind::mean) acc /= static_cast<double>(axis);
        if (kind == reduce_kind::logsum) acc = std::log(acc);
        break;
      case reduce_kind::max:
      case reduce_kind::min: {
        acc = kind == reduce_kind::max ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
        for (double e : x) {
          if (std::isnan(e)) {
            acc = e;
            break;
          }
          acc = kind == reduce_kind::max ? std::max(acc, e) : std::min(acc, e);
        }
        break;
      }
      case reduce_kind::prod:
        acc = 1;
        for (double e : x) acc *= e;
        break;
      case reduce_kind::l1:
        for (double e : x) acc += std::abs(e);
        break;
      case reduce_kind::l2:
        for (double e : x) acc += e * e;
        acc = std::sqrt(acc);
        break;
      case reduce_kind::sumsq:
        for (double e : x) acc += e * e;
        break;
      case reduce_kind::logsumexp: {
        double m = -std::numeric_limits<double>::infinity();
        for (double e : x) m = std::max(m, e);
        if (std::isinf(m)) {
          acc = m;
          break;
        }
        for (double e : x) acc += std::exp(e - m);
        acc = m + std::log(acc);
        break;
      }
      case reduce_kind::argmax:
      case reduce_kind::argmin: {
        int64_t best = 0;
        for (int64_t a = 1; a < axis; a++) {
          const double e = x[static_cast<size_t>(a)], b = x[static_cast<size_t>(best)];
          const bool better = kind == reduce_kind::argmax ? (last ? e >= b : e > b) : (last ? e <= b : e < b);
          if (better) best = a;
        }
        acc = static_cast<double>(best);
        break;
      }
    }
    cpu_store(ctx.at(s.out) + r * static_cast<int64_t>(dtype_size(s.out_dt)), s.out_dt, acc);
  });
}

void cpu_softmax(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  const bool log = l.op.log;
  for_rows(ctx, l, active, outer_inner, axis_len, [&](const segment& s, int64_t r) {
    const tensor_view& v = s.inputs[0];
    const auto st = view_strides(v, s.dims);
    const int64_t inner = s.dims[2], axis = s.dims[1], o = r / inner, i = r % inner;
    thread_local std::vector<double> x;
    x.resize(static_cast<size_t>(axis));
    cpu_load_run(ctx.at(v.r) + (o * st[0] + i * st[2]) * static_cast<int64_t>(dtype_size(v.dt)), v.dt, st[1], axis, x.data());
    double m = -std::numeric_limits<double>::infinity(), sum = 0;
    for (double e : x) m = std::max(m, e);
    for (double& e : x) {
      e = std::exp(e - m);
      sum += e;
    }
    const double lsum = std::log(sum);
    const int64_t oes = static_cast<int64_t>(dtype_size(s.out_dt));
    uint8_t* out = ctx.at(s.out);
    for (int64_t a = 0; a < axis; a++) {
      const double e = x[static_cast<size_t>(a)];
      const double y = log ? std::log(e) - lsum : e / sum;
      cpu_store(out + ((o * axis + a) * inner + i) * oes, s.out_dt, y);
    }
  });
}

void cpu_layernorm(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  const double eps = l.op.epsilon;
  for_rows(
      ctx, l, active, [](const segment& s) { return s.dims[0]; }, [](const segment& s) { return s.dims[1]; },
      [&](const segment& s, int64_t r) {
        const tensor_view& v = s.inputs[0];
        const auto st = view_strides(v, s.dims);
        const int64_t cols = s.dims[1];
        thread_local std::vector<double> x, sc, bi;
        x.resize(static_cast<size_t>(cols));
        cpu_load_run(ctx.at(v.r) + r * st[0] * static_cast<int64_t>(dtype_size(v.dt)), v.dt, st[1], cols, x.data());
        double mean = 0, var = 0;
        for (double e : x) mean += e;
        mean /= static_cast<double>(cols);
        for (double e : x) var += (e - mean) * (e - mean);
        var /= static_cast<double>(cols);
        const double inv = 1.0 / std::sqrt(var + eps);
        const bool has_scale = s.inputs.size() > 1, has_bias = s.inputs.size() > 2;
        if (has_scale) {
          sc.resize(static_cast<size_t>(cols));
          cpu_load_run(ctx.at(s.inputs[1].r), s.inputs[1].dt, 1, cols, sc.data());
        }
        if (has_bias) {
          bi.resize(static_cast<size_t>(cols));
          cpu_load_run(ctx.at(s.inputs[2].r), s.inputs[2].dt, 1, cols, bi.data());
        }
        for (int64_t c = 0; c < cols; c++) {
          double y = (x[static_cast<size_t>(c)] - mean) * inv;
          if (has_scale) y *= sc[static_cast<size_t>(c)];
          if (has_bias) y += bi[static_cast<size_t>(c)];
          x[static_cast<size_t>(c)] = y;
        }
        cpu_store_run(ctx.at(s.out) + r * cols * static_cast<int64_t>(dtype_size(s.out_dt)), s.out_dt, cols, x.data());
      });
}

void cpu_groupnorm(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  const double eps = l.op.epsilon;
  for_rows(
      ctx, l, active, [](const segment& s) { return s.dims[0] * s.dims[1]; }, [](const segment& s) { return s.dims[2] * s.dims[3]; },
      [&](const segment& s, int64_t r) {
        const int64_t groups = s.dims[1], cpg = s.dims[2], spatial = s.dims[3], len = cpg * spatial, g = r % groups;
        const tensor_view& v = s.inputs[0];
        thread_local std::vector<double> x;
        x.resize(static_cast<size_t>(len));
        cpu_load_run(ctx.at(v.r) + r * len * static_cast<int64_t>(dtype_size(v.dt)), v.dt, 1, len, x.data());
        double mean = 0, var = 0;
        for (double e : x) mean += e;
        mean /= static_cast<double>(len);
        for (double e : x) var += (e - mean) * (e - mean);
        var /= static_cast<double>(len);
        const double inv = 1.0 / std::sqrt(var + eps);
        const tensor_view& sv = s.inputs[1];
        const tensor_view& bv = s.inputs[2];
        for (int64_t c = 0; c < cpg; c++) {
          const int64_t ch = g * cpg + c;
          const double scale = cpu_load(ctx.at(sv.r) + ch * static_cast<int64_t>(dtype_size(sv.dt)), sv.dt);
          const double bias = cpu_load(ctx.at(bv.r) + ch * static_cast<int64_t>(dtype_size(bv.dt)), bv.dt);
          for (int64_t p = 0; p < spatial; p++) {
            double& e = x[static_cast<size_t>(c * spatial + p)];
            e = (e - mean) * inv * scale + bias;
          }
        }
        cpu_store_run(ctx.at(s.out) + r * len * static_cast<int64_t>(dtype_size(s.out_dt)), s.out_dt, len, x.data());
      });
}

} // namespace loom
