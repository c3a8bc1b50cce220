// The sparse tick: when few tenants are live, run only the launches that have a live tenant, each over only
// the live tenants' entries / segments, and copy only their io slots. A strided GEMM whose live entries are
// one contiguous run stays strided (smaller batch at an offset); otherwise live entries go through pointer
// arrays (a call the full tick runs on the skinny-GEMM kernel stays on it either way, its fused epilogue
// included; a cuBLASLt call, whose plan holds the full tick's pointers, stays as it is where every entry is live
// at the full tick's rows, else moves to the skinny-GEMM kernel where that takes the shape, else to cuBLAS with
// the epilogue kernel: without_lt); epilogue jobs and kernel
// segment tables are compacted (workBegin re-prefix-summed; views stay in the load-time table, segments index
// them by firstView).
//
// Per occupancy mask the compacted tables are built once on the host, staged in one pinned buffer and sent
// with ONE cudaMemcpyAsync into a device table slot that the mask keeps while it is cached (LRU, at most 32
// masks): production traffic repeats masks, so a mask's second tick on replays a captured graph (~1-2 µs
// per node) instead of eager launches (~3-8 µs each on the host). The first tick of a mask runs eagerly and
// checked (a fault names its launch), so a one-off mask never pays a capture.
//
// Row buckets (executor.h row_bucket) share this machinery: a tick whose live tenants carry at most `rows` rows
// runs its rows-scaled GEMMs (plan rowsUnit) at m' = rowsUnit · rows. A captured graph bakes m in, so each
// (mask, bucket) is its own program: the mask's sparse tick when the rule picks one, else the whole fleet's
// program at that bucket (`forced`: always built, never measured away), at most log2(maxBatch) + 1 of them.
// Epilogue jobs of scaled GEMMs cover the m' rows only; generated kernels keep running every row (rows past a
// tenant's count hold stale values that no returned output reads).
//
// The choice is measured, not guessed (backend_cuda_sparse_cost.cc): a mask's sparse tick is estimated from
// load-time measurements and used only below kSparseRatio of the full tick; once a mask's graph has been
// replayed a few times, its measured time replaces the estimate.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

constexpr double kSparseRatio = 0.8;             // sparse only when clearly cheaper than the full tick
constexpr int kMaxMasks = 32;                    // cached (mask, bucket) entries; those with a program hold a table slot
constexpr size_t kSlabBudget = size_t(64) << 20; // device bytes for all table slots together
constexpr int64_t kMergeGap = kStagingMergeGap;  // as the full tick: copy a small gap rather than add a copy
constexpr int kTrustAfter = 3;                   // graph replays measured before the measurement decides
constexpr int64_t kGatherMinBytes = 128 << 10;   // coarse input copies below this stay copies (~5 µs of PCIe)

bool live(const tenant_mask& m, int32_t t) { return t >= 0 && static_cast<size_t>(t) < m.size() && m[t] != 0; }

const char* policy_name(sparse_policy p) {
  switch (p) {
    case sparse_policy::never: return "never";
    case sparse_policy::always: return "always";
    case sparse_policy::automatic: return "auto";
  }
  return "?";
}

// Bytes of a sparse tick's tables when every entry is live: the size of one slot.
size_t worst_table_bytes(const cuda_ctx& c) {
  size_t b = 0;
  for (size_t i = 0; i < c.full.launches.size(); i++) {
    const launch_state& s = c.full.launches[i];
    const launch_src& src = c.sparse.src[i];
    for (size_t k = 0; k < s.calls.size(); k++)
      b += cuda_align_up(src.call_entries[k].size() * kGemmPointerArrays * sizeof(unsigned long long));
    b += cuda_align_up(src.jobs.size() * sizeof(cuda_epi_job));
    if (s.nsegs > 0) b += cuda_align_up(src.segs.size() * sizeof(LoomSegment));
  }
  if (!c.sparse.staging_in.empty()) { // gather_moves: two moves per kIoMovePiece of every input slot
    size_t pieces = 0;
    for (const auto& rs : c.sparse.tenant_in)
      for (const auto& r : rs) pieces += static_cast<size_t>((r.bytes + kIoMovePiece - 1) / kIoMovePiece);
    b += cuda_align_up(2 * pieces * sizeof(cuda_io_move));
  }
  return std::max(b, kCudaTableAlign);
}

