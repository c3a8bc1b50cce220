// gemm and gemm_grouped on the CPU: every (entry, C tile) of every group is one task of the pool, so many
// small tenant GEMMs and a few large ones balance alike. The epilogue (alpha, bias, activation) runs on the
// tile while it is still in cache.
#include <vector>

#include "backend_cpu.h"
#include "backend_cpu_gemm.h"

namespace loom {

namespace {

using tile_fn = void (*)(const gemm_tile&);

bool cpu_has_avx2() {
#if LOOM_GEMM_AVX2 && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

tile_fn pick_tile_fn() { return cpu_has_avx2() ? backend_cpu_gemm_tile_avx2 : backend_cpu_gemm_tile_generic; }
tile_fn pick_skinny_fn() { return cpu_has_avx2() ? backend_cpu_gemm_skinny_avx2 : backend_cpu_gemm_skinny_generic; }

bool use_skinny(const gemm_problem& p) { return p.m <= gemm_skinny_m && (!p.trans_a || p.k <= gemm_pack_floats / gemm_skinny_m); }

struct tile_task {
  const gemm_problem* p;
  const gemm_entry* e;
  int64_t m0, n0;
};

// residual: the entry's [m, n] addend (leading dim ldc), null when the problem has none.
void epilogue(const gemm_problem& p, const float* bias, const float* residual, float* c, int64_t m0, int64_t mc, int64_t n0, int64_t nc) {
  const float alpha = static_cast<float>(p.alpha), beta = static_cast<float>(p.beta);
  const bool has_act = p.act.kind != activation_kind::none;
  if (alpha == 1.0f && p.bias == bias_mode::none && !residual && !has_act) return;
  for (int64_t i = m0; i < m0 + mc; i++) {
    float* row = c + i * p.ldc;
    const float* res = residual ? residual + i * p.ldc : nullptr;
    for (int64_t j = n0; j < n0 + nc; j++) {
      float v = alpha * row[j];
      switch (p.bias) {
        case bias_mode::none: break;
        case bias_mode::row: v += beta * bias[j]; break;
        case bias_mode::col: v += beta * bias[i]; break;
        case bias_mode::full: v += beta * bias[i * p.ld_bias + j]; break;
      }
      if (res) v += res[j];
      row[j] = has_act ? cpu_activation<float>(p.act, v) : v;
    }
  }
}

int64_t tile_width(const gemm_problem& p) { return use_skinny(p) && !p.trans_b ? gemm_skinny_nc : gemm_tile_nc; }

// bf16/f16 operands (FORMAT.md "gemm dtype"): the part of op(A) and op(B) one C tile reads, converted
// exactly to f32 in the same layout (transposed stays transposed), so the f32 tile kernels run unchanged.
// A: rows [m0, m0+mc) of op(A); B: columns [n0, n0+nc) of op(B).
void convert_a(const gemm_problem& p, dtype dt, const uint8_t* a, int64_t m0, int64_t mc, std::vector<float>& out, int64_t& ld) {
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  out.resize(static_cast<size_t>(std::max<int64_t>(1, mc * p.k)));
  if (!p.trans_a) {
    for (int64_t i = 0; i < mc; i++) cpu_load_run_f(a + (m0 + i) * p.lda * es, dt, 1, p.k, out.data() + i * p.k);
    ld = std::max<int64_t>(1, p.k);
  } else {
    for (int64_t q = 0; q < p.k; q++) cpu_load_run_f(a + (q * p.lda + m0) * es, dt, 1, mc, out.data() + q * mc);
    ld = std::max<int64_t>(1, mc);
  }
}

void convert_b(const gemm_problem& p, dtype dt, const uint8_t* b, int64_t n0, int64_t nc, std::vector<float>& out, int64_t& ld) {
  const int64_t es = static_cast<int64_t>(dtype_size(dt));
  out.resize(static_cast<size_t>(std::max<int64_t>(1, nc * p.k)));
  if (!p.trans_b) {
    for (int64_t q = 0; q < p.k; q++) cpu_load_run_f(b + (q * p.ldb + n0) * es, dt, 1, nc, out.data() + q * nc);
    ld = std::max<int64_t>(1, nc);
  } else {
    for (int64_t j = 0; j < nc; j++) cpu_load_run_f(b + (n0 + j) * p.ldb * es, dt, 1, p.k, out.data() + j * p.k);
    ld = std::max<int64_t>(1, p.k);
  }
}

} // namespace

void cpu_gemm(cpu_ctx& ctx, const launch& l, const tenant_mask& active, int64_t rows) {
  if (!dtype_is_gemm_operand(l.dt))
    throw loom_error(std::string("gemm operands must be ") + gemm_dtype_expected() + ", got " + dtype_name(l.dt));
  const bool half = l.dt != dtype::f32;
  static const tile_fn tile = pick_tile_fn();
  static const tile_fn skinny = pick_skinny_fn();
  std::vector<tile_task> tasks;
  // each group's problem at the tick's rows (m' = gemm_rows_m): the tasks point into this, so it never grows
  std::vector<gemm_problem> run(l.groups.size());
  for (size_t gi = 0; gi < l.groups.size(); gi++) {
    const auto& g = l.groups[gi];
    gemm_problem& p = run[gi];
    p = g.problem;
    p.m = gemm_rows_m(g.problem, rows);
    for (const auto& e : g.entries) {
      if (!tenant_active(active, e.tenant)) continue;
      ctx.gemm_rows += static_cast<uint64_t>(p.m);
      const int64_t nt = tile_width(p);
      for (int64_t m0 = 0; m0 < p.m; m0 += gemm_tile_mc)
        for (int64_t n0 = 0; n0 < p.n; n0 += nt) tasks.push_back({&p, &e, m0, n0});
    }
  }
  ctx.pool.parallel_for(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
    thread_local std::vector<float> a_pack(gemm_pack_floats), b_pack(gemm_pack_floats);
    const tile_task& t = tasks[static_cast<size_t>(i)];
    const gemm_problem& p = *t.p;
    const gemm_entry& e = *t.e;
    float* c = reinterpret_cast<float*>(ctx.at(e.c));
    const int64_t mc = std::min(gemm_tile_mc, p.m - t.m0), nc = std::min(tile_width(p), p.n - t.n0);
    gemm_tile g{reinterpret_cast<const float*>(ctx.at(e.a)),
                p.lda,
                p.trans_a,
                reinterpret_cast<const float*>(ctx.at(e.b)),
                p.ldb,
                p.trans_b,
                c,
                p.ldc,
                t.m0,
                mc,
                t.n0,
                nc,
                p.k,
                a_pack.data(),
                b_pack.data()};
    if (half) {
      thread_local std::vector<float> a_f32, b_f32;
      convert_a(p, l.dt, ctx.at(e.a), t.m0, mc, a_f32, g.lda);
      convert_b(p, l.dt, ctx.at(e.b), t.n0, nc, b_f32, g.ldb);
      g.a = a_f32.data();
      g.b = b_f32.data();
      g.c = c + t.m0 * p.ldc + t.n0; // the converted blocks start at the tile: tile coordinates are 0
      g.m0 = 0;
      g.n0 = 0;
    }
    if (use_skinny(p)) skinny(g);
    else tile(g);
    const float* bias = e.has_bias ? reinterpret_cast<const float*>(ctx.at(e.bias)) : nullptr;
    const float* residual = e.has_residual ? reinterpret_cast<const float*>(ctx.at(e.residual)) : nullptr;
    epilogue(p, bias, residual, c, t.m0, mc, t.n0, nc);
  });
}

} // namespace loom
