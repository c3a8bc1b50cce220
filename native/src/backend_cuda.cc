// The CUDA backend: arenas in device memory (weights uploaded once), every launch of the plan prepared once
// at load (cuBLAS calls with their pointer arrays on the device, generated kernels with their segment
// tables on the device, bias/activation applied by the GEMM call itself where that is exact and measured no
// slower, else one epilogue kernel per GEMM launch that needs them: backend_cuda_gemm_paths.cc), then the whole
// tick — H2D of the input slots from pinned staging, every launch, D2H of the output slots — captured ONCE
// as a CUDA graph and replayed every tick: no allocation and no host sync in a tick but the final one.
// A tick where few tenants are live may instead run a sparse tick of only their work
// (backend_cuda_sparse.cc), when measurements say it is clearly cheaper.
// GEMMs are row-major problems computed as column-major cuBLAS by swapping the operands:
// Cᵀ = op(B)ᵀ · op(A)ᵀ (FORMAT.md "gemm").
#include "backend_cuda_ctx.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "backend_ext.h"

namespace loom {

std::vector<range> cuda_merge_ranges(std::vector<range> r, int64_t gap) {
  std::sort(r.begin(), r.end(), [](const range& a, const range& b) { return a.offset < b.offset; });
  std::vector<range> out;
  for (const auto& x : r) {
    if (x.bytes <= 0) continue;
    if (!out.empty() && x.offset <= out.back().offset + out.back().bytes + gap) {
      out.back().bytes = std::max(out.back().offset + out.back().bytes, x.offset + x.bytes) - out.back().offset;
    } else {
      out.push_back(x);
    }
  }
  return out;
}

bool cuda_ranges_hold(const std::vector<range>& rs, int64_t off, int64_t bytes) {
  for (const auto& r : rs)
    if (off >= r.offset && off + bytes <= r.offset + r.bytes) return true;
  return false;
}
namespace {

constexpr size_t kWorkspaceBytes = kCudaGemmWorkspaceBytes; // cuBLAS / cuBLASLt workspace: no allocation inside capture
constexpr size_t kReserveBytes = size_t(64) << 20;          // left free for the driver, cuBLAS and the module
constexpr int64_t kMergeGap = kStagingMergeGap;             // copy a gap this small rather than add a copy node (tick_staging.h)

size_t append_table(cuda_ctx& c, const void* data, size_t bytes) {
  const size_t off = cuda_align_up(c.full.host_tables.size());
  c.full.host_tables.resize(off + std::max<size_t>(bytes, 1));
  if (bytes) std::memcpy(c.full.host_tables.data() + off, data, bytes);
  return off;
}

std::string mib(double bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return buf;
}

void check_free_memory(cuda_ctx& c, size_t need, const std::string& what) {
  size_t free_b = 0, total_b = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  if (need + kReserveBytes > free_b) {
    throw loom_error("the plan does not fit on GPU " + std::to_string(c.dev.device) + " (" + c.dev.props.name + "): it needs " +
                     mib(static_cast<double>(need)) + " (" + what + ") plus " + mib(static_cast<double>(kReserveBytes)) +
                     " headroom, but only " + mib(static_cast<double>(free_b)) + " of " + mib(static_cast<double>(total_b)) + " are free");
  }
}

int to_int(int64_t v, const launch_plan& plan, const launch& l, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw loom_error(launch_where(plan, l) + ": " + what + " = " + std::to_string(v) + " does not fit cuBLAS's int");
  return static_cast<int>(v);
}

// ---- preparing launches ----

void set_problem(gemm_call& g, const gemm_problem& p, const launch_plan& plan, const launch& l) {
  g.ta = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  g.tb = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  g.m = to_int(p.n, plan, l, "n");
  g.n = to_int(p.m, plan, l, "m");
  g.k = to_int(p.k, plan, l, "k");
  g.lda = to_int(p.ldb, plan, l, "ldb");
  g.ldb = to_int(p.lda, plan, l, "lda");
  g.ldc = to_int(p.ldc, plan, l, "ldc");
  g.alpha = static_cast<float>(p.alpha);
}

// entry i's ref == entry 0's + i · stride (bytes) for every operand, with element-aligned, non-negative strides
// (A and B in elements of the launch dtype, C of f32)
bool uniformly_strided(const launch& l, const gemm_group& g) {
  if (!l.has_strides) return false;
  const int64_t s[3] = {l.strides.a, l.strides.b, l.strides.c};
  const int64_t es[3] = {static_cast<int64_t>(dtype_size(l.dt)), static_cast<int64_t>(dtype_size(l.dt)), 4};
  for (int i = 0; i < 3; i++)
    if (s[i] < 0 || s[i] % es[i] != 0) return false;
  const gemm_entry& e0 = g.entries[0];
  for (size_t i = 0; i < g.entries.size(); i++) {
    const gemm_entry& e = g.entries[i];
    const int64_t n = static_cast<int64_t>(i);
    if (e.a.arena != e0.a.arena || e.b.arena != e0.b.arena || e.c.arena != e0.c.arena) return false;
    if (e.a.offset != e0.a.offset + n * s[0] || e.b.offset != e0.b.offset + n * s[1] || e.c.offset != e0.c.offset + n * s[2]) return false;
  }
  return true;
}

void append_pointer_arrays(cuda_ctx& c, gemm_call& call, const std::vector<const gemm_entry*>& entries) {
  const std::vector<unsigned long long> arr = cuda_pointer_arrays(entries, c.mem.arenas);
  call.arr_off = append_table(c, arr.data(), arr.size() * sizeof(unsigned long long));
  call.total = static_cast<int>(entries.size());
}

// Whether every entry's f32 operand (picked by `of`) is entry 0's + i · stride_bytes in entry 0's arena, for a
// non-negative stride of whole elements; `elems` gets the stride in elements where it is (else 0).
template <typename F>
bool f32_strided(const gemm_group& g, F of, int64_t stride_bytes, long long& elems) {
  elems = 0;
  if (stride_bytes < 0 || stride_bytes % 4 != 0) return false;
  const ref r0 = of(g.entries[0]);
  for (size_t i = 1; i < g.entries.size(); i++) {
    const ref r = of(g.entries[i]);
    if (r.arena != r0.arena || r.offset != r0.offset + static_cast<int64_t>(i) * stride_bytes) return false;
  }
  elems = stride_bytes / 4;
  return true;
}

// The launch's epilogue as its call may apply it (gemm launches); with strided entries, whether their biases
// are uniformly strided too (strides.bias), so that entry 0's bias and the stride reach them all, and so their
// residuals (the plan gives no stride for them: found from the entries).
cuda_gemm_epi gemm_epilogue(const cuda_ctx& c, const launch& l, const gemm_group& g, bool strided) {
  const gemm_problem& p = g.problem;
  cuda_gemm_epi e;
  e.needed = p.bias != bias_mode::none || p.residual || p.act.kind != activation_kind::none;
  e.residual = p.residual;
  e.bias_mode = static_cast<int>(p.bias);
  e.ld_bias = p.ld_bias;
  e.act = static_cast<int>(p.act.kind);
  e.beta = static_cast<float>(p.beta);
  cuda_activation_params(p.act, e.p0, e.p1);
  if (p.residual && !g.entries.empty()) {
    // the plan gives no residual stride: entry 1's distance from entry 0, if every entry keeps it
    const auto res = [](const gemm_entry& x) { return x.residual; };
    const int64_t stride = g.entries.size() > 1 ? g.entries[1].residual.offset - g.entries[0].residual.offset : 0;
    e.res = c.mem.arenas.at(g.entries[0].residual);
    e.res_strided = f32_strided(g, res, stride, e.sres);
    if (!e.res_strided) e.res = 0; // only pointer arrays reach every entry's residual
  }
  if (p.bias == bias_mode::none || g.entries.empty()) return e;
  e.bias = c.mem.arenas.at(g.entries[0].bias);
  if (!strided || g.entries.size() == 1) return e;
  // every entry has a bias here (plan_validate: an entry's bias matches the problem's bias mode)
  e.bias_strided = f32_strided(
      g, [](const gemm_entry& x) { return x.bias; }, l.strides.bias, e.sbias);
  if (!e.bias_strided) e.bias = 0; // nothing strided reaches every entry's bias: only pointer arrays could
  return e;
}

cudaDataType_t gemm_operand_type(const launch_plan& plan, const launch& l) {
  switch (l.dt) {
    case dtype::f32: return CUDA_R_32F;
    case dtype::bf16: return CUDA_R_16BF;
    case dtype::f16: return CUDA_R_16F;
    default: throw loom_error(launch_where(plan, l) + ": GEMM operands must be f32, bf16 or f16, got " + dtype_name(l.dt));
  }
}

void prepare_gemm(cuda_ctx& c, const launch_plan& plan, launch_state& s, launch_src& src) {
  const launch& l = *s.l;
  const cudaDataType_t ab = gemm_operand_type(plan, l);
  const int64_t ab_size = static_cast<int64_t>(dtype_size(l.dt));
  if (l.kind == launch_kind::gemm) {
    const gemm_group& g = l.groups.at(0);
    const gemm_problem& p = g.problem;
    if (g.entries.empty() || p.m == 0 || p.n == 0 || p.k == 0) return; // k = 0: the epilogue writes C
    gemm_call call;
    set_problem(call, p, plan, l);
    call.rows_unit = p.rows_unit;
    call.gemv_swap = c.gemm.gemv_swap;
    call.ab = ab;
    call.ab_size = static_cast<size_t>(ab_size);
    call.batch = to_int(static_cast<int64_t>(g.entries.size()), plan, l, "entries");
    call.mode = gemm_mode::batched;
    if (g.entries.size() == 1 || uniformly_strided(l, g)) {
      call.mode = gemm_mode::strided;
      const gemm_entry& e0 = g.entries[0];
      call.a = c.mem.arenas.at(e0.b);
      call.b = c.mem.arenas.at(e0.a);
      call.c = c.mem.arenas.at(e0.c);
      if (g.entries.size() > 1) {
        call.sa = l.strides.b / ab_size;
        call.sb = l.strides.a / ab_size;
        call.sc = l.strides.c / 4;
      }
    }
    call.epi = gemm_epilogue(c, l, g, call.mode == gemm_mode::strided);
    std::vector<const gemm_entry*> es;
    for (const auto& e : g.entries) es.push_back(&e);
    if (call.mode == gemm_mode::batched) append_pointer_arrays(c, call, es);
    src.call_entries.push_back(std::move(es));
    s.calls.push_back(std::move(call));
    return;
  }
  // gemm_grouped: one grouped call over every group that has work
  gemm_call call;
  call.ab = ab;
  call.ab_size = static_cast<size_t>(ab_size);
#if defined(CUBLAS_VERSION) && CUBLAS_VERSION >= 120500
  call.mode = gemm_mode::grouped;
#else
  call.mode = gemm_mode::grouped_split;
  c.gemm.grouped_note = "cuBLAS < 12.5 has no cublasGemmGroupedBatchedEx: one batched call per group";
#endif
  std::vector<const gemm_entry*> es;
  for (const auto& g : l.groups) {
    const gemm_problem& p = g.problem;
    if (g.entries.empty() || p.m == 0 || p.n == 0 || p.k == 0) continue;
    gemm_call one;
    set_problem(one, p, plan, l);
    call.gta.push_back(one.ta);
    call.gtb.push_back(one.tb);
    call.gm.push_back(one.m);
    call.gn.push_back(one.n);
    call.gk.push_back(one.k);
    call.glda.push_back(one.lda);
    call.gldb.push_back(one.ldb);
    call.gldc.push_back(one.ldc);
    call.galpha.push_back(one.alpha);
    call.gbeta.push_back(0.0f);
    call.gsize.push_back(to_int(static_cast<int64_t>(g.entries.size()), plan, l, "entries"));
    call.grows_unit.push_back(p.rows_unit);
    for (const auto& e : g.entries) es.push_back(&e);
  }
  if (call.gsize.empty()) return;
  append_pointer_arrays(c, call, es);
  src.call_entries.push_back(std::move(es));
  s.calls.push_back(std::move(call));
}

void prepare_kernel(cuda_ctx& c, const launch_plan& plan, launch_state& s, launch_src& src) {
  const launch& l = *s.l;
  kernel_tables t;
  try {
    t = build_kernel_tables(l, c.mem.arenas);
  } catch (const loom_error& e) {
    throw loom_error(launch_where(plan, l) + ": " + e.what());
  }
  s.nsegs = static_cast<int>(t.segs.size());
  s.total = t.total_work;
  if (s.nsegs == 0) return;
  if (l.grid.block <= 0 || l.grid.block > 1024 || l.grid.grid <= 0 || l.grid.grid > INT_MAX) {
    throw loom_error(launch_where(plan, l) + ": kernels.grids gives block " + std::to_string(l.grid.block) + ", grid " +
                     std::to_string(l.grid.grid));
  }
  s.block = static_cast<unsigned>(l.grid.block);
  s.grid = static_cast<unsigned>(l.grid.grid);
  s.segs_off = append_table(c, t.segs.data(), t.segs.size() * sizeof(LoomSegment));
  s.views_off = append_table(c, t.views.data(), t.views.size() * sizeof(LoomView));
  const CUresult r = cuModuleGetFunction(&s.fn, c.kernels.module, l.grid.symbol.c_str());
  if (r != CUDA_SUCCESS) {
    const char* msg = nullptr;
    cuGetErrorString(r, &msg);
    throw loom_error(launch_where(plan, l) + ": kernel '" + l.grid.symbol + "' is not in the plan's kernel module (" +
                     c.kernels.module_how + "): " + (msg ? msg : "?"));
  }
  for (const auto& seg : l.segments) src.seg_tenants.push_back(seg.tenant);
  src.segs = std::move(t.segs);
}

// ---- backend_ops ----

void cuda_destroy(void* ctx) {
  cuda_ctx* c = static_cast<cuda_ctx*>(ctx);
  if (!c) return;
  if (c->dev.cu_ctx) {
    cudaSetDevice(c->dev.device);
    cuCtxSetCurrent(c->dev.cu_ctx);
  }
  if (c->dev.stream) cudaStreamSynchronize(c->dev.stream);
  cuda_lanes_destroy(*c);
  cuda_staged_destroy(*c);
  cuda_sparse_destroy(*c);
  if (c->graph.exec) cudaGraphExecDestroy(c->graph.exec);
  if (c->dev.ev0) cudaEventDestroy(c->dev.ev0);
  if (c->dev.ev1) cudaEventDestroy(c->dev.ev1);
  if (c->kernels.module) cuModuleUnload(c->kernels.module);
  c->gemm.lt_plans.clear();
  cuda_split_k_destroy(*c);
  cuda_gemm_ctx_destroy(c->dev.gemm);
  if (c->full.tables) cudaFree(c->full.tables);
  for (void* p : c->mem.arena_mem)
    if (p) cudaFree(p);
  if (c->mem.pin_in) cudaFreeHost(c->mem.pin_in);
  if (c->mem.pin_out) cudaFreeHost(c->mem.pin_out);
  if (c->dev.stream) cudaStreamDestroy(c->dev.stream);
  cudaGetLastError();
  delete c;
}

void cuda_allocate(void* ctx, const arena_sizes& sizes) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  c.mem.sizes = sizes;
  const int64_t s[3] = {sizes.weights, sizes.act, sizes.io};
  size_t need = kWorkspaceBytes;
  for (int64_t v : s) need += static_cast<size_t>(std::max<int64_t>(v, 1));
  check_free_memory(c, need,
                    "weights " + mib(static_cast<double>(s[0])) + ", activations " + mib(static_cast<double>(s[1])) + ", io " +
                        mib(static_cast<double>(s[2])) + ", cuBLAS workspace " + mib(static_cast<double>(kWorkspaceBytes)));
  for (int i = 0; i < 3; i++) {
    const size_t bytes = static_cast<size_t>(std::max<int64_t>(s[i], 1));
    CUDA_CHECK(cudaMalloc(&c.mem.arena_mem[i], bytes));
    CUDA_CHECK(cudaMemsetAsync(c.mem.arena_mem[i], 0, bytes, c.dev.stream)); // on the plan's stream: see upload_now
    c.mem.arenas.base[i] = reinterpret_cast<CUdeviceptr>(c.mem.arena_mem[i]);
  }
  cuda_gemm_ctx_allocate(c.dev.gemm, kWorkspaceBytes);
  const size_t io = static_cast<size_t>(std::max<int64_t>(sizes.io, 1));
  CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&c.mem.pin_in), io, cudaHostAllocDefault));
  CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&c.mem.pin_out), io, cudaHostAllocDefault));
  std::memset(c.mem.pin_in, 0, io);
  std::memset(c.mem.pin_out, 0, io);
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
}

