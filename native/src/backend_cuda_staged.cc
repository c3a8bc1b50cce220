// Staged ticks on the CUDA backend (backend_tick_ops submit / wait / finish; tick_staging.h): submitted on the JS
// thread, waited for on a worker, finished on the JS thread. Inputs come from a staging set (pinned, the
// executor's layout), outputs go to a pinned result block; one event per staging set says when its tick is
// done. Ticks of several sets are in flight at once.
//
// Two ways to run one, chosen per tick:
//   direct   H2D from the staging set into the io arena, the launches, D2H into the result block, all on the
//            compute stream: the fewest API calls, for ticks whose copies are short.
//   overlap  H2D into a device copy of the staging set on the copy stream (overlapping the ticks ahead of it),
//            a device-to-device copy into the io arena and the launches on the compute stream, a device-to-device
//            copy of the outputs into a device result buffer, and the D2H from it on the copy stream
//            (overlapping the ticks behind it). For ticks whose host↔device copies take long enough to hide.
// LOOM_CUDA_OVERLAP=never|always|auto (default auto: overlap when the tick copies ≥ kOverlapMinBytes).
#include <algorithm>
#include <cstdlib>
#include <string>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

constexpr int64_t kOverlapMinBytes = int64_t(2) << 20; // ~40-80 µs of PCIe: worth the extra API calls

cuda_staged_slot& staged_slot(cuda_ctx& c, int slot) {
  if (slot < 0 || slot >= kCudaStagedSlots) throw loom_error("staged tick: slot " + std::to_string(slot) + " does not exist");
  cuda_staged_slot& s = c.staged.slots[slot];
  if (!s.done) CUDA_CHECK(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming));
  return s;
}

// The sparse program for this mask when the rule picks one and its copies fit the staging layout.
mask_entry* staged_sparse(cuda_ctx& c, const staged_tick& t) {
  mask_entry* sparse = cuda_sparse_choose(c, *t.active, t.rows);
  if (!sparse) return nullptr;
  for (const auto& r : sparse->prog->in_coarse)
    if (io_host_offset(t.layout->in, r.offset, r.bytes) < 0) return nullptr;
  for (const auto& r : sparse->prog->out)
    if (io_host_offset(t.layout->out, r.offset, r.bytes) < 0) return nullptr;
  return sparse;
}

// Whether a tick's staging layout is the one the sparse programs' gather moves were built for (the executor
// makes it from the plan with the same gap: a check, not a conversion).
bool same_layout(const std::vector<io_span>& in, int64_t in_bytes, const sparse_state& sp) {
  return in.size() == sp.staging_in.size() && in_bytes == sp.staging_in_bytes &&
         (in.empty() || (in.front().offset == sp.staging_in.front().offset && in.back().host == sp.staging_in.back().host));
}

bool want_overlap(const cuda_ctx& c, int64_t copy_bytes) {
  switch (c.staged.overlap) {
    case overlap_policy::never: return false;
    case overlap_policy::always: return true;
    case overlap_policy::automatic: return copy_bytes >= kOverlapMinBytes;
  }
  return false;
}

// The overlap mode's per-set device buffers, streams and events, made on first need.
void ensure_overlap(cuda_ctx& c, cuda_staged_slot& s, const io_layout& l) {
  if (!c.staged.copy_stream) CUDA_CHECK(cudaStreamCreateWithFlags(&c.staged.copy_stream, cudaStreamNonBlocking));
  if (!s.h2d) CUDA_CHECK(cudaEventCreateWithFlags(&s.h2d, cudaEventDisableTiming));
  if (!s.computed) CUDA_CHECK(cudaEventCreateWithFlags(&s.computed, cudaEventDisableTiming));
  if (!s.d_in) CUDA_CHECK(cudaMalloc(&s.d_in, static_cast<size_t>(std::max<int64_t>(l.in_bytes, 1))));
  if (!s.d_out) CUDA_CHECK(cudaMalloc(&s.d_out, static_cast<size_t>(std::max<int64_t>(l.out_bytes, 1))));
}

// Buffer-to-buffer copies of io ranges between two buffers of the staging layout (host staging ⇄ its device copy).
void copy_layout(const std::vector<range>& rs, const std::vector<io_span>& spans, void* dst, const void* src, cudaMemcpyKind kind,
                 cudaStream_t stream) {
  for (const auto& r : rs) {
    if (r.bytes <= 0) continue;
    const int64_t h = cuda_staging_offset(r, &spans);
    CUDA_CHECK(
        cudaMemcpyAsync(static_cast<uint8_t*>(dst) + h, static_cast<const uint8_t*>(src) + h, static_cast<size_t>(r.bytes), kind, stream));
  }
}

bool enqueue_launches(cuda_ctx& c, mask_entry* sparse) {
  if (sparse) return cuda_sparse_enqueue(c, *sparse);
  cuda_launch_full_compute(c);
  return c.graph.captured;
}

} // namespace

overlap_policy cuda_overlap_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_OVERLAP", overlap_policy::automatic,
                         {{"never", overlap_policy::never}, {"always", overlap_policy::always}, {"auto", overlap_policy::automatic}});
}