// The io gather kernel's moves for live input ranges `exact` (merged only where they touch) into the io arena,
// each cut to kIoMovePiece: n moves from the staging layout (staged ticks), then the same n from a host buffer
// of the io arena's layout (benchTick's pin_in). Empty when the coarse copies move under twice the live bytes or
// under kGatherMinBytes (then the copies are as cheap), or the staging layout is not known.
std::vector<cuda_io_move> gather_moves(const sparse_state& sp, const std::vector<range>& exact, const std::vector<range>& coarse) {
  std::vector<cuda_io_move> staged, flat;
  const int64_t live = cuda_range_bytes(exact), copied = cuda_range_bytes(coarse);
  if (sp.staging_in.empty() || copied < kGatherMinBytes || 2 * live > copied) return staged;
  for (const auto& r : exact) {
    const int64_t h = io_host_offset(sp.staging_in, r.offset, r.bytes);
    if (h < 0) return {};
    for (int64_t o = 0; o < r.bytes; o += kIoMovePiece) {
      const int64_t n = std::min<int64_t>(kIoMovePiece, r.bytes - o);
      staged.push_back(cuda_io_move{h + o, r.offset + o, n});
      flat.push_back(cuda_io_move{r.offset + o, r.offset + o, n});
    }
  }
  staged.insert(staged.end(), flat.begin(), flat.end());
  return staged;
}

// Ranges merged across small gaps, but never across another tenant's output slot: an H2D copy over it would
// overwrite an inactive tenant's last outputs with staging bytes.
std::vector<range> merge_guarded(std::vector<range> r, const std::vector<range>& forbidden) {
  std::sort(r.begin(), r.end(), [](const range& a, const range& b) { return a.offset < b.offset; });
  std::vector<range> out;
  for (const auto& x : r) {
    if (x.bytes <= 0) continue;
    if (!out.empty()) {
      const int64_t end = out.back().offset + out.back().bytes;
      bool clear = x.offset <= end + kMergeGap;
      for (const auto& f : forbidden) clear = clear && !(f.offset < x.offset && f.offset + f.bytes > end);
      if (clear) {
        out.back().bytes = std::max(end, x.offset + x.bytes) - out.back().offset;
        continue;
      }
    }
    out.push_back(x);
  }
  return out;
}

// The compacted tables of one sparse tick, written into the pinned staging buffer at the slot's layout.
struct table_writer {
  uint8_t* pin;
  size_t cap;
  CUdeviceptr base;
  size_t used = 0;
  CUdeviceptr put(const void* data, size_t bytes) {
    const size_t off = cuda_align_up(used);
    if (off + bytes > cap)
      throw loom_error("sparse tick: compacted tables need more than the " + std::to_string(cap) + " bytes sized at load");
    std::memcpy(pin + off, data, bytes);
    used = off + bytes;
    return base + off;
  }
};

// A plan m (cuBLAS's n after the operand swap) at the row bucket: rows_unit · rows when that is smaller.
int rows_m(int m, int64_t unit, int64_t rows) {
  if (rows <= 0 || unit <= 0 || unit * rows >= m) return m;
  return static_cast<int>(unit * rows);
}

// A cuBLASLt call's live entries: its plan holds the full tick's pointers and batch, so another path runs
// them. The skinny-GEMM kernel where it takes the shape (its store applying the epilogue the cuBLASLt call
// fused, where it can reach every bias): cuBLAS's strided and pointer-array calls at a few rows per entry read
// the weights far below bandwidth (on an H100, 1,000 of 10,000 tenants on cuBLAS's pointer-array call took
// longer than all 10,000 on cuBLASLt). Else cuBLAS, and the launch's epilogue kernel (compact_launch keeps
// its jobs) applies bias / activation.
gemm_call without_lt(const gemm_call& lt, bool gemv) {
  gemm_call g = lt;
  g.lt = nullptr;
  g.mode = gemm_mode::gemv_strided;
  if (gemv && g.fused && cuda_gemv_eligible(g)) return g;
  g.fused = false;
  if (gemv && cuda_gemv_eligible(g)) return g;
  g.mode = gemm_mode::strided;
  return g;
}