// Host bytes into device memory, done when it returns, ordered on the plan's stream. Not cudaMemcpy: that one
// runs on the legacy default stream, which the plan's non-blocking streams never wait for, and from pageable
// memory it may return before its DMA lands, so the plan's first kernels could read the tables, weights or
// inputs before they arrive. (A timing race: it showed as an illegal memory access at a fresh load's first
// launches or in a tick, only while other processes slowed the device; stops 11-19.)
void upload_now(cuda_ctx& c, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c.dev.stream));
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
}

void cuda_upload_weights(void* ctx, const uint8_t* data, size_t bytes) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  upload_now(c, c.mem.arena_mem[0], data, bytes);
}

void cuda_copy_in(void* ctx, ref dst, const uint8_t* src, size_t bytes) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  upload_now(c, reinterpret_cast<void*>(c.mem.arenas.at(dst)), src, bytes);
}

void cuda_copy_out(void* ctx, ref src, uint8_t* dst, size_t bytes) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, reinterpret_cast<void*>(c.mem.arenas.at(src)), bytes, cudaMemcpyDeviceToHost, c.dev.stream));
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
}

// The executor calls these only for a backend without run_tick; kept working for single launches (at every row).
void cuda_one_launch(void* ctx, const launch& l, const tenant_mask&) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  auto it = c.full.by_id.find(l.id);
  if (it == c.full.by_id.end()) throw loom_error("launch " + std::to_string(l.id) + " was not prepared");
  cuda_enqueue_launch(c, c.full.launches[it->second], false);
}

