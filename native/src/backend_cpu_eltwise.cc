// The eltwise program interpreter: each segment is cut into chunks; a chunk's inputs are loaded (through
// their strides, 0 = broadcast) into buffers and every instruction runs over the whole chunk, so the loops
// vectorize and the per-element cost of interpretation stays small.
#include <vector>

#include "backend_cpu.h"

namespace loom {

namespace {

constexpr int64_t CH = 512;

// Walks a view in row-major order of `shape` from linear index `start`, loading `len` elements.
template <typename T>
void load_view(const uint8_t* base, dtype dt, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, int64_t start,
               int64_t len, T* dst) {
  const size_t rank = shape.size();
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  if (rank == 0) {
    for (int64_t t = 0; t < len; t++) dst[t] = static_cast<T>(cpu_load(base, dt));
    return;
  }
  int64_t idx[16];
  int64_t rem = start, off = 0;
  for (size_t d = rank; d-- > 0;) {
    idx[d] = rem % shape[d];
    rem /= shape[d];
    off += idx[d] * strides[d];
  }
  const int64_t last = shape[rank - 1], st = strides[rank - 1];
  int64_t t = 0;
  while (t < len) {
    int64_t run = std::min(len - t, last - idx[rank - 1]);
    if (st == 0) {
      T v = static_cast<T>(cpu_load(base + off * es, dt));
      for (int64_t j = 0; j < run; j++) dst[t + j] = v;
    } else if constexpr (std::is_same_v<T, float>) {
      cpu_load_run_f(base + off * es, dt, st, run, dst + t);
    } else {
      cpu_load_run(base + off * es, dt, st, run, dst + t);
    }
    t += run;
    off += run * st;
    idx[rank - 1] += run;
    for (size_t d = rank - 1; d > 0 && idx[d] == shape[d]; d--) {
      off -= idx[d] * strides[d];
      idx[d] = 0;
      idx[d - 1]++;
      off += strides[d - 1];
    }
  }
}

template <typename T>
inline T nan_max(T a, T b) {
  return (a != a || b != b) ? (a + b) : (a > b ? a : b);
}
template <typename T>
inline T nan_min(T a, T b) {
  return (a != a || b != b) ? (a + b) : (a < b ? a : b);
}

template <typename T>
void unary(elt_op op, T* x, int64_t n) {
  switch (op) {
    case elt_op::neg:
      for (int64_t i = 0; i < n; i++) x[i] = -x[i];
      return;
    case elt_op::abs:
      for (int64_t i = 0; i < n; i++) x[i] = std::abs(x[i]);
      return;
    case elt_op::recip:
      for (int64_t i = 0; i < n; i++) x[i] = T(1) / x[i];
      return;
    case elt_op::sqrt:
      for (int64_t i = 0; i < n; i++) x[i] = std::sqrt(x[i]);
      return;
    case elt_op::exp:
      for (int64_t i = 0; i < n; i++) x[i] = std::exp(x[i]);
      return;
    case elt_op::log:
      for (int64_t i = 0; i < n; i++) x[i] = std::log(x[i]);
      return;
    case elt_op::erf:
      for (int64_t i = 0; i < n; i++) x[i] = std::erf(x[i]);
      return;
    case elt_op::tanh:
      for (int64_t i = 0; i < n; i++) x[i] = std::tanh(x[i]);
      return;
    case elt_op::sigmoid:
      for (int64_t i = 0; i < n; i++) x[i] = T(1) / (T(1) + std::exp(-x[i]));
      return;
    case elt_op::relu:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] > T(0) ? x[i] : (x[i] != x[i] ? x[i] : T(0));
      return;
    case elt_op::floor:
      for (int64_t i = 0; i < n; i++) x[i] = std::floor(x[i]);
      return;
    case elt_op::ceil:
      for (int64_t i = 0; i < n; i++) x[i] = std::ceil(x[i]);
      return;
    case elt_op::round:
      for (int64_t i = 0; i < n; i++) x[i] = std::nearbyint(x[i]);
      return; // half to even
    case elt_op::sin:
      for (int64_t i = 0; i < n; i++) x[i] = std::sin(x[i]);
      return;
    case elt_op::cos:
      for (int64_t i = 0; i < n; i++) x[i] = std::cos(x[i]);
      return;
    case elt_op::logical_not:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] == T(0) ? T(1) : T(0);
      return;
    case elt_op::sign:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] > T(0) ? T(1) : x[i] < T(0) ? T(-1) : x[i];
      return;
    case elt_op::softplus:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] > T(0) ? x[i] + std::log1p(std::exp(-x[i])) : std::log1p(std::exp(x[i]));
      return;
    case elt_op::softsign:
      for (int64_t i = 0; i < n; i++) x[i] = x[i] / (T(1) + std::abs(x[i]));
      return;
    case elt_op::isnan:
      for (int64_t i = 0; i < n; i++) x[i] = std::isnan(x[i]) ? T(1) : T(0);
      return;
    case elt_op::isinf:
      for (int64_t i = 0; i < n; i++) x[i] = std::isinf(x[i]) ? T(1) : T(0);
      return;
    case elt_op::trunc:
      for (int64_t i = 0; i < n; i++) x[i] = std::trunc(x[i]);
      return;
    default: throw loom_error("not a unary eltwise instruction");
  }
}