void compact_gemm(const gemm_call& full, const std::vector<const gemm_entry*>& es, const tenant_mask& m, int64_t rows, bool gemv,
                  const cuda_arenas& ar, table_writer& tw, std::vector<gemm_call>& out) {
  std::vector<size_t> idx;
  for (size_t j = 0; j < es.size(); j++)
    if (live(m, es[j]->tenant)) idx.push_back(j);
  if (idx.empty()) return;
  gemm_call g = full;
  g.n = rows_m(full.n, full.rows_unit, rows); // the plan's m; the skinny-GEMM kernel reads it as its rows too
  // every entry live at the full tick's rows: the full tick's call as it is (a cuBLASLt call keeps its algorithm
  // and fused epilogue; a branched plan's launches serve one tenant each, so a masked tick meets this often)
  if (full.mode == gemm_mode::lt_strided && idx.size() == es.size() && g.n == full.n) {
    out.push_back(full);
    return;
  }
  if (full.mode == gemm_mode::lt_strided) g = without_lt(g, gemv);
  switch (g.mode) {
    case gemm_mode::strided:
    case gemm_mode::gemv_strided:
      if (idx.back() - idx.front() + 1 == idx.size()) {
        const CUdeviceptr i0 = static_cast<CUdeviceptr>(idx.front());
        g.a = full.a + i0 * static_cast<CUdeviceptr>(full.sa) * full.ab_size;
        g.b = full.b + i0 * static_cast<CUdeviceptr>(full.sb) * full.ab_size;
        g.c = full.c + i0 * static_cast<CUdeviceptr>(full.sc) * sizeof(float);
        if (g.epi.bias) g.epi.bias = full.epi.bias + i0 * static_cast<CUdeviceptr>(full.epi.sbias) * sizeof(float);
        if (g.epi.res) g.epi.res = full.epi.res + i0 * static_cast<CUdeviceptr>(full.epi.sres) * sizeof(float);
        g.batch = static_cast<int>(idx.size());
        out.push_back(std::move(g));
        return;
      }
      // the full call's choice of cuBLAS or the skinny-GEMM kernel (fused or not) carries over to its
      // pointer-array form, whose fourth and fifth arrays hold each entry's bias and residual
      g.mode = g.mode == gemm_mode::strided ? gemm_mode::batched : gemm_mode::gemv_batched;
      break;
    case gemm_mode::batched:
    case gemm_mode::gemv_batched:
    case gemm_mode::lt_strided: break; // lt_strided: turned into strided above
    case gemm_mode::grouped:
    case gemm_mode::grouped_split: {
      // entries are concatenated group after group: keep each group's live count, drop groups with none
      g.gta.clear(), g.gtb.clear(), g.gm.clear(), g.gn.clear(), g.gk.clear(), g.glda.clear(), g.gldb.clear(), g.gldc.clear();
      g.gsize.clear(), g.galpha.clear(), g.gbeta.clear(), g.grows_unit.clear();
      size_t first = 0;
      for (size_t q = 0; q < full.gsize.size(); q++) {
        const size_t end = first + static_cast<size_t>(full.gsize[q]);
        int n = 0;
        for (size_t j = first; j < end && j < es.size(); j++) n += live(m, es[j]->tenant) ? 1 : 0;
        first = end;
        if (n == 0) continue;
        const int64_t unit = q < full.grows_unit.size() ? full.grows_unit[q] : 0;
        g.gta.push_back(full.gta[q]), g.gtb.push_back(full.gtb[q]), g.gm.push_back(full.gm[q]),
            g.gn.push_back(rows_m(full.gn[q], unit, rows));
        g.grows_unit.push_back(unit);
        g.gk.push_back(full.gk[q]), g.glda.push_back(full.glda[q]), g.gldb.push_back(full.gldb[q]), g.gldc.push_back(full.gldc[q]);
        g.galpha.push_back(full.galpha[q]), g.gbeta.push_back(full.gbeta[q]), g.gsize.push_back(n);
      }
      break;
    }
  }
  const size_t n = idx.size();
  std::vector<const gemm_entry*> live_entries;
  for (size_t j : idx) live_entries.push_back(es[j]);
  const std::vector<unsigned long long> arr = cuda_pointer_arrays(live_entries, ar);
  g.arr = tw.put(arr.data(), arr.size() * sizeof(unsigned long long));
  g.total = static_cast<int>(n);
  g.batch = static_cast<int>(n);
  out.push_back(std::move(g));
}

