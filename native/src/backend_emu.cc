// The cuda-emu backend: the CPU backend, except that every kernel launch runs the plan's generated CUDA kernel
// compiled for the host (native/emu/cuda_emu.h; runtime/emu-kernels.ts builds the shared library that
// backend_config.emu.library names) over the segment tables, grid and block the CUDA backend would launch.
// GEMMs, copies and arenas are the CPU backend's. It checks codegen — templates, fixed forms, grids, tables —
// on a machine without a GPU; it is slow and measures nothing. It also checks what a GPU would not: every kernel
// launch writes only inside its outputs (launch::writes, from plan_validate) — a byte of any arena changed
// elsewhere (another tenant's activations, the weights) fails the launch, naming the byte.
// LOOM_EMU_CHECK_WRITES=0 turns that off (it copies every arena around each kernel launch).
// LOOM_EMU_GRID_DIVISOR=N runs every kernel launch on ceil(grid / N) blocks: the CUDA backend's sparse tick shrinks
// grids with the work (backend_cuda_sparse.cc) on the promise that every template is correct on any grid.
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "backend_cpu.h"
#include "backend_ext.h"
#include "kernel_tables.h"

namespace loom {

namespace {

typedef void (*emu_kernel)(const LoomSegment*, int, const LoomView*, long long);
typedef const char* (*emu_launch_fn)(emu_kernel, unsigned, unsigned, const LoomSegment*, int, const LoomView*, long long, int);

struct emu_ctx {
  backend cpu;
  void* library = nullptr;
  std::string library_path;
  emu_launch_fn launch = nullptr;
  std::unordered_map<std::string, emu_kernel> kernels; // by symbol, looked up on first use
  uint64_t kernel_launches = 0;
  uint64_t blocks = 0;
  bool check_writes = true;
  int64_t grid_divisor = 1;
  std::vector<uint8_t> before[arena_id_count]; // the arenas as they were before the launch (check_writes)
  uint64_t checked_launches = 0;