void cuda_one_gemm(void* ctx, const launch& l, const tenant_mask& active, int64_t) { cuda_one_launch(ctx, l, active); }

void cuda_synchronize(void* ctx) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
}

int cuda_threads(void*) { return 1; }

// ---- backend_tick_ops and extensions ----

void cuda_prepare(void* ctx, const launch_plan& plan) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  c.dev.compute = c.opts.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  // The tick copies exactly the tenants' slots (or, for a plan without a slot table, the whole io arena), in
  // the spans of the staging layout the executor hands JS (tick_staging.h), so a staged tick's buffers line up.
  std::vector<range> outs;
  for (const auto& t : plan.io)
    for (const auto& s : t.outputs) outs.push_back({s.offset, s.bytes});
  if (!plan.io.empty()) c.full.poison_slots = cuda_merge_ranges(outs, 0);
  const io_layout layout = make_io_layout(plan, kMergeGap);
  for (const auto& s : layout.in) c.full.in_ranges.push_back({s.offset, s.bytes});
  for (const auto& s : layout.out) c.full.out_ranges.push_back({s.offset, s.bytes});

  bool any_kernel = false;
  for (const auto& l : plan.launches) any_kernel = any_kernel || (l.kind == launch_kind::kernel && !l.segments.empty());
  if (any_kernel) c.kernels.module = cuda_load_kernels(c.opts, c.dev.props.major, c.dev.props.minor, c.kernels.module_how);

  c.full.launches.resize(plan.launches.size());
  c.sparse.src.resize(plan.launches.size());
  for (size_t i = 0; i < plan.launches.size(); i++) {
    launch_state& s = c.full.launches[i];
    launch_src& src = c.sparse.src[i];
    s.l = &plan.launches[i];
    c.full.by_id[s.l->id] = i;
    if (s.l->kind == launch_kind::kernel) {
      prepare_kernel(c, plan, s, src);
      if (s.nsegs > 0) c.kernels.generated_launches++;
    } else {
      prepare_gemm(c, plan, s, src);
      std::vector<cuda_epi_job> jobs = cuda_build_epilogue(*s.l, c.mem.arenas, &src.job_tenants, &src.job_units);
      if (!jobs.empty()) {
        s.n_epi = static_cast<int>(jobs.size());
        s.epi_total = jobs.back().begin + jobs.back().m * jobs.back().n;
        s.epi_off = append_table(c, jobs.data(), jobs.size() * sizeof(cuda_epi_job));
        src.jobs = std::move(jobs);
      }
    }
  }
  check_free_memory(c, c.full.host_tables.size(), "segment tables and pointer arrays");
  CUDA_CHECK(cudaMalloc(&c.full.tables, std::max<size_t>(c.full.host_tables.size(), 1)));
  if (!c.full.host_tables.empty()) upload_now(c, c.full.tables, c.full.host_tables.data(), c.full.host_tables.size());
  c.full.host_tables.clear();
  c.full.host_tables.shrink_to_fit();
  const CUdeviceptr base = reinterpret_cast<CUdeviceptr>(c.full.tables);
  for (auto& s : c.full.launches) {
    s.segs = base + s.segs_off;
    s.views = base + s.views_off;
    s.epi = base + s.epi_off;
    for (auto& g : s.calls) g.arr = base + g.arr_off;
  }

  cuda_lanes_prepare(c, plan, kWorkspaceBytes);

  // Warm-up: one eager tick on zero inputs, synchronizing after each launch (faults name their launch;
  // lazy module and cuBLAS initialization happen here, not inside the capture).
  cuda_enqueue_body(c, cuda_full_body(c), true, true);
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  const auto chose0 = std::chrono::steady_clock::now();
  cuda_choose_grouped(c);
  cuda_choose_gemv(c);
  cuda_choose_gemm_paths(c);
  c.gemm.choose_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - chose0).count();
  for (size_t i = 0; i < c.full.launches.size(); i++) {
    const launch_state& s = c.full.launches[i];
    int api = (s.nsegs > 0 ? 1 : 0) + (s.n_epi > 0 && !cuda_epilogue_fused(s.calls) ? 1 : 0);
    for (const auto& g : s.calls) api += g.mode == gemm_mode::grouped_split ? static_cast<int>(g.gsize.size()) : 1;
    c.sparse.src[i].api_launches = api;
  }

  c.graph.captured = false;
  if (c.opts.use_graph) {
    try {
      c.graph.exec = cuda_capture(c, cuda_full_body(c), true);
      c.graph.captured = true;
    } catch (const loom_error& e) {
      c.graph.note = std::string("capture failed, ticks run eagerly: ") + e.what();
    }
  } else {
    c.graph.note = "disabled (graph: false)";
  }
  cuda_sparse_prepare(c, plan, layout);
}