// The launch's sparse form; false when no live tenant has work in it.
bool compact_launch(const cuda_ctx& c, size_t i, const tenant_mask& m, int64_t rows, table_writer& tw, launch_state& s) {
  const launch_state& full = c.full.launches[i];
  const launch_src& src = c.sparse.src[i];
  s.l = full.l;
  if (full.l->kind == launch_kind::kernel) {
    if (full.nsegs == 0 || full.total <= 0) return false;
    std::vector<LoomSegment> segs;
    long long total = 0;
    for (size_t j = 0; j < src.segs.size(); j++) {
      if (!live(m, src.seg_tenants[j])) continue;
      segs.push_back(src.segs[j]);
      segs.back().workBegin = total;
      total += src.segs[j].work;
    }
    if (segs.empty() || total == 0) return false;
    s.fn = full.fn;
    s.block = full.block;
    s.views = full.views;
    s.segs = tw.put(segs.data(), segs.size() * sizeof(LoomSegment));
    s.nsegs = static_cast<int>(segs.size());
    s.total = total;
    // every template is grid-stride over totalWork: any grid is correct; shrink it with the work
    const double g = std::ceil(static_cast<double>(full.grid) * static_cast<double>(total) / static_cast<double>(full.total));
    s.grid = static_cast<unsigned>(std::min<double>(full.grid, std::max(1.0, g)));
    return true;
  }
  for (size_t k = 0; k < full.calls.size(); k++)
    compact_gemm(full.calls[k], src.call_entries[k], m, rows, c.gemm.gemv != gemv_policy::off, c.mem.arenas, tw, s.calls);
  if (full.n_epi > 0) {
    std::vector<cuda_epi_job> jobs;
    long long begin = 0;
    for (size_t j = 0; j < src.jobs.size(); j++) {
      if (!live(m, src.job_tenants[j])) continue;
      jobs.push_back(src.jobs[j]);
      cuda_epi_job& job = jobs.back();
      job.begin = begin;
      if (rows > 0 && j < src.job_units.size() && src.job_units[j] > 0) job.m = std::min<long long>(job.m, src.job_units[j] * rows);
      begin += job.m * job.n;
    }
    if (!jobs.empty()) {
      s.epi = tw.put(jobs.data(), jobs.size() * sizeof(cuda_epi_job));
      s.n_epi = static_cast<int>(jobs.size());
      s.epi_total = begin;
    }
  }
  return !s.calls.empty() || s.n_epi > 0;
}

void release_program(cuda_ctx& c, mask_entry& e) {
  if (!e.prog) return;
  if (e.prog->exec) cudaGraphExecDestroy(e.prog->exec);
  if (e.prog->slot >= 0) c.sparse.free_slots.push_back(e.prog->slot);
  e.prog.reset();
}

// Builds the mask's sparse tick into a free table slot and queues the slot's one upload.
void build_program(cuda_ctx& c, mask_entry& e) {
  sparse_state& sp = c.sparse;
  if (sp.free_slots.empty()) throw loom_error("sparse tick: no free table slot (cache bookkeeping)");
  auto p = std::make_unique<sparse_program>();
  p->slot = sp.free_slots.back();
  sp.free_slots.pop_back();
  try {
    std::vector<range> ins, outs;
    for (size_t t = 0; t < e.mask.size(); t++) {
      if (!e.mask[t]) continue;
      ins.insert(ins.end(), sp.tenant_in[t].begin(), sp.tenant_in[t].end());
      outs.insert(outs.end(), sp.tenant_out[t].begin(), sp.tenant_out[t].end());
    }
    p->in = merge_guarded(ins, sp.all_out);
    p->in_coarse = cuda_merge_ranges(p->in, kMergeGap);
    p->out = cuda_merge_ranges(outs, kMergeGap);
    p->poison = cuda_merge_ranges(outs, 0);
    // the previous upload from the staging buffer must be done before it is rewritten
    CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
    const CUdeviceptr base = reinterpret_cast<CUdeviceptr>(sp.slab) + static_cast<CUdeviceptr>(p->slot) * sp.slot_bytes;
    table_writer tw{sp.pinned, sp.slot_bytes, base};
    for (size_t i = 0; i < c.full.launches.size(); i++) {
      launch_state s;
      if (compact_launch(c, i, e.mask, e.rows, tw, s)) p->launches.push_back(std::move(s));
    }
    const std::vector<cuda_io_move> moves = gather_moves(sp, cuda_merge_ranges(ins, 0), p->in_coarse);
    if (!moves.empty()) {
      p->gather = tw.put(moves.data(), moves.size() * sizeof(cuda_io_move));
      p->n_gather = static_cast<int>(moves.size() / 2);
    }
    p->table_bytes = tw.used;
    if (tw.used > 0) {
      CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(base), sp.pinned, tw.used, cudaMemcpyHostToDevice, c.dev.stream));
      sp.uploads++;
    }
  } catch (...) {
    sp.free_slots.push_back(p->slot);
    throw;
  }
  e.prog = std::move(p);
}

} // namespace