  ~emu_ctx() {
    if (cpu.ops) cpu.ops->destroy(cpu.ctx);
    if (library) dlclose(library);
  }
};

emu_ctx& E(void* ctx) { return *static_cast<emu_ctx*>(ctx); }
cpu_ctx& cpu_of(emu_ctx& e) { return *static_cast<cpu_ctx*>(e.cpu.ctx); }

void emu_destroy(void* ctx) { delete static_cast<emu_ctx*>(ctx); }
void emu_allocate(void* ctx, const arena_sizes& sizes) { E(ctx).cpu.ops->allocate(E(ctx).cpu.ctx, sizes); }
void emu_upload_weights(void* ctx, const uint8_t* data, size_t bytes) { E(ctx).cpu.ops->upload_weights(E(ctx).cpu.ctx, data, bytes); }
void emu_copy_in(void* ctx, ref dst, const uint8_t* src, size_t bytes) { E(ctx).cpu.ops->copy_in(E(ctx).cpu.ctx, dst, src, bytes); }
void emu_copy_out(void* ctx, ref src, uint8_t* dst, size_t bytes) { E(ctx).cpu.ops->copy_out(E(ctx).cpu.ctx, src, dst, bytes); }
void emu_gemm(void* ctx, const launch& l, const tenant_mask& active, int64_t rows) {
  E(ctx).cpu.ops->gemm(E(ctx).cpu.ctx, l, active, rows);
}
void emu_gemm_grouped(void* ctx, const launch& l, const tenant_mask& active, int64_t rows) {
  E(ctx).cpu.ops->gemm_grouped(E(ctx).cpu.ctx, l, active, rows);
}

emu_kernel kernel_of(emu_ctx& e, const std::string& symbol) {
  auto it = e.kernels.find(symbol);
  if (it != e.kernels.end()) return it->second;
  void* f = dlsym(e.library, symbol.c_str());
  if (!f) throw loom_error("kernel '" + symbol + "' is not in the host-compiled kernels (" + e.library_path + ")");
  emu_kernel k = reinterpret_cast<emu_kernel>(f);
  e.kernels.emplace(symbol, k);
  return k;
}

// The first byte of `a` that differs between `was` and `now` outside `spans` (sorted by begin), or -1.
int64_t stray_write(const std::vector<byte_span>& spans, arena_id a, const uint8_t* was, const uint8_t* now, int64_t size) {
  int64_t at = 0;
  auto check = [&](int64_t end) -> int64_t {
    if (end > at && std::memcmp(was + at, now + at, static_cast<size_t>(end - at)) != 0)
      for (int64_t i = at; i < end; i++)
        if (was[i] != now[i]) return i;
    return -1;
  };
  for (const byte_span& s : spans) {
    if (s.arena != a) continue;
    const int64_t hit = check(std::min(s.begin, size));
    if (hit >= 0) return hit;
    at = std::max(at, s.end);
  }
  return check(size);
}

void check_writes(emu_ctx& e, const launch& l) {
  cpu_ctx& c = cpu_of(e);
  std::vector<byte_span> spans = l.writes;
  std::sort(spans.begin(), spans.end(), [](const byte_span& x, const byte_span& y) { return x.begin < y.begin; });
  for (size_t a = 0; a < arena_id_count; a++) {
    const int64_t size = c.arenas[a].size;
    if (size <= 0) continue;
    const int64_t hit = stray_write(spans, static_cast<arena_id>(a), e.before[a].data(), c.arenas[a].data.get(), size);
    if (hit >= 0) {
      throw loom_error("kernel '" + l.grid.symbol + "' (host emulation) wrote byte " + std::to_string(hit) + " of the " +
                       arena_id_name(static_cast<arena_id>(a)) + " arena, outside every output of the launch");
    }
  }
  e.checked_launches++;
}

// Every tenant's segment runs, live or not (a backend may skip the others' segments, never must).
void emu_kernel_launch(void* ctx, const launch& l, const tenant_mask&) {
  emu_ctx& e = E(ctx);
  cpu_ctx& c = cpu_of(e);
  arena_addresses at;
  for (size_t a = 0; a < arena_id_count; a++) at.base[a] = reinterpret_cast<unsigned long long>(c.arenas[a].data.get());
  const kernel_tables t = build_kernel_tables(l, at);
  if (t.segs.empty()) return;
  if (l.grid.block <= 0 || l.grid.block > 1024 || l.grid.grid <= 0 || l.grid.grid > INT32_MAX)
    throw loom_error("kernels.grids gives block " + std::to_string(l.grid.block) + ", grid " + std::to_string(l.grid.grid));
  const emu_kernel k = kernel_of(e, l.grid.symbol);
  if (e.check_writes) {
    for (size_t a = 0; a < arena_id_count; a++) {
      const uint8_t* p = c.arenas[a].data.get();
      e.before[a].assign(p, p + (p ? c.arenas[a].size : 0));
    }
  }
  const int64_t grid = (l.grid.grid + e.grid_divisor - 1) / e.grid_divisor;
  const char* err = e.launch(k, static_cast<unsigned>(grid), static_cast<unsigned>(l.grid.block), t.segs.data(),
                             static_cast<int>(t.segs.size()), t.views.data(), t.total_work, c.pool.size());
  if (err) throw loom_error("kernel '" + l.grid.symbol + "' (host emulation): " + err);
  if (e.check_writes) check_writes(e, l);
  e.kernel_launches++;
  e.blocks += static_cast<uint64_t>(grid);
}

void emu_synchronize(void*) {}
int emu_threads(void* ctx) { return cpu_of(E(ctx)).pool.size(); }

void emu_stats(void* ctx, backend_stats& out) {
  const emu_ctx& e = E(ctx);
  out.numbers.emplace_back("emulatedKernelLaunches", static_cast<double>(e.kernel_launches));
  out.numbers.emplace_back("emulatedBlocks", static_cast<double>(e.blocks));
  out.numbers.emplace_back("writeCheckedLaunches", static_cast<double>(e.checked_launches));
  out.strings.emplace_back("emuLibrary", e.library_path);
}
const backend_stats_ext emu_stats_ext = {emu_stats};

uint8_t* emu_host_arena(void* ctx, arena_id arena) { return cpu_of(E(ctx)).arenas[static_cast<int>(arena)].data.get(); }
const backend_host_arena_ext emu_host_arena_ext = {emu_host_arena};

const void* emu_get_extension(const char* name) {
  if (backend_extension_is<backend_host_arena_ext>(name)) return &emu_host_arena_ext;
  if (backend_extension_is<backend_stats_ext>(name)) return &emu_stats_ext;
  return nullptr;
}

const backend_ops emu_ops = {
    LOOM_BACKEND_ABI, "cuda-emu",        emu_destroy,     emu_allocate, emu_upload_weights, emu_copy_in, emu_copy_out, emu_gemm,
    emu_gemm_grouped, emu_kernel_launch, emu_synchronize, emu_threads,  emu_get_extension,  nullptr,     nullptr,
};

bool emu_available() { return true; }

backend emu_create(const backend_config& cfg) {
  if (cfg.emu.library.empty())
    throw loom_error("backend 'cuda-emu' needs the plan's kernels compiled for the host (opts.emuLibrary; runtime/emu-kernels.ts)");
  auto e = std::make_unique<emu_ctx>();
  e->library_path = cfg.emu.library;
  e->library = dlopen(cfg.emu.library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!e->library) {
    const char* why = dlerror();
    throw loom_error("backend 'cuda-emu': cannot load " + cfg.emu.library + ": " + (why ? why : "dlopen failed"));
  }
  e->launch = reinterpret_cast<emu_launch_fn>(dlsym(e->library, "loom_emu_launch"));
  if (!e->launch)
    throw loom_error("backend 'cuda-emu': " + cfg.emu.library + " has no loom_emu_launch (not built with native/emu/cuda_emu.h)");
  const char* check = std::getenv("LOOM_EMU_CHECK_WRITES");
  e->check_writes = !(check && std::string(check) == "0");
  if (const char* d = std::getenv("LOOM_EMU_GRID_DIVISOR")) {
    char* end = nullptr;
    const long long v = std::strtoll(d, &end, 10);
    if (!*d || *end || v < 1) throw loom_error(std::string("LOOM_EMU_GRID_DIVISOR must be a positive integer, got '") + d + "'");
    e->grid_divisor = v;
  }
  e->cpu = backend_cpu_create(cfg.threads);
  return backend{&emu_ops, e.release()};
}

// What the CUDA backend runs, the same way: every launch kind and KernelOp (kernels through the generated code).
bool emu_supports(launch_kind kind, kernel_kind op) { return backend_cpu_entry.supports(kind, op); }

} // namespace

const backend_entry backend_emu_entry = {"cuda-emu", LOOM_BACKEND_ABI, emu_available, emu_create, emu_supports, emu_get_extension};

} // namespace loom