// a = a op b
template <typename T>
void binary(elt_op op, T* a, const T* b, int64_t n) {
  switch (op) {
    case elt_op::add:
      for (int64_t i = 0; i < n; i++) a[i] += b[i];
      return;
    case elt_op::sub:
      for (int64_t i = 0; i < n; i++) a[i] -= b[i];
      return;
    case elt_op::mul:
      for (int64_t i = 0; i < n; i++) a[i] *= b[i];
      return;
    case elt_op::div:
      for (int64_t i = 0; i < n; i++) a[i] /= b[i];
      return;
    case elt_op::idiv:
      for (int64_t i = 0; i < n; i++) a[i] = std::trunc(a[i] / b[i]);
      return;
    case elt_op::pow:
      for (int64_t i = 0; i < n; i++) a[i] = std::pow(a[i], b[i]);
      return;
    case elt_op::max:
      for (int64_t i = 0; i < n; i++) a[i] = nan_max(a[i], b[i]);
      return;
    case elt_op::min:
      for (int64_t i = 0; i < n; i++) a[i] = nan_min(a[i], b[i]);
      return;
    case elt_op::mod: // sign of the divisor (ONNX Mod, fmod = 0)
      for (int64_t i = 0; i < n; i++) {
        T r = std::fmod(a[i], b[i]);
        if (r != T(0) && ((r < T(0)) != (b[i] < T(0)))) r += b[i];
        a[i] = r;
      }
      return;
    case elt_op::fmod:
      for (int64_t i = 0; i < n; i++) a[i] = std::fmod(a[i], b[i]);
      return;
    case elt_op::eq:
      for (int64_t i = 0; i < n; i++) a[i] = a[i] == b[i] ? T(1) : T(0);
      return;
    case elt_op::lt:
      for (int64_t i = 0; i < n; i++) a[i] = a[i] < b[i] ? T(1) : T(0);
      return;
    case elt_op::gt:
      for (int64_t i = 0; i < n; i++) a[i] = a[i] > b[i] ? T(1) : T(0);
      return;
    case elt_op::le:
      for (int64_t i = 0; i < n; i++) a[i] = a[i] <= b[i] ? T(1) : T(0);
      return;
    case elt_op::ge:
      for (int64_t i = 0; i < n; i++) a[i] = a[i] >= b[i] ? T(1) : T(0);
      return;
    case elt_op::logical_and:
      for (int64_t i = 0; i < n; i++) a[i] = (a[i] != T(0) && b[i] != T(0)) ? T(1) : T(0);
      return;
    case elt_op::logical_or:
      for (int64_t i = 0; i < n; i++) a[i] = (a[i] != T(0) || b[i] != T(0)) ? T(1) : T(0);
      return;
    case elt_op::logical_xor:
      for (int64_t i = 0; i < n; i++) a[i] = ((a[i] != T(0)) != (b[i] != T(0))) ? T(1) : T(0);
      return;
    default: throw loom_error("not a binary eltwise instruction");
  }
}

bool is_unary(elt_op op) { return op >= elt_op::neg && op <= elt_op::trunc; }