sparse_policy cuda_sparse_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_SPARSE", sparse_policy::automatic,
                         {{"never", sparse_policy::never}, {"always", sparse_policy::always}, {"auto", sparse_policy::automatic}});
}

void cuda_sparse_prepare(cuda_ctx& c, const launch_plan& plan, const io_layout& layout) {
  sparse_state& sp = c.sparse;
  // the row-bucket programs use the same tables, so the machinery is set up under every policy
  if (sp.policy == sparse_policy::never) sp.note = "LOOM_CUDA_SPARSE=never: partly occupied ticks run every tenant";
  if (plan.io.size() != plan.tenants.size()) {
    sp.note = "the plan names no per-tenant I/O slots: every tick runs in full, at every row";
    return;
  }
  const size_t n = plan.tenants.size();
  sp.tenant_in.assign(n, {});
  sp.tenant_out.assign(n, {});
  std::vector<range> outs;
  for (size_t t = 0; t < n; t++) {
    for (const auto& s : plan.io[t].inputs) sp.tenant_in[t].push_back({s.offset, s.bytes});
    for (const auto& s : plan.io[t].outputs) sp.tenant_out[t].push_back({s.offset, s.bytes});
    outs.insert(outs.end(), sp.tenant_out[t].begin(), sp.tenant_out[t].end());
  }
  sp.all_out = cuda_merge_ranges(outs, 0);
  // the gather kernel reads the staging buffer through its host pointer: unified addressing
  int unified = 0;
  if (cudaDeviceGetAttribute(&unified, cudaDevAttrUnifiedAddressing, c.dev.device) == cudaSuccess && unified) {
    sp.staging_in = layout.in;
    sp.staging_in_bytes = layout.in_bytes;
  }
  cudaGetLastError();
  cuda_sparse_build_shares(c, n);
  sp.slot_bytes = worst_table_bytes(c);
  if (sp.slot_bytes > 4 * kSlabBudget) {
    sp.note =
        "the sparse tick's tables would need " + std::to_string(sp.slot_bytes) + " bytes per mask: every tick runs in full, at every row";
    return;
  }
  sp.n_slots = static_cast<int>(std::clamp<size_t>(kSlabBudget / sp.slot_bytes, 1, kMaxMasks));
  CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&sp.pinned), sp.slot_bytes, cudaHostAllocDefault));
  const cudaError_t st = cudaMalloc(&sp.slab, sp.slot_bytes * static_cast<size_t>(sp.n_slots));
  if (st != cudaSuccess) {
    cudaGetLastError();
    sp.slab = nullptr;
    sp.note = std::string("no device memory for the sparse tick's tables (") + cudaGetErrorString(st) +
              "): every tick runs in full, at every row";
    return;
  }
  for (int s = sp.n_slots; s-- > 0;) sp.free_slots.push_back(s);
  sp.available = true;
  if (sp.policy == sparse_policy::automatic) cuda_sparse_calibrate(c);
}