// Host copies between the caller's buffers and pinned staging. A big tick (32 ResNet-18 inputs are 19 MB)
// is split into chunks copied by a few threads: one thread's memcpy reaches a fraction of the host's memory
// bandwidth, and those copies were most of such a tick's host time.
struct host_copy {
  uint8_t* dst;
  const uint8_t* src;
  size_t bytes;
};

constexpr size_t kParallelCopyBytes = size_t(2) << 20; // below this one thread is faster than a handoff
constexpr size_t kCopyChunk = size_t(512) << 10;

void copy_host(cuda_ctx& c, const std::vector<host_copy>& copies) {
  size_t total = 0;
  for (const auto& x : copies) total += x.bytes;
  if (total < kParallelCopyBytes) {
    for (const auto& x : copies) std::memcpy(x.dst, x.src, x.bytes);
    return;
  }
  if (!c.mem.copy_pool) c.mem.copy_pool = std::make_unique<thread_pool>(std::max(2, std::min(8, thread_pool_default_threads() / 2)));
  std::vector<host_copy> chunks;
  for (const auto& x : copies) {
    for (size_t at = 0; at < x.bytes; at += kCopyChunk) chunks.push_back({x.dst + at, x.src + at, std::min(kCopyChunk, x.bytes - at)});
  }
  c.mem.copy_pool->parallel_for(static_cast<int64_t>(chunks.size()), [&](int64_t i) {
    const host_copy& x = chunks[static_cast<size_t>(i)];
    std::memcpy(x.dst, x.src, x.bytes);
  });
}

