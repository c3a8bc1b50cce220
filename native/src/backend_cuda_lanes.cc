// The tick as a DAG on the CUDA backend: a plan with several lanes (plan.json `lanes`, each launch's `lane`
// and `after`; FORMAT.md "Lanes") runs lane 0 on the tick's stream and every further lane on a stream of its
// own, with its own cuBLAS / cuBLASLt handles and workspace (a cuda_gemm_ctx). The lanes fork from the tick's stream after whatever it
// already holds (the tick's input copies and poison memsets), each launch waits for the launches named in its
// `after`, and every lane joins back into the tick's stream before its output copies. Captured, the forks,
// waits and joins become the graph's edges, so independent launches overlap on the device as each tenant's
// own stream would. The planner decides all of it (src/planner/lanes.ts); this file only follows the plan.
#include <cstdlib>
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

lanes_policy cuda_lanes_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_LANES", lanes_policy::automatic, {{"auto", lanes_policy::automatic}, {"off", lanes_policy::off}});
}

void cuda_lanes_prepare(cuda_ctx& c, const launch_plan& plan, size_t workspace_bytes) {
  cuda_lanes_state& L = c.lanes;
  L.plan_lanes = plan.lanes;
  if (plan.lanes <= 1) {
    L.note = "one lane";
    return;
  }
  if (L.policy == lanes_policy::off) {
    L.note = "LOOM_CUDA_LANES=off: the plan's " + std::to_string(plan.lanes) + " lanes run in plan order on one stream";
    return;
  }
  const size_t n = plan.launches.size();
  if (c.full.launches.size() != n)
    throw loom_error("lanes: the prepared tick has " + std::to_string(c.full.launches.size()) + " launches, the plan " + std::to_string(n));
  L.done.assign(n, nullptr);
  std::vector<bool> waited(n, false);
  for (const launch& l : plan.launches) {
    for (int32_t a : l.after) waited[static_cast<size_t>(a)] = true; // plan_validate: earlier launches of other lanes
    L.waits += static_cast<int>(l.after.size());
  }
  L.extra.resize(static_cast<size_t>(plan.lanes - 1));
  L.join.assign(L.extra.size(), nullptr);
  for (auto& lane : L.extra) {
    cudaStream_t stream = nullptr;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    lane.stream = stream; // owned from here (cuda_lanes_destroy), even if what follows throws
    cuda_gemm_ctx_create(lane, stream);
    cuda_gemm_ctx_allocate(lane, workspace_bytes); // cuBLASLt algorithms were chosen for this workspace size
  }
  CUDA_CHECK(cudaEventCreateWithFlags(&L.fork, cudaEventDisableTiming));
  for (auto& e : L.join) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  for (size_t i = 0; i < n; i++)
    if (waited[i]) CUDA_CHECK(cudaEventCreateWithFlags(&L.done[i], cudaEventDisableTiming));
  L.enabled = true;
  L.note = std::to_string(plan.lanes) + " lanes, " + std::to_string(L.waits) + " cross-lane waits";
}

void cuda_lanes_enqueue(cuda_ctx& c, bool may_fall_back) {
  cuda_lanes_state& L = c.lanes;
  const cuda_gemm_ctx& main = c.dev.gemm;
  auto lane = [&](int32_t i) -> const cuda_gemm_ctx& { return i == 0 ? main : L.extra[static_cast<size_t>(i - 1)]; };
  CUDA_CHECK(cudaEventRecord(L.fork, main.stream));
  for (const auto& x : L.extra) CUDA_CHECK(cudaStreamWaitEvent(x.stream, L.fork, 0));
  for (size_t i = 0; i < c.full.launches.size(); i++) {
    launch_state& s = c.full.launches[i];
    const cuda_gemm_ctx& on = lane(s.l->lane);
    try {
      for (int32_t a : s.l->after) CUDA_CHECK(cudaStreamWaitEvent(on.stream, L.done[static_cast<size_t>(a)], 0));
      cuda_enqueue_launch(c, on, s, may_fall_back);
      if (L.done[i]) CUDA_CHECK(cudaEventRecord(L.done[i], on.stream));
    } catch (const loom_error& e) {
      throw loom_error("launch " + std::to_string(s.l->id) + " '" + s.l->label + "' (lane " + std::to_string(s.l->lane) + "): " + e.what());
    }
  }
  for (size_t k = 0; k < L.extra.size(); k++) {
    CUDA_CHECK(cudaEventRecord(L.join[k], L.extra[k].stream));
    CUDA_CHECK(cudaStreamWaitEvent(main.stream, L.join[k], 0));
  }
}

void cuda_lanes_synchronize(cuda_ctx& c) {
  for (const auto& x : c.lanes.extra)
    if (x.stream) cudaStreamSynchronize(x.stream);
  cudaGetLastError();
}

void cuda_lanes_stats(const cuda_ctx& c, backend_stats& out) {
  out.numbers.emplace_back("lanes", c.lanes.enabled ? c.lanes.plan_lanes : 1);
  out.numbers.emplace_back("planLanes", c.lanes.plan_lanes);
  out.numbers.emplace_back("crossLaneWaits", c.lanes.enabled ? c.lanes.waits : 0);
  out.strings.emplace_back("lanesNote", c.lanes.note);
}

void cuda_lanes_destroy(cuda_ctx& c) {
  cuda_lanes_state& L = c.lanes;
  cuda_lanes_synchronize(c);
  for (auto& e : L.done)
    if (e) cudaEventDestroy(e);
  for (auto& e : L.join)
    if (e) cudaEventDestroy(e);
  if (L.fork) cudaEventDestroy(L.fork);
  for (auto& x : L.extra) {
    cudaStream_t stream = x.stream;
    cuda_gemm_ctx_destroy(x);
    if (stream) cudaStreamDestroy(stream);
  }
  L = cuda_lanes_state{};
  cudaGetLastError();
}

} // namespace loom