namespace {

// Drops the least recently used entry other than `keep` (any entry when `with_program` is false, else one that
// holds a program and so a table slot); false when there is none.
bool evict_lru(cuda_ctx& c, const mask_entry* keep, bool with_program) {
  sparse_state& sp = c.sparse;
  auto lru = sp.cache.end();
  for (auto it = sp.cache.begin(); it != sp.cache.end(); ++it) {
    if (it->get() == keep || (with_program && !(*it)->prog)) continue;
    if (lru == sp.cache.end() || (*it)->last_use < (*lru)->last_use) lru = it;
  }
  if (lru == sp.cache.end()) return false;
  // staged ticks may still be running the program about to go (its graph, its table slot)
  CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  release_program(c, **lru);
  sp.cache.erase(lru);
  sp.evictions++;
  return true;
}

// Builds the entry's program, first freeing a table slot when none is free; on failure the entry leaves the
// cache (an entry marked sparse always has its program).
void build_entry(cuda_ctx& c, mask_entry& e) {
  sparse_state& sp = c.sparse;
  try {
    if (sp.free_slots.empty() && !evict_lru(c, &e, true)) throw loom_error("sparse tick: no table slot to free (cache bookkeeping)");
    build_program(c, e);
  } catch (...) {
    for (auto it = sp.cache.begin(); it != sp.cache.end(); ++it) {
      if (it->get() != &e) continue;
      sp.cache.erase(it);
      break;
    }
    throw;
  }
}

// A new cache entry for (mask, rows), evicting the least recently used one when the cache is full.
mask_entry& add_entry(cuda_ctx& c, const tenant_mask& mask, int64_t rows) {
  sparse_state& sp = c.sparse;
  if (static_cast<int>(sp.cache.size()) >= kMaxMasks) evict_lru(c, nullptr, false);
  auto e = std::make_unique<mask_entry>();
  e->mask = mask;
  e->rows = rows;
  e->last_use = sp.clock;
  e->id = sp.next_id++;
  sp.cache.push_back(std::move(e));
  return *sp.cache.back();
}

mask_entry* find_entry(sparse_state& sp, const tenant_mask& mask, int64_t rows) {
  for (auto& e : sp.cache) {
    if (e->rows != rows || e->mask != mask) continue;
    e->last_use = sp.clock;
    return e.get();
  }
  return nullptr;
}

// The mask's sparse tick at `rows` when the rule picks one for it, else null.
mask_entry* choose_sparse(cuda_ctx& c, const tenant_mask& active, int64_t rows) {
  sparse_state& sp = c.sparse;
  if (mask_entry* e = find_entry(sp, active, rows)) {
    if (sp.policy == sparse_policy::automatic && e->sparse && e->measured_n >= kTrustAfter &&
        e->measured_us >= kSparseRatio * sp.full_wall_us) {
      e->sparse = false;                               // measured: not worth it after all
      CUDA_CHECK(cudaStreamSynchronize(c.dev.stream)); // a staged tick may still run its graph
      release_program(c, *e);
    }
    sp.last_estimate_us = e->estimate_us;
    return e->sparse ? e : nullptr;
  }
  // the estimate and the measurements are of ticks at every row: a bucket only makes either cheaper
  const double estimate = sp.calibrated ? cuda_sparse_estimate_us(c, active) : -1;
  mask_entry& e = add_entry(c, active, rows);
  e.estimate_us = estimate;
  e.sparse = sp.policy == sparse_policy::always || (sp.calibrated && estimate < kSparseRatio * sp.full_wall_us);
  sp.last_estimate_us = estimate;
  if (e.sparse) build_entry(c, e);
  return e.sparse ? &e : nullptr;
}

// The whole fleet's program at row bucket `rows` (> 0).
mask_entry* whole_at_rows(cuda_ctx& c, int64_t rows) {
  sparse_state& sp = c.sparse;
  const tenant_mask all(sp.tenant_in.size(), 1);
  if (mask_entry* e = find_entry(sp, all, rows)) return e;
  mask_entry& e = add_entry(c, all, rows);
  e.forced = true;
  e.sparse = true;
  build_entry(c, e);
  return &e;
}

} // namespace

mask_entry* cuda_sparse_choose(cuda_ctx& c, const tenant_mask& active, int64_t rows) {
  sparse_state& sp = c.sparse;
  if (!sp.available || active.size() != sp.tenant_in.size()) return nullptr;
  const bool all = std::all_of(active.begin(), active.end(), [](uint8_t a) { return a != 0; });
  if (all && rows <= 0) return nullptr; // the full tick is that
  sp.clock++;
  if (!all && sp.policy != sparse_policy::never)
    if (mask_entry* e = choose_sparse(c, active, rows)) return e;
  return rows > 0 ? whole_at_rows(c, rows) : nullptr;
}

void cuda_note_rows(cuda_ctx& c, const mask_entry* e) {
  c.sparse.last_rows = e ? e->rows : 0;
  if (e && e->rows > 0) c.sparse.bucket_ticks++;
}