void run_tick_body(cuda_ctx& c, const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                   int64_t rows, uint8_t* const* dst) {
  mask_entry* sparse = cuda_sparse_choose(c, active, rows);
  cuda_note_rows(c, sparse);
  const std::vector<range>& ins = sparse ? sparse->prog->in : c.full.in_ranges;
  const std::vector<range>& outs = sparse ? sparse->prog->out : c.full.out_ranges;
  // Inputs go into pinned staging (the tick's H2D copies read it); anything outside the tick's copies is
  // copied now, in stream order (a slot of a tenant outside the sparse tick's mask still reaches the device).
  std::vector<host_copy> staging;
  for (const auto& in : inputs) {
    const int64_t n = static_cast<int64_t>(in.size);
    if (n == 0) continue;
    if (cuda_ranges_hold(ins, in.offset, n)) {
      staging.push_back({c.mem.pin_in + in.offset, in.data, in.size});
    } else if (cuda_ranges_hold(c.full.in_ranges, in.offset, n)) {
      std::memcpy(c.mem.pin_in + in.offset, in.data, in.size);
      CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(c.mem.io() + in.offset), c.mem.pin_in + in.offset, in.size, cudaMemcpyHostToDevice,
                                 c.dev.stream));
    } else {
      // from pageable memory: staged before it returns, and on the tick's stream, ahead of its launches
      CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(c.mem.io() + in.offset), in.data, in.size, cudaMemcpyHostToDevice, c.dev.stream));
    }
  }
  copy_host(c, staging);
  cuda_fail_if_armed(c); // inputs already on the stream
  const auto t0 = std::chrono::steady_clock::now();
  bool graphed = c.graph.captured;
  if (sparse) {
    cuda_enqueue_copies_in(c, ins, c.mem.pin_in, nullptr);
    graphed = cuda_sparse_enqueue(c, *sparse);
    cuda_enqueue_copies_out(c, outs, c.mem.pin_out, nullptr);
  } else {
    cuda_launch_full(c);
  }
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  const double wall_us = cuda_since_us(t0);
  if (sparse && !sparse->forced) c.sparse.sparse_ticks++;
  else c.sparse.full_ticks++;
  if (sparse && graphed) cuda_sparse_record(c, *sparse, wall_us);
  staging.clear();
  bool direct = false; // outputs copied straight to the caller's (pageable) buffers, on the tick's stream
  for (size_t i = 0; i < outputs.size(); i++) {
    const tick_output& out = outputs[i];
    if (out.bytes <= 0) continue;
    if (cuda_ranges_hold(outs, out.offset, out.bytes)) {
      staging.push_back({dst[i], c.mem.pin_out + out.offset, static_cast<size_t>(out.bytes)});
    } else {
      CUDA_CHECK(cudaMemcpyAsync(dst[i], reinterpret_cast<void*>(c.mem.io() + out.offset), static_cast<size_t>(out.bytes),
                                 cudaMemcpyDeviceToHost, c.dev.stream));
      direct = true;
    }
  }
  if (direct) CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  copy_host(c, staging);
}

} // namespace