template <typename T>
void run_chunk(const launch& l, cpu_ctx& ctx, const segment& s, int64_t start, int64_t len) {
  const auto& prog = l.op.program;
  thread_local std::vector<T> stack_buf, in_buf;
  const size_t depth = static_cast<size_t>(l.op.stack_depth), n_in = s.inputs.size();
  if (stack_buf.size() < depth * CH) stack_buf.resize(depth * CH);
  if (in_buf.size() < n_in * CH) in_buf.resize(n_in * CH);
  T* stack = stack_buf.data();
  T* ins = in_buf.data();
  uint64_t loaded = 0; // inputs loaded for this chunk (first 64; later ones reload)
  int sp = 0;
  for (const auto& ins_op : prog) {
    switch (ins_op.op) {
      case elt_op::in: {
        const int i = ins_op.input;
        T* buf = ins + static_cast<int64_t>(i) * CH;
        if (i >= 64 || !(loaded >> i & 1)) {
          const tensor_view& v = s.inputs[static_cast<size_t>(i)];
          load_view(ctx.at(v.r), v.dt, s.shape, v.strides, start, len, buf);
          if (i < 64) loaded |= uint64_t(1) << i;
        }
        std::copy(buf, buf + len, stack + static_cast<int64_t>(sp) * CH);
        sp++;
        break;
      }
      case elt_op::constant:
      case elt_op::param: {
        const double v = ins_op.op == elt_op::constant ? ins_op.value : s.params[static_cast<size_t>(ins_op.param)];
        T* top = stack + static_cast<int64_t>(sp) * CH;
        for (int64_t j = 0; j < len; j++) top[j] = static_cast<T>(v);
        sp++;
        break;
      }
      case elt_op::where: {
        T* c = stack + static_cast<int64_t>(sp - 3) * CH;
        const T* x = c + CH;
        const T* y = c + 2 * CH;
        for (int64_t j = 0; j < len; j++) c[j] = c[j] != T(0) ? x[j] : y[j];
        sp -= 2;
        break;
      }
      case elt_op::clip: {
        T* x = stack + static_cast<int64_t>(sp - 1) * CH;
        const T lo = static_cast<T>(ins_op.min), hi = static_cast<T>(ins_op.max);
        for (int64_t j = 0; j < len; j++) x[j] = x[j] < lo ? lo : (x[j] > hi ? hi : x[j]);
        break;
      }
      case elt_op::act: {
        T* x = stack + static_cast<int64_t>(sp - 1) * CH;
        for (int64_t j = 0; j < len; j++) x[j] = cpu_activation<T>(ins_op.act, x[j]);
        break;
      }
      default:
        if (is_unary(ins_op.op)) {
          unary(ins_op.op, stack + static_cast<int64_t>(sp - 1) * CH, len);
        } else {
          binary(ins_op.op, stack + static_cast<int64_t>(sp - 2) * CH, stack + static_cast<int64_t>(sp - 1) * CH, len);
          sp--;
        }
    }
  }
  uint8_t* out = ctx.at(s.out) + start * static_cast<int64_t>(dtype_size(s.out_dt));
  if constexpr (std::is_same_v<T, float>) cpu_store_run_f(out, s.out_dt, len, stack);
  else cpu_store_run(out, s.out_dt, len, stack);
}

} // namespace

void cpu_eltwise(cpu_ctx& ctx, const launch& l, const tenant_mask& active) {
  struct task {
    const segment* s;
    int64_t start, len;
  };
  std::vector<task> tasks;
  for (const auto& s : l.segments) {
    if (!tenant_active(active, s.tenant)) continue;
    if (s.shape.size() > 16) throw loom_error("eltwise rank above 16");
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    for (int64_t st = 0; st < n; st += CH * 8) tasks.push_back({&s, st, std::min(CH * 8, n - st)});
  }
  ctx.pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
    const task& t = tasks[static_cast<size_t>(i)];
    for (int64_t st = t.start; st < t.start + t.len; st += CH) {
      const int64_t len = std::min(CH, t.start + t.len - st);
      if (l.op.compute_f32) run_chunk<float>(l, ctx, *t.s, st, len);
      else run_chunk<double>(l, ctx, *t.s, st, len);
    }
  });
}

} // namespace loom