bool cuda_sparse_enqueue(cuda_ctx& c, mask_entry& e) {
  sparse_program& p = *e.prog;
  const tick_body body{&p.in, &p.poison, &p.launches, &p.out};
  p.uses++;
  if (p.uses == 1) {
    cuda_enqueue_body(c, body, true, false);
    return false;
  }
  if (!p.exec && !p.capture_failed && c.opts.use_graph) {
    try {
      // capture on an idle stream, as the full tick's graph is captured at load: a staged tick has already
      // enqueued its input copies, and other staged ticks may still be running
      CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
      p.exec = cuda_capture(c, body, false);
      c.sparse.captures++;
    } catch (const loom_error& err) {
      p.capture_failed = true;
      c.sparse.note = std::string("a sparse tick's capture failed, it runs eagerly: ") + err.what();
    }
  }
  if (!p.exec) {
    cuda_enqueue_body(c, body, false, false);
    return false;
  }
  CUDA_CHECK(cudaGraphLaunch(p.exec, c.dev.stream));
  return true;
}

void cuda_sparse_record(cuda_ctx& c, mask_entry& e, double wall_us) {
  e.measured_us = e.measured_n == 0 ? wall_us : std::min(e.measured_us, wall_us);
  e.measured_n++;
  c.sparse.last_measured_us = wall_us;
}

void cuda_sparse_stats(const cuda_ctx& c, backend_stats& out) {
  const sparse_state& sp = c.sparse;
  auto num = [&](const char* k, double v) { out.numbers.emplace_back(k, v); };
  int graphs = 0;
  for (const auto& e : sp.cache) graphs += e->prog && e->prog->exec ? 1 : 0;
  num("sparseTicks", static_cast<double>(sp.sparse_ticks));
  num("fullTicks", static_cast<double>(sp.full_ticks));
  num("sparseAvailable", sp.available && sp.policy != sparse_policy::never ? 1 : 0); // partly occupied ticks may run sparse
  num("rowBucketsAvailable", sp.available ? 1 : 0);                                  // the tables the row-bucket programs need are set up
  num("sparseRatio", kSparseRatio);
  num("sparseMasksCached", static_cast<double>(sp.cache.size()));
  num("sparseGraphs", graphs);
  num("sparseCaptures", static_cast<double>(sp.captures));
  num("sparseEvictions", static_cast<double>(sp.evictions));
  num("sparseTableUploads", static_cast<double>(sp.uploads));
  num("sparseGatheredTicks", static_cast<double>(sp.gathered)); // staged sparse ticks whose inputs the gather kernel moved
  num("sparseTableSlots", sp.n_slots);
  num("sparseSlotBytes", static_cast<double>(sp.slot_bytes));
  num("rowBucketTicksCuda", static_cast<double>(sp.bucket_ticks)); // ticks whose GEMMs ran at a row bucket
  num("lastRowsBucketCuda", static_cast<double>(sp.last_rows));    // the bucket the last tick ran at (0: every row)
  num("sparseCalibrated", sp.calibrated ? 1 : 0);
  num("sparseFullWallUs", sp.full_wall_us);
  num("sparseFullDeviceUs", sp.full_device_us);
  num("sparseFixedUs", sp.fixed_us);
  num("sparseNodeUs", sp.node_us);
  num("sparseHostLaunchUs", sp.host_launch_us);
  num("sparseMinLaunchUs", sp.min_launch_us);
  num("sparseLaunchSumUs", sp.launch_sum_us);
  num("sparseLastEstimateUs", sp.last_estimate_us);
  num("sparseLastMeasuredUs", sp.last_measured_us);
  if (sp.last_bench_sparse >= 0) num("benchSparse", sp.last_bench_sparse);
  out.strings.emplace_back("sparseMode", policy_name(sp.policy));
  if (!sp.note.empty()) out.strings.emplace_back("sparseNote", sp.note);
}

void cuda_sparse_destroy(cuda_ctx& c) {
  sparse_state& sp = c.sparse;
  for (auto& e : sp.cache)
    if (e->prog && e->prog->exec) cudaGraphExecDestroy(e->prog->exec);
  sp.cache.clear();
  if (sp.slab) cudaFree(sp.slab);
  if (sp.pinned) cudaFreeHost(sp.pinned);
  if (sp.scratch) cudaFree(sp.scratch);
  sp.slab = nullptr;
  sp.pinned = nullptr;
  sp.scratch = nullptr;
}

} // namespace loom
