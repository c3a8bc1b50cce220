// Timing on the CUDA backend: replaying a tick (full or, for a mask, as run_tick would run it), the device
// time of each launch of an eager tick, and the space-only baseline of several plans' ticks launched at once
// on their own streams. Host-side staging copies are never part of a measurement.
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

constexpr int kWarmup = 10;

// Events destroyed however the scope is left.
struct event_set {
  std::vector<cudaEvent_t> ev;
  event_set(size_t n, unsigned flags) : ev(n, nullptr) {
    for (auto& e : ev) CUDA_CHECK(cudaEventCreateWithFlags(&e, flags));
  }
  ~event_set() {
    for (auto e : ev)
      if (e) cudaEventDestroy(e);
  }
  event_set(const event_set&) = delete;
  event_set& operator=(const event_set&) = delete;
};

double us_between(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  return static_cast<double>(ms) * 1000.0;
}

} // namespace

void cuda_launch_full_compute(cuda_ctx& c) {
  if (c.graph.captured) CUDA_CHECK(cudaGraphLaunch(c.graph.exec, c.dev.stream));
  else cuda_enqueue_body(c, cuda_full_body(c), false, false);
}

void cuda_launch_full(cuda_ctx& c) {
  cuda_enqueue_copies_in(c, c.full.in_ranges, c.mem.pin_in, nullptr);
  cuda_launch_full_compute(c);
  cuda_enqueue_copies_out(c, c.full.out_ranges, c.mem.pin_out, nullptr);
}

void cuda_profile_launches(cuda_ctx& c, std::vector<double>& per_launch_us, double& host_us_per_api_launch) {
  event_set ev(c.full.launches.size() + 1, cudaEventDefault);
  double host_us = 0;
  for (int round = 0; round < 2; round++) { // the first round warms caches and clocks
    const auto t0 = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaEventRecord(ev.ev[0], c.dev.stream));
    for (size_t i = 0; i < c.full.launches.size(); i++) {
      try {
        cuda_enqueue_launch(c, c.full.launches[i], false);
      } catch (const loom_error& e) {
        throw loom_error("profiling launch " + std::to_string(c.full.launches[i].l->id) + " '" + c.full.launches[i].l->label +
                         "': " + e.what());
      }
      CUDA_CHECK(cudaEventRecord(ev.ev[i + 1], c.dev.stream));
    }
    host_us = cuda_since_us(t0);
    CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  }
  per_launch_us.assign(c.full.launches.size(), 0.0);
  int api = 0;
  for (size_t i = 0; i < c.full.launches.size(); i++) {
    per_launch_us[i] = us_between(ev.ev[i], ev.ev[i + 1]);
    api += c.sparse.src.size() == c.full.launches.size() ? c.sparse.src[i].api_launches : 1;
  }
  // the host time includes one event record per launch: an upper bound of the launch cost
  host_us_per_api_launch = api > 0 ? host_us / api : 0.0;
}

void cuda_profile_tick(void* ctx, std::vector<std::pair<int32_t, double>>& per_launch) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  std::vector<double> us;
  double host = 0;
  cuda_profile_launches(c, us, host);
  per_launch.clear();
  for (size_t i = 0; i < c.full.launches.size(); i++) per_launch.emplace_back(c.full.launches[i].l->id, us[i]);
}