void cuda_staged_submit(void* ctx, const staged_tick& t) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  cuda_check_usable(c);
  cuda_staged_slot& slot = staged_slot(c, t.slot);
  try {
    mask_entry* sparse = staged_sparse(c, t);
    cuda_note_rows(c, sparse);
    const std::vector<range>& ins = sparse ? sparse->prog->in_coarse : c.full.in_ranges;
    const std::vector<range>& outs = sparse ? sparse->prog->out : c.full.out_ranges;
    const bool gather = sparse && sparse->prog->n_gather > 0 && same_layout(t.layout->in, t.layout->in_bytes, c.sparse);
    const bool overlap = !gather && want_overlap(c, cuda_range_bytes(ins) + cuda_range_bytes(outs));
    bool graphed = false;
    if (gather) {
      const sparse_program& p = *sparse->prog;
      CUDA_CHECK(cuda_launch_io_gather(reinterpret_cast<const cuda_io_move*>(p.gather), p.n_gather, t.in,
                                       reinterpret_cast<void*>(c.mem.io()), c.dev.stream));
      c.sparse.gathered++;
    }
    if (!overlap) {
      cuda_fail_if_armed(c);
      if (!gather) cuda_enqueue_copies_in(c, ins, t.in, &t.layout->in);
      graphed = enqueue_launches(c, sparse);
      cuda_enqueue_copies_out(c, outs, t.out, &t.layout->out);
      CUDA_CHECK(cudaEventRecord(slot.done, c.dev.stream));
    } else {
      ensure_overlap(c, slot, *t.layout);
      const cudaStream_t cs = c.staged.copy_stream;
      // the set's device buffers are free: its previous tick was finished before the set came back
      copy_layout(ins, t.layout->in, slot.d_in, t.in, cudaMemcpyHostToDevice, cs);
      CUDA_CHECK(cudaEventRecord(slot.h2d, cs));
      CUDA_CHECK(cudaStreamWaitEvent(c.dev.stream, slot.h2d, 0));
      cuda_enqueue_io_copies(c, ins, slot.d_in, &t.layout->in, true, cudaMemcpyDeviceToDevice, c.dev.stream);
      cuda_fail_if_armed(c);
      graphed = enqueue_launches(c, sparse);
      cuda_enqueue_io_copies(c, outs, slot.d_out, &t.layout->out, false, cudaMemcpyDeviceToDevice, c.dev.stream);
      CUDA_CHECK(cudaEventRecord(slot.computed, c.dev.stream));
      CUDA_CHECK(cudaStreamWaitEvent(cs, slot.computed, 0));
      copy_layout(outs, t.layout->out, t.out, slot.d_out, cudaMemcpyDeviceToHost, cs);
      CUDA_CHECK(cudaEventRecord(slot.done, cs));
      c.staged.overlapped++;
    }
    slot.sparse_id = sparse ? sparse->id : 0;
    slot.whole = sparse && sparse->forced;
    slot.graphed = graphed;
    slot.alone = c.staged.in_flight == 0;
    c.staged.in_flight++;
  } catch (...) {
    c.fault.armed = false;
    c.fault.failed_ticks++;
    if (c.staged.copy_stream) cudaStreamSynchronize(c.staged.copy_stream);
    cuda_recover(c);
    throw;
  }
}

void cuda_staged_wait(void* ctx, int slot) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  if (slot < 0 || slot >= kCudaStagedSlots || !c.staged.slots[slot].done)
    throw loom_error("staged tick: slot " + std::to_string(slot) + " has no tick");
  cudaEvent_t ev = c.staged.slots[slot].done;
  CUDA_CHECK(cudaSetDevice(c.dev.device));
  CUDA_CHECK(cudaEventSynchronize(ev));
}

void cuda_staged_finish(void* ctx, int slot, double wall_us) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  if (slot < 0 || slot >= kCudaStagedSlots) return;
  cuda_staged_slot& s = c.staged.slots[slot];
  c.staged.in_flight = std::max(0, c.staged.in_flight - 1);
  c.staged.ticks++;
  if (s.sparse_id == 0 || s.whole) c.sparse.full_ticks++;
  else c.sparse.sparse_ticks++;
  if (s.sparse_id == 0) return;
  if (!s.graphed || !s.alone) return;
  for (auto& e : c.sparse.cache)
    if (e->id == s.sparse_id && e->prog) cuda_sparse_record(c, *e, wall_us);
}

void cuda_staged_destroy(cuda_ctx& c) {
  if (c.staged.copy_stream) cudaStreamSynchronize(c.staged.copy_stream); // its copies read and write the buffers below
  for (auto& s : c.staged.slots) {
    if (s.done) cudaEventDestroy(s.done);
    if (s.h2d) cudaEventDestroy(s.h2d);
    if (s.computed) cudaEventDestroy(s.computed);
    if (s.d_in) cudaFree(s.d_in);
    if (s.d_out) cudaFree(s.d_out);
    s = cuda_staged_slot{};
  }
  if (c.staged.copy_stream) {
    cudaStreamSynchronize(c.staged.copy_stream);
    cudaStreamDestroy(c.staged.copy_stream);
    c.staged.copy_stream = nullptr;
  }
}

uint8_t* cuda_pinned_alloc(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaHostAlloc(&p, std::max<size_t>(bytes, 1), cudaHostAllocPortable);
  if (e != cudaSuccess) {
    cudaGetLastError();
    throw loom_error("CUDA backend: cannot allocate " + std::to_string(bytes) + " bytes of pinned host memory for tick staging (" +
                     cudaGetErrorString(e) + ")");
  }
  return static_cast<uint8_t*>(p);
}

void cuda_pinned_free(uint8_t* p) {
  if (p) cudaFreeHost(p);
}

} // namespace loom