void cuda_check_usable(cuda_ctx& c) {
  if (c.fault.lost.empty()) return;
  c.fault.armed = false;
  throw loom_error("the CUDA context is unusable since an earlier tick failed with a sticky error (" + c.fault.lost +
                   "); load the plan again in a new process");
}

void cuda_fail_if_armed(cuda_ctx& c) {
  if (!c.fault.armed) return;
  c.fault.armed = false;
  c.fault.injected++;
  cuda_fail("cudaGraphLaunch(c.graph.exec, c.dev.stream)", "injected fault (test only: testInjectFault / LOOM_TEST_FAULT_TICKS)", __FILE__,
            __LINE__);
}

// After a failed tick, in the worker thread that ran it: clear the error a failed call leaves behind (the
// epilogue and skinny-GEMM launches check cudaGetLastError, which would report it again in the next tick),
// wait for whatever the tick had enqueued, and re-capture the full tick's graph (a launch that failed part
// way may leave the executable graph unusable; the sparse graphs are re-checked on their next use only if
// they fail). A sticky error (the context is corrupted and every call keeps failing) cannot be recovered
// in this process: the backend is marked lost and every later tick fails at once, naming it; the plan
// has to be loaded again in a new process. Never throws.
void cuda_recover(cuda_ctx& c) {
  cudaGetLastError();
  cuda_lanes_synchronize(c); // an eager tick that failed part way may have left work on its lanes
  if (cudaStreamSynchronize(c.dev.stream) != cudaSuccess) {
    cudaGetLastError();
    const cudaError_t again = cudaStreamSynchronize(c.dev.stream); // a sticky error keeps failing
    if (again != cudaSuccess) {
      c.fault.lost = std::string(cudaGetErrorName(again)) + ": " + cudaGetErrorString(again);
      return;
    }
  }
  cuda_split_k_reset(c); // a split launch cut short leaves its counters part way
  if (c.graph.captured) {
    try {
      cudaGraphExec_t fresh = cuda_capture(c, cuda_full_body(c), false);
      cudaGraphExecDestroy(c.graph.exec);
      c.graph.exec = fresh;
      c.fault.recaptures++;
    } catch (const std::exception& e) {
      cudaGetLastError();
      cudaGraphExecDestroy(c.graph.exec);
      c.graph.exec = nullptr;
      c.graph.captured = false;
      c.graph.note = std::string("re-capture after a failed tick failed, ticks run eagerly: ") + e.what();
    }
  }
  c.fault.recoveries++;
}

namespace {

void cuda_run_tick(void* ctx, const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                   int64_t rows, uint8_t* const* dst) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  cuda_check_usable(c);
  try {
    run_tick_body(c, inputs, outputs, active, rows, dst);
  } catch (...) {
    c.fault.armed = false;
    c.fault.failed_ticks++;
    cuda_recover(c);
    throw;
  }
}

void cuda_fault_arm(void* ctx, int32_t at_launch) { cuda_ctx_of(ctx).fault.armed = at_launch >= 0; }