void cuda_bench_tick(void* ctx, int iters, const tenant_mask* active, std::vector<double>& wall_us, std::vector<double>& device_us) {
  cuda_ctx& c = cuda_ctx_of(ctx);
  cuda_bind(c);
  if (iters < 1) throw loom_error("benchTick needs iters >= 1, got " + std::to_string(iters));
  mask_entry* sparse = active ? cuda_sparse_choose(c, *active, 0) : nullptr;
  if (active) c.sparse.last_bench_sparse = sparse ? 1 : 0;
  wall_us.clear();
  device_us.clear();
  for (int i = 0; i < kWarmup + iters; i++) {
    const auto t0 = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaEventRecord(c.dev.ev0, c.dev.stream));
    bool graphed = c.graph.captured;
    if (sparse) {
      const sparse_program& p = *sparse->prog;
      if (p.n_gather > 0)
        CUDA_CHECK(cuda_launch_io_gather(reinterpret_cast<const cuda_io_move*>(p.gather) + p.n_gather, p.n_gather, c.mem.pin_in,
                                         reinterpret_cast<void*>(c.mem.io()), c.dev.stream));
      else cuda_enqueue_copies_in(c, p.in, c.mem.pin_in, nullptr);
      graphed = cuda_sparse_enqueue(c, *sparse);
      cuda_enqueue_copies_out(c, sparse->prog->out, c.mem.pin_out, nullptr);
    } else {
      cuda_launch_full(c);
    }
    CUDA_CHECK(cudaEventRecord(c.dev.ev1, c.dev.stream));
    CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
    const double wall = cuda_since_us(t0);
    if (sparse && graphed) cuda_sparse_record(c, *sparse, wall);
    if (i < kWarmup) continue;
    wall_us.push_back(wall);
    device_us.push_back(us_between(c.dev.ev0, c.dev.ev1));
  }
}

// The executor (executor::bench_concurrent) has checked iters >= 1 and that every plan is distinct and
// locked; here what is CUDA's: each is this backend, all on one device (and a list to index).
void cuda_bench_concurrent(const std::vector<backend*>& backends, int iters, std::vector<double>& wall_us, std::vector<double>& device_us) {
  if (backends.empty()) throw loom_error("concurrent bench needs at least one CUDA backend");
  std::vector<cuda_ctx*> cs;
  for (size_t i = 0; i < backends.size(); i++) {
    if (!backends[i] || !cuda_backend_is(*backends[i]))
      throw loom_error("concurrent bench: backend " + std::to_string(i) + " is not a CUDA backend");
    cuda_ctx* c = &cuda_ctx_of(backends[i]->ctx);
    if (!cs.empty() && cs[0]->dev.device != c->dev.device) {
      throw loom_error("concurrent bench: backend " + std::to_string(i) + " is on GPU " + std::to_string(c->dev.device) +
                       ", backend 0 on GPU " + std::to_string(cs[0]->dev.device) + " (all must share one device)");
    }
    cs.push_back(c);
  }
  // all share device 0's primary context: binding the first makes every stream usable from this thread
  cuda_bind(*cs[0]);
  event_set timing(2, cudaEventDefault);              // start, end on the first stream
  event_set joins(cs.size(), cudaEventDisableTiming); // each other stream's end
  const cudaStream_t s0 = cs[0]->dev.stream;
  wall_us.clear();
  device_us.clear();
  for (int round = 0; round < kWarmup + iters; round++) {
    const auto t0 = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaEventRecord(timing.ev[0], s0));
    for (size_t i = 1; i < cs.size(); i++) CUDA_CHECK(cudaStreamWaitEvent(cs[i]->dev.stream, timing.ev[0], 0));
    for (size_t i = 0; i < cs.size(); i++) {
      try {
        cuda_launch_full(*cs[i]);
      } catch (const loom_error& e) {
        throw loom_error("concurrent bench, backend " + std::to_string(i) + ": " + e.what());
      }
    }
    for (size_t i = 1; i < cs.size(); i++) {
      CUDA_CHECK(cudaEventRecord(joins.ev[i], cs[i]->dev.stream));
      CUDA_CHECK(cudaStreamWaitEvent(s0, joins.ev[i], 0));
    }
    CUDA_CHECK(cudaEventRecord(timing.ev[1], s0));
    CUDA_CHECK(cudaStreamSynchronize(s0));
    const double wall = cuda_since_us(t0);
    if (round < kWarmup) continue;
    wall_us.push_back(wall);
    device_us.push_back(us_between(timing.ev[0], timing.ev[1]));
  }
}

} // namespace loom
