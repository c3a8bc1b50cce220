// The tick as a DAG on the CUDA backend: a plan with several lanes (plan.json `lanes`, each launch's `lane`
// and `after`; FORMAT.md "Lanes") runs lane 0 on the tick's stream and every further lane on a stream of its
// own, with its own cuBLAS / cuBLASLt handles and workspace (a cuda_gemm_ctx). The lanes fork from the tick's stream after whatever it
// already holds (the tick's input copies and poison memsets), each launch waits for the launches named in its
// `after`, and every lane joins back into the tick's stream before its output copies. Captured, the forks,
// waits and joins become the graph's edges, so independent launches overlap on the device as each tenant's
// own stream would. The planner decides all of it (src/planner/lanes.ts); this file only follows the plan.
// The plan's `priorityLanes` (the critical path's lanes) get streams of the device's highest priority; captured,
// their kernel nodes keep that priority (cudaGraphInstantiateFlagUseNodePriority, backend_cuda_enqueue.cc), so
// where lanes contend for SMs the critical chains' blocks are dispatched first. Lane 0 is then a stream of its
// own too, forked and joined like the others (the tick's stream keeps the copies).
#include <cstdlib>
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

lanes_policy cuda_lanes_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_LANES", lanes_policy::automatic, {{"auto", lanes_policy::automatic}, {"off", lanes_policy::off}});
}

priority_policy cuda_priority_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_PRIORITY", priority_policy::automatic,
                         {{"auto", priority_policy::automatic}, {"off", priority_policy::off}});
}

namespace {

// A lane's stream with its GEMM handles and workspace, at the device's highest priority when `high`.
void open_lane(cuda_gemm_ctx& lane, bool high, size_t workspace_bytes) {
  int least = 0, greatest = 0;
  CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, high ? greatest : least));
  lane.stream = stream; // owned from here (cuda_lanes_destroy), even if what follows throws
  cuda_gemm_ctx_create(lane, stream);
  cuda_gemm_ctx_allocate(lane, workspace_bytes); // cuBLASLt algorithms were chosen for this workspace size
}

void close_lane(cuda_gemm_ctx& x) {
  cudaStream_t stream = x.stream;
  cuda_gemm_ctx_destroy(x);
  if (stream) cudaStreamDestroy(stream);
  x = cuda_gemm_ctx{};
}

} // namespace

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
  std::vector<bool> high(static_cast<size_t>(plan.lanes), false);
  if (L.priority == priority_policy::automatic)
    for (int32_t l : plan.priority_lanes) high[static_cast<size_t>(l)] = true; // plan_validate: in range, once each
  L.extra.resize(static_cast<size_t>(plan.lanes - 1));
  L.join.assign(L.extra.size() + (high[0] ? 1 : 0), nullptr); // per extra lane, and lane 0's own stream when it has one
  for (size_t k = 0; k < L.extra.size(); k++) open_lane(L.extra[k], high[k + 1], workspace_bytes);
  if (high[0]) open_lane(L.first, true, workspace_bytes);
  for (bool h : high) L.high += h ? 1 : 0;
  CUDA_CHECK(cudaEventCreateWithFlags(&L.fork, cudaEventDisableTiming));
  for (auto& e : L.join) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  for (size_t i = 0; i < n; i++)
    if (waited[i]) CUDA_CHECK(cudaEventCreateWithFlags(&L.done[i], cudaEventDisableTiming));
  L.enabled = true;
  L.note = std::to_string(plan.lanes) + " lanes, " + std::to_string(L.waits) + " cross-lane waits";
  if (L.high > 0) L.note += ", " + std::to_string(L.high) + " at high priority (the critical path)";
  else if (!plan.priority_lanes.empty()) L.note += "; LOOM_CUDA_PRIORITY=off: the plan's priority lanes run at normal priority";
}

void cuda_lanes_enqueue(cuda_ctx& c, bool may_fall_back) {
  cuda_lanes_state& L = c.lanes;
  const cuda_gemm_ctx& main = c.dev.gemm;
  auto lane = [&](int32_t i) -> const cuda_gemm_ctx& {
    return i == 0 ? (L.first.stream ? L.first : main) : L.extra[static_cast<size_t>(i - 1)];
  };
  CUDA_CHECK(cudaEventRecord(L.fork, main.stream));
  for (const auto& x : L.extra) CUDA_CHECK(cudaStreamWaitEvent(x.stream, L.fork, 0));
  if (L.first.stream) CUDA_CHECK(cudaStreamWaitEvent(L.first.stream, L.fork, 0));
  // per lane: whether its last work is a Loom kernel (programmatic launch: cuda_pdl_state); the fork is not
  std::vector<uint8_t> after_kernel(L.extra.size() + 1, 0);
  for (size_t i = 0; i < c.full.launches.size(); i++) {
    launch_state& s = c.full.launches[i];
    const cuda_gemm_ctx& on = lane(s.l->lane);
    uint8_t& last = after_kernel[static_cast<size_t>(s.l->lane)];
    try {
      for (int32_t a : s.l->after) CUDA_CHECK(cudaStreamWaitEvent(on.stream, L.done[static_cast<size_t>(a)], 0));
      if (!s.l->after.empty()) last = 0; // a cross-lane wait: an ordinary edge
      last = cuda_enqueue_launch(c, on, s, may_fall_back, last != 0) ? 1 : 0;
      if (L.done[i]) CUDA_CHECK(cudaEventRecord(L.done[i], on.stream));
    } catch (const loom_error& e) {
      throw loom_error("launch " + std::to_string(s.l->id) + " '" + s.l->label + "' (lane " + std::to_string(s.l->lane) + "): " + e.what());
    }
  }
  for (size_t k = 0; k < L.extra.size(); k++) {
    CUDA_CHECK(cudaEventRecord(L.join[k], L.extra[k].stream));
    CUDA_CHECK(cudaStreamWaitEvent(main.stream, L.join[k], 0));
  }
  if (L.first.stream) {
    CUDA_CHECK(cudaEventRecord(L.join.back(), L.first.stream));
    CUDA_CHECK(cudaStreamWaitEvent(main.stream, L.join.back(), 0));
  }
}

void cuda_lanes_synchronize(cuda_ctx& c) {
  for (const auto& x : c.lanes.extra)
    if (x.stream) cudaStreamSynchronize(x.stream);
  if (c.lanes.first.stream) cudaStreamSynchronize(c.lanes.first.stream);
  cudaGetLastError();
}

void cuda_lanes_stats(const cuda_ctx& c, backend_stats& out) {
  out.numbers.emplace_back("lanes", c.lanes.enabled ? c.lanes.plan_lanes : 1);
  out.numbers.emplace_back("planLanes", c.lanes.plan_lanes);
  out.numbers.emplace_back("crossLaneWaits", c.lanes.enabled ? c.lanes.waits : 0);
  out.numbers.emplace_back("priorityLanes", c.lanes.enabled ? c.lanes.high : 0);
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
  for (auto& x : L.extra) close_lane(x);
  close_lane(L.first);
  const lanes_policy policy = L.policy; // read from the environment once, at create: kept for a next plan
  const priority_policy priority = L.priority;
  L = cuda_lanes_state{};
  L.policy = policy;
  L.priority = priority;
  cudaGetLastError();
}

} // namespace loom