void cuda_stats(void* ctx, backend_stats& out) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  auto num = [&](const char* k, double v) { out.numbers.emplace_back(k, v); };
  num("graph", c.graph.captured ? 1 : 0);
  num("graphNodes", c.graph.nodes);
  num("kernelNodes", c.graph.kernel_nodes);
  num("memcpyNodes", c.graph.memcpy_nodes);
  num("memsetNodes", c.graph.memset_nodes);
  num("otherNodes", c.graph.other_nodes);
  num("cublasCalls", c.gemm.cublas_calls); // cuBLAS API calls (not cuBLASLt, not the skinny-GEMM kernel)
  num("generatedKernelLaunches", c.kernels.generated_launches);
  num("epilogueLaunches", c.gemm.epilogue_launches); // epilogue kernel launches in a full tick
  num("fusedEpilogues", c.gemm.fused_epilogues);     // GEMM launches whose call applies bias / activation itself
  num("ltCalls", c.gemm.lt_calls);                   // GEMM calls run as cublasLtMatmul
  int half_calls = 0;
  for (const auto& ls : c.full.launches)
    for (const auto& g : ls.calls) half_calls += g.ab != CUDA_R_32F ? 1 : 0;
  num("halfOperandGemmCalls", half_calls); // prepared GEMM calls (cuBLAS or skinny kernel) with bf16/f16 A and B
  num("groupedSplit", c.gemm.grouped_split);
  num("stagedTicksCuda", static_cast<double>(c.staged.ticks));
  num("stagedOverlapped", static_cast<double>(c.staged.overlapped));
  num("gemvCalls", c.gemm.gemv_calls); // GEMM calls run by the skinny-GEMM kernel instead of cuBLAS
  num("h2dCopies", static_cast<double>(c.full.in_ranges.size()));
  num("d2hCopies", static_cast<double>(c.full.out_ranges.size()));
  num("weightBytes", static_cast<double>(c.mem.sizes.weights));
  num("actBytes", static_cast<double>(c.mem.sizes.act));
  num("ioBytes", static_cast<double>(c.mem.sizes.io));
  {
    // free memory on this plan's GPU now (all processes and plans on it): the hot-swap test reads it after a
    // swap to see the old plan's memory returned (test/gpu/swap.test.ts). Not in addon info(): that would
    // create a context on GPU 0 in processes serving another GPU.
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(c.dev.device) == cudaSuccess && cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      num("deviceFreeBytes", static_cast<double>(free_b));
    else cudaGetLastError();
  }
  num("tf32", c.opts.tf32 ? 1 : 0);
  num("poisonOutputs", c.opts.poison_outputs ? 1 : 0);
  num("ccMajor", c.dev.props.major);
  num("ccMinor", c.dev.props.minor);
  cuda_lanes_stats(c, out);
  cuda_split_k_stats(c, out);
  num("loadChoiceMs", c.gemm.choose_ms);    // wall ms of the load-time GEMM choices (timed candidates)
  num("pdlLaunches", c.pdl.graph_launches); // kernels of the captured full tick launched programmatically
  out.strings.emplace_back("pdlNote", c.pdl.note);
  out.strings.emplace_back("device", c.dev.props.name);
  out.strings.emplace_back("kernelModule", c.kernels.module_how);
  out.strings.emplace_back("compute", c.opts.tf32 ? "CUBLAS_COMPUTE_32F_FAST_TF32" : "CUBLAS_COMPUTE_32F");
  const char* const policy3[3][3] = {{"auto", "never", "force"}, {"auto", "off", "force"}, {"auto", "off", "force"}};
  out.strings.emplace_back("fuseMode", policy3[0][static_cast<int>(c.gemm.fuse)]);
  out.strings.emplace_back("ltMode", policy3[1][static_cast<int>(c.gemm.lt)]);
  out.strings.emplace_back("gemvMode", policy3[2][static_cast<int>(c.gemm.gemv)]);
  if (!c.graph.note.empty()) out.strings.emplace_back("graphNote", c.graph.note);
  if (!c.gemm.grouped_note.empty()) out.strings.emplace_back("groupedNote", c.gemm.grouped_note);
  if (!c.gemm.gemv_note.empty()) out.strings.emplace_back("gemvNote", c.gemm.gemv_note);
  if (!c.gemm.paths_note.empty()) out.strings.emplace_back("gemmPathsNote", c.gemm.paths_note);
  if (!c.gemm.paths.empty()) {
    // per gemm launch, "id: path [time]", joined by "; " (the path each runs, as chosen at load)
    std::string paths;
    for (const auto& [id, path] : c.gemm.paths) paths += (paths.empty() ? "" : "; ") + std::to_string(id) + ": " + path;
    out.strings.emplace_back("gemmPaths", paths);
  }
  num("cudaFailedTicks", c.fault.failed_ticks);
  num("cudaFaultsInjected", c.fault.injected);
  num("cudaRecoveries", c.fault.recoveries);
  num("cudaRecaptures", c.fault.recaptures);
  if (!c.fault.lost.empty()) out.strings.emplace_back("cudaLost", c.fault.lost);
  cuda_sparse_stats(c, out);
}

// The extensions this backend offers (backend_ext.h), by name.
const backend_stats_ext cuda_stats_ext = {cuda_stats};
const backend_bench_ext cuda_bench_ext = {cuda_bench_tick};
const backend_profile_ext cuda_profile_ext = {cuda_profile_tick};
const backend_bench_concurrent_ext cuda_bench_concurrent_ext = {cuda_bench_concurrent};
const backend_device_info_ext cuda_device_info_ext = {cuda_device_count, cuda_device_info};
const backend_fault_ext cuda_fault_ext = {cuda_fault_arm};

const void* cuda_get_extension(const char* name) {
  if (backend_extension_is<backend_stats_ext>(name)) return &cuda_stats_ext;
  if (backend_extension_is<backend_bench_ext>(name)) return &cuda_bench_ext;
  if (backend_extension_is<backend_profile_ext>(name)) return &cuda_profile_ext;
  if (backend_extension_is<backend_bench_concurrent_ext>(name)) return &cuda_bench_concurrent_ext;
  if (backend_extension_is<backend_device_info_ext>(name)) return &cuda_device_info_ext;
  if (backend_extension_is<backend_fault_ext>(name)) return &cuda_fault_ext;
  return nullptr;
}

