// The measurements behind the sparse tick's choice (backend_cuda_sparse.cc). At load, with
// LOOM_CUDA_SPARSE=auto: the full tick's replay time (host wall, launch to synchronize, and device time),
// each launch's device time in an eager tick, the host cost of one API launch, the fixed cost of any tick (a
// one-node graph) and what the full graph costs per node beyond that. A mask's sparse tick is estimated as
// fixed cost + Σ over launches with live work of (the launch's device time × the live tenants' share of its
// work, at least the cheapest launch measured) + per-node cost (graph) or host launch cost (eager).
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Host wall (launch to synchronize) of a one-node tick: what any tick costs before its work.
double fixed_cost_us(cuda_ctx& c) {
  sparse_state& sp = c.sparse;
  CUDA_CHECK(cudaMalloc(&sp.scratch, 256));
  cudaGraphExec_t exec = nullptr;
  if (c.opts.use_graph) {
    CUDA_CHECK(cudaStreamBeginCapture(c.dev.stream, cudaStreamCaptureModeThreadLocal));
    const cudaError_t st = cudaMemsetAsync(sp.scratch, 0, 4, c.dev.stream);
    cudaGraph_t g = nullptr;
    const cudaError_t end = cudaStreamEndCapture(c.dev.stream, &g);
    if (st != cudaSuccess || end != cudaSuccess) {
      if (g) cudaGraphDestroy(g);
      CUDA_CHECK(st);
      CUDA_CHECK(end);
    }
    const cudaError_t inst = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    CUDA_CHECK(inst);
  }
  std::vector<double> wall;
  try {
    for (int i = 0; i < 9; i++) {
      const auto t0 = std::chrono::steady_clock::now();
      if (exec) CUDA_CHECK(cudaGraphLaunch(exec, c.dev.stream));
      else CUDA_CHECK(cudaMemsetAsync(sp.scratch, 0, 4, c.dev.stream));
      CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
      if (i >= 2) wall.push_back(cuda_since_us(t0));
    }
  } catch (...) {
    if (exec) cudaGraphExecDestroy(exec);
    throw;
  }
  if (exec) cudaGraphExecDestroy(exec);
  return median(wall);
}

} // namespace

// tenant → (launch, the tenant's share of that launch's work: GEMM flops, kernel work items, epilogue elements)
void cuda_sparse_build_shares(cuda_ctx& c, size_t n_tenants) {
  sparse_state& sp = c.sparse;
  sp.by_tenant.assign(n_tenants, {});
  std::vector<double> w(n_tenants);
  for (size_t i = 0; i < c.full.launches.size(); i++) {
    const launch_state& s = c.full.launches[i];
    const launch_src& src = sp.src[i];
    std::fill(w.begin(), w.end(), 0.0);
    double total = 0;
    auto add = [&](int32_t t, double x) {
      total += x;
      if (t >= 0 && static_cast<size_t>(t) < n_tenants) w[t] += x;
    };
    for (size_t k = 0; k < s.calls.size(); k++) {
      const gemm_call& g = s.calls[k];
      const auto& es = src.call_entries[k];
      if (g.mode == gemm_mode::grouped || g.mode == gemm_mode::grouped_split) {
        size_t j = 0;
        for (size_t q = 0; q < g.gsize.size(); q++)
          for (int r = 0; r < g.gsize[q] && j < es.size(); r++, j++) add(es[j]->tenant, double(g.gm[q]) * g.gn[q] * g.gk[q]);
      } else {
        for (const gemm_entry* e : es) add(e->tenant, double(g.m) * g.n * g.k);
      }
    }
    if (s.calls.empty())
      for (size_t j = 0; j < src.jobs.size(); j++) add(src.job_tenants[j], double(src.jobs[j].m) * src.jobs[j].n);
    if (s.nsegs > 0)
      for (size_t j = 0; j < src.segs.size(); j++) add(src.seg_tenants[j], double(src.segs[j].work));
    if (total <= 0) continue;
    for (size_t t = 0; t < n_tenants; t++)
      if (w[t] > 0) sp.by_tenant[t].emplace_back(i, w[t] / total);
  }
}

double cuda_sparse_estimate_us(const cuda_ctx& c, const tenant_mask& m) {
  const sparse_state& sp = c.sparse;
  std::vector<double> f(c.full.launches.size(), 0.0);
  std::vector<range> ins, outs;
  for (size_t t = 0; t < m.size(); t++) {
    if (!m[t]) continue;
    for (const auto& [i, share] : sp.by_tenant[t]) f[i] += share;
    ins.insert(ins.end(), sp.tenant_in[t].begin(), sp.tenant_in[t].end());
    outs.insert(outs.end(), sp.tenant_out[t].begin(), sp.tenant_out[t].end());
  }
  // the tick's copies are API calls around its graph, one per merged range (as the staged tick copies them)
  const size_t copies = cuda_merge_ranges(ins, kStagingMergeGap).size() + cuda_merge_ranges(outs, kStagingMergeGap).size();
  const bool graph = c.opts.use_graph;
  double est = sp.fixed_us + static_cast<double>(copies) * sp.host_launch_us;
  for (size_t i = 0; i < f.size(); i++) {
    if (f[i] <= 0) continue;
    const double device = std::max(sp.min_launch_us, sp.launch_us[i] * std::min(1.0, f[i]));
    const double api = sp.src[i].api_launches;
    est += graph ? device + sp.node_us * api : std::max(device, sp.host_launch_us * api);
  }
  return est;
}

void cuda_sparse_calibrate(cuda_ctx& c) {
  sparse_state& sp = c.sparse;
  std::vector<double> wall, device;
  for (int i = 0; i < 9; i++) {
    const auto t0 = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaEventRecord(c.dev.ev0, c.dev.stream));
    cuda_launch_full(c);
    CUDA_CHECK(cudaEventRecord(c.dev.ev1, c.dev.stream));
    CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
    const double w = cuda_since_us(t0);
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, c.dev.ev0, c.dev.ev1));
    if (i < 2) continue;
    wall.push_back(w);
    device.push_back(static_cast<double>(ms) * 1000.0);
  }
  sp.full_wall_us = median(wall);
  sp.full_device_us = median(device);
  cuda_profile_launches(c, sp.launch_us, sp.host_launch_us);
  sp.launch_sum_us = 0;
  sp.min_launch_us = -1;
  for (size_t i = 0; i < sp.launch_us.size(); i++) {
    sp.launch_sum_us += sp.launch_us[i];
    if (sp.src[i].api_launches > 0 && (sp.min_launch_us < 0 || sp.launch_us[i] < sp.min_launch_us)) sp.min_launch_us = sp.launch_us[i];
  }
  sp.min_launch_us = std::max(0.0, sp.min_launch_us);
  sp.fixed_us = fixed_cost_us(c);
  // what the full graph costs beyond its fixed cost and its launches' device time, per node
  sp.node_us =
      c.graph.captured && c.graph.nodes > 0 ? std::max(0.0, (sp.full_wall_us - sp.fixed_us - sp.launch_sum_us) / c.graph.nodes) : 0.0;
  sp.calibrated = true;
}

} // namespace loom