const backend_ops cuda_ops = {
    LOOM_BACKEND_ABI, "cuda",        cuda_destroy,       cuda_allocate,     cuda_upload_weights,
    cuda_copy_in,     cuda_copy_out, cuda_one_gemm,      cuda_one_gemm,     cuda_one_launch,
    cuda_synchronize, cuda_threads,  cuda_get_extension, cuda_pinned_alloc, cuda_pinned_free,
};

const backend_tick_ops cuda_tick_ops = {cuda_prepare, cuda_run_tick, cuda_staged_submit, cuda_staged_wait, cuda_staged_finish};

bool cuda_available() { return cuda_device_count() > 0; }

backend cuda_create(const backend_config& cfg) { return backend_cuda_create(cfg.cuda); }

// cuBLAS runs both GEMM kinds; every KernelOp is a generated kernel from the plan's module (codegen/kernels.ts
// writes one per op). No default: a KernelOp added to the contract without a CUDA template warns here
// (-Wswitch) and is refused at load.
bool cuda_supports(launch_kind kind, kernel_kind op) {
  switch (kind) {
    case launch_kind::gemm:
    case launch_kind::gemm_grouped: return true;
    case launch_kind::kernel: break;
  }
  switch (op) {
    case kernel_kind::eltwise:
    case kernel_kind::reduce:
    case kernel_kind::softmax:
    case kernel_kind::layernorm:
    case kernel_kind::groupnorm:
    case kernel_kind::pool:
    case kernel_kind::depthwise:
    case kernel_kind::im2col:
    case kernel_kind::col2im:
    case kernel_kind::copy:
    case kernel_kind::fill:
    case kernel_kind::gather:
    case kernel_kind::gather_table:
    case kernel_kind::squeeze_excite:
    case kernel_kind::conv: return true;
  }
  return false;
}

} // namespace

const backend_entry backend_cuda_entry = {"cuda", LOOM_BACKEND_ABI, cuda_available, cuda_create, cuda_supports, cuda_get_extension};

bool cuda_backend_is(const backend& b) { return b.ops == &cuda_ops; }

backend backend_cuda_create(const cuda_options& opts) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess || n == 0) {
    cudaGetLastError();
    throw loom_error(std::string("backend 'cuda': no CUDA GPU is visible (") + (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") +
                     ")");
  }
  if (opts.device < 0 || opts.device >= n)
    throw loom_error("backend 'cuda': device " + std::to_string(opts.device) + " does not exist (" + std::to_string(n) + " visible)");
  auto* c = new cuda_ctx();
  try {
    c->opts = opts;
    c->dev.device = opts.device;
    c->sparse.policy = cuda_sparse_policy_from_env();
    c->gemm.gemv = cuda_gemv_policy_from_env();
    c->gemm.gemv_vec = cuda_gemv_vec_from_env();
    c->gemm.gemv_swap = cuda_gemv_swap_from_env();
    c->gemm.fuse = cuda_fuse_policy_from_env();
    c->gemm.lt = cuda_lt_policy_from_env();
    c->gemm.tile = cuda_tile_policy_from_env();
    c->gemm.split_k = cuda_split_k_from_env();
    c->staged.overlap = cuda_overlap_policy_from_env();
    c->lanes.policy = cuda_lanes_policy_from_env();
    c->lanes.priority = cuda_priority_policy_from_env();
    c->pdl.policy = cuda_pdl_policy_from_env();
    CUDA_CHECK(cudaSetDevice(c->dev.device));
    CUDA_CHECK(cudaFree(nullptr)); // creates the primary context
    CU_CHECK(cuInit(0));
    CU_CHECK(cuCtxGetCurrent(&c->dev.cu_ctx));
    if (!c->dev.cu_ctx) throw loom_error("backend 'cuda': no current CUDA context after initialization");
    CUDA_CHECK(cudaGetDeviceProperties(&c->dev.props, c->dev.device));
    c->pdl.enabled = c->pdl.policy != pdl_policy::off && c->dev.props.major >= 9;
    const bool prefetch = c->pdl.policy == pdl_policy::prefetch || (c->pdl.policy == pdl_policy::automatic && kPdlPrefetchByDefault);
    c->pdl.prefetch = c->pdl.enabled && prefetch ? cuda_pdl_prefetch_from_env() : 0;
    const char* policy = c->pdl.policy == pdl_policy::automatic     ? "auto"
                         : c->pdl.policy == pdl_policy::prefetch    ? "prefetch"
                         : c->pdl.policy == pdl_policy::no_prefetch ? "noprefetch"
                                                                    : "off";
    c->pdl.note = std::string("LOOM_CUDA_PDL=") + policy;
    if (c->pdl.enabled) c->pdl.note += ": a Loom kernel after a Loom kernel on its stream launches programmatically";
    else if (c->pdl.policy != pdl_policy::off) c->pdl.note += ": programmatic dependent launch needs sm_90 or later";
    if (c->pdl.prefetch)
      c->pdl.note += "; skinny GEMMs prefetch their first weights into L2 before waiting (" + std::to_string(c->pdl.prefetch) +
                     " k steps a row, LOOM_CUDA_PDL_PREFETCH)";
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->dev.stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreate(&c->dev.ev0));
    CUDA_CHECK(cudaEventCreate(&c->dev.ev1));
    cuda_gemm_ctx_create(c->dev.gemm, c->dev.stream);
  } catch (...) {
    cuda_destroy(c);
    throw;
  }
  return backend{&cuda_ops, c, &cuda_tick_ops};
}

} // namespace loom
