// The path each gemm launch runs, chosen once at load after warm-up (cuda_choose_gemm_paths): today's call
// (cuBLAS, or the skinny-GEMM kernel where cuda_choose_gemv measured it faster) followed by the epilogue
// kernel; the skinny-GEMM kernel applying the epilogue in its store; cuBLASLt with the epilogue fused where
// it is exact (else the plain product and the epilogue kernel), over a few heuristic algorithms (split-K ones
// among them: the heuristic sees the workspace). Each candidate is timed as the whole launch (its GEMM and,
// unless fused, its epilogue kernel), so today's path is always one of them and the fastest wins; a fused
// candidate wins near ties (kFusedTie): one launch and one graph node less in the tick. With LOOM_CUDA_TILE=auto
// (the default) the tiled kernel (any rows, f32) with the epilogue in its store is a
// candidate for every f32 launch with an epilogue: a conv's per-channel bias has no cuBLASLt form, so without
// it such a launch is always two graph nodes. A residual addend (a folded Add) rides in the skinny and tiled
// kernels' store too, and into cuBLASLt as its C (beta 1) where no full bias takes C. gemm_grouped launches keep their path
// (cuda_choose_grouped). The choice per launch is reported in handleInfo (gemmPaths).
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backend_cuda_ctx.h"

namespace loom {

namespace {

constexpr int kLtCandidates = 4;   // heuristic algorithms timed per launch
constexpr double kFusedTie = 1.03; // a fused path within 3% of the fastest unfused one is taken

struct candidate {
  gemm_mode mode = gemm_mode::strided;
  bool fused = false;
  bool tiled = false;
  cuda_lt_plan* lt = nullptr;
  int algo = 0;
  int splits = 1; // tiled: the split-K count (backend_cuda_split_k.cc)
  double us = -1; // < 0: not measured (the only candidate) or failed
  std::string failed;
};

bool strided_layout(gemm_mode m) { return m == gemm_mode::strided || m == gemm_mode::gemv_strided || m == gemm_mode::lt_strided; }

gemm_mode gemv_twin(gemm_mode m) { return strided_layout(m) ? gemm_mode::gemv_strided : gemm_mode::gemv_batched; }

void apply(cuda_ctx& c, gemm_call& g, const candidate& k) {
  g.mode = k.mode;
  g.fused = k.fused;
  g.tiled = k.tiled;
  g.lt = k.lt;
  if (k.lt) k.lt->chosen = k.algo;
  cuda_split_k_use_scratch(c, g, k.tiled ? k.splits : 1);
}

// Whether the skinny-GEMM kernel (or with `tiled`, the tiled one) can run g with its launch's epilogue in its store.
bool gemv_can_fuse(const gemm_call& g, bool tiled) {
  if (!g.epi.needed) return false;
  gemm_call f = g;
  f.mode = gemv_twin(g.mode);
  f.fused = true;
  f.tiled = tiled;
  if (strided_layout(f.mode) && ((g.epi.bias_mode != 0 && !g.epi.bias_strided) || (g.epi.residual && !g.epi.res_strided))) return false;
  return cuda_gemv_eligible(f);
}

// k as the launch's path, g its call with k applied.
std::string describe(const candidate& k, const gemm_call& g, bool has_epilogue) {
  std::string d;
  if (k.mode == gemm_mode::lt_strided) d = "cublasLt algo " + std::to_string(k.algo) + " (" + k.lt->form + ")";
  else if (gemm_mode_is_gemv(k.mode))
    d = std::string(k.tiled                     ? "tiled kernel"
                    : cuda_gemv_args_of(g).swap ? "skinny kernel, transposed"
                                                : "skinny kernel") +
        (k.tiled && k.splits > 1 ? ", split-K " + std::to_string(k.splits) : "") + (k.fused ? ", epilogue fused" : "");
  else d = k.mode == gemm_mode::batched ? "cublas batched" : "cublas strided";
  if (has_epilogue && !k.fused && k.mode != gemm_mode::lt_strided) d += " + epilogue kernel";
  if (k.us >= 0) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " %.1f us", k.us);
    d += buf;
  }
  return d;
}

const char* fuse_name(fuse_policy p) {
  switch (p) {
    case fuse_policy::automatic: return "auto";
    case fuse_policy::never: return "never";
    case fuse_policy::force: return "force";
  }
  return "?";
}

const char* lt_name(lt_policy p) {
  switch (p) {
    case lt_policy::automatic: return "auto";
    case lt_policy::off: return "off";
    case lt_policy::force: return "force";
  }
  return "?";
}

template <typename P>
void keep_only(std::vector<candidate>& cands, P pred) {
  std::vector<candidate> kept;
  for (const auto& k : cands)
    if (pred(k)) kept.push_back(k);
  if (!kept.empty()) cands = std::move(kept);
}

// The fastest measured candidate, a fused one within kFusedTie of the fastest unfused one winning; -1 when
// none ran.
int pick(const std::vector<candidate>& cands) {
  int best_fused = -1, best_plain = -1;
  for (size_t i = 0; i < cands.size(); i++) {
    if (cands[i].us < 0) continue;
    int& b = cands[i].fused ? best_fused : best_plain;
    if (b < 0 || cands[i].us < cands[static_cast<size_t>(b)].us) b = static_cast<int>(i);
  }
  if (best_fused < 0) return best_plain;
  if (best_plain < 0 || cands[static_cast<size_t>(best_fused)].us <= kFusedTie * cands[static_cast<size_t>(best_plain)].us)
    return best_fused;
  return best_plain;
}

// g as a cuBLASLt matmul with its heuristic's candidate algorithms, or null with `why` (no algorithm, or a
// descriptor attribute this cuBLASLt refuses: then no cuBLASLt candidate, today's path still runs).
std::unique_ptr<cuda_lt_plan> lt_plan_for(cuda_ctx& c, const gemm_call& g, std::string& why) {
  const cublasComputeType_t compute = g.ab == CUDA_R_32F ? c.dev.compute : CUBLAS_COMPUTE_32F;
  try {
    return cuda_lt_plan_make(c.dev.gemm, g, compute, c.gemm.fuse != fuse_policy::never, kLtCandidates, why);
  } catch (const loom_error& e) {
    why = e.what();
    return nullptr;
  }
}

// A launch whose call shape was measured before (cuda_choice_memo) takes that launch's winner: rebuilt here
// (a cuBLASLt winner gets this call's own plan, the same heuristic's algorithm by index) and run once eagerly, so a
// fault still names this launch. False, leaving g as it was, when the winner cannot be rebuilt: then it is timed.
bool reuse_choice(cuda_ctx& c, launch_state& s, const cuda_memo_path& m, double& before, double& after) {
  cuda_gemm_state& gs = c.gemm;
  gemm_call& g = s.calls[0];
  const gemm_call was = g;
  candidate k;
  k.mode = m.mode;
  k.fused = m.fused;
  k.tiled = m.tiled;
  k.algo = m.algo;
  k.splits = m.splits;
  k.us = m.us;
  std::unique_ptr<cuda_lt_plan> plan;
  if (m.lt) {
    std::string why;
    plan = lt_plan_for(c, g, why);
    if (!plan || plan->fused != m.fused || static_cast<size_t>(m.algo) >= plan->algos.size()) return false;
    k.lt = plan.get();
  }
  apply(c, g, k);
  try {
    cuda_enqueue_launch(c, s, false);
    CUDA_CHECK(cudaStreamSynchronize(c.dev.stream));
  } catch (const loom_error&) {
    cudaGetLastError();
    g = was;
    cuda_split_k_use_scratch(c, g, 1);
    return false;
  }
  if (plan) gs.lt_plans.push_back(std::move(plan));
  if (m.today_us >= 0) {
    before += m.today_us;
    after += m.us;
  }
  gs.memo.path_hits++;
  gs.paths.emplace_back(s.l->id, describe(k, g, s.n_epi > 0) + " (the choice of launch " + std::to_string(m.first) + ", same shape)");
  return true;
}

// Per gemm launch: the candidates the policies allow, timed, the winner applied (or an equal earlier launch's
// winner: reuse_choice).
void choose_launch(cuda_ctx& c, launch_state& s, std::string& lt_refusal, double& before, double& after) {
  cuda_gemm_state& gs = c.gemm;
  gemm_call& g = s.calls[0];
  const bool has_epilogue = s.n_epi > 0;
  const std::string key = cuda_gemm_shape_key(g, s.n_epi);
  const auto hit = gs.memo.paths.find(key);
  if (hit != gs.memo.paths.end() && reuse_choice(c, s, hit->second, before, after)) return;
  std::vector<candidate> cands;
  candidate today;
  today.mode = g.mode;
  cands.push_back(today);
  const bool gemv_ok = gs.gemv != gemv_policy::off && cuda_gemv_eligible(g);
  if (gemv_ok && has_epilogue && gs.fuse != fuse_policy::never && gemv_can_fuse(g, false)) {
    candidate k;
    k.mode = gemv_twin(g.mode);
    k.fused = true;
    cands.push_back(k);
  }
  const bool tile_ok = gs.tile != tile_policy::off && has_epilogue && gs.fuse != fuse_policy::never && gemv_can_fuse(g, true);
  if (tile_ok) {
    candidate k;
    k.mode = gemv_twin(g.mode);
    k.fused = true;
    k.tiled = true;
    cands.push_back(k);
    gemm_call f = g;
    f.mode = k.mode, f.fused = true, f.tiled = true;
    for (int splits : cuda_split_k_choices(c, f)) {
      k.splits = splits;
      cands.push_back(k);
    }
  }
  std::unique_ptr<cuda_lt_plan> plan;
  if (gs.lt != lt_policy::off && strided_layout(g.mode)) {
    std::string why;
    plan = lt_plan_for(c, g, why);
    if (!plan && lt_refusal.empty()) lt_refusal = "launch " + std::to_string(s.l->id) + ": " + why;
    if (plan && lt_refusal.empty() && has_epilogue && !plan->fused && gs.fuse != fuse_policy::never)
      lt_refusal = "launch " + std::to_string(s.l->id) + " not fused on cuBLASLt: " + plan->form;
    for (size_t i = 0; plan && i < plan->algos.size(); i++) {
      candidate k;
      k.mode = gemm_mode::lt_strided;
      k.fused = plan->fused;
      k.lt = plan.get();
      k.algo = static_cast<int>(i);
      cands.push_back(k);
    }
  }
  if (gs.tile == tile_policy::force && tile_ok) keep_only(cands, [](const candidate& k) { return k.tiled; });
  else if (gs.gemv == gemv_policy::force && gemm_mode_is_gemv(g.mode))
    keep_only(cands, [](const candidate& k) { return gemm_mode_is_gemv(k.mode); });
  else if (gs.lt == lt_policy::force) keep_only(cands, [](const candidate& k) { return k.mode == gemm_mode::lt_strided; });
  if (gs.fuse == fuse_policy::force) keep_only(cands, [](const candidate& k) { return k.fused; });
  if (gs.split_k > 0) keep_only(cands, [](const candidate& k) { return k.splits > 1; }); // a forced count where it applies

  const bool only_today = cands.size() == 1 && cands[0].mode == today.mode && !cands[0].fused;
  if (only_today) {
    gs.paths.emplace_back(s.l->id, describe(today, g, has_epilogue));
    return; // nothing timed: nothing to remember
  }
  std::string failed;
  for (auto& k : cands) {
    apply(c, g, k);
    try {
      k.us = cuda_time_launch(c, s);
    } catch (const loom_error& e) {
      // a path cuBLASLt refuses at run time (or any failing candidate) drops out; today's ran at warm-up
      cudaGetLastError();
      k.us = -1;
      if (failed.empty()) failed = e.what();
    }
  }
  const int win = pick(cands);
  if (win < 0) {
    // every allowed path failed (a forced one): today's path, which ran at warm-up, stays
    apply(c, g, today);
    gs.paths.emplace_back(s.l->id, describe(today, g, has_epilogue) + " (the forced paths failed: " + failed + ")");
    if (lt_refusal.empty()) lt_refusal = "launch " + std::to_string(s.l->id) + ": " + failed;
    return;
  }
  const candidate& w = cands[static_cast<size_t>(win)];
  apply(c, g, w);
  const bool today_timed = cands[0].mode == today.mode && !cands[0].fused && !cands[0].lt && cands[0].us >= 0;
  cuda_memo_path m;
  m.mode = w.mode, m.fused = w.fused, m.tiled = w.tiled, m.lt = w.lt != nullptr, m.algo = w.algo, m.splits = w.splits;
  m.us = w.us, m.today_us = today_timed ? cands[0].us : -1, m.first = s.l->id;
  gs.memo.paths.emplace(key, m);
  if (w.lt) gs.lt_plans.push_back(std::move(plan));
  if (today_timed) {
    before += cands[0].us;
    after += w.us;
  }
  std::string d = describe(w, g, has_epilogue);
  if (today_timed && win != 0) {
    char buf[48];
    std::snprintf(buf, sizeof buf, " (was %.1f us)", cands[0].us);
    d += buf;
  }
  gs.paths.emplace_back(s.l->id, d);
}

} // namespace

fuse_policy cuda_fuse_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_FUSE", fuse_policy::automatic,
                         {{"auto", fuse_policy::automatic}, {"never", fuse_policy::never}, {"force", fuse_policy::force}});
}

// auto by default: the tiled kernel passed its GPU tests (H100, stops 17 and 18) and, timed as a captured graph,
// took 6 of a MobileNetV3's 43 GEMM launches.
tile_policy cuda_tile_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_TILE", tile_policy::automatic,
                         {{"auto", tile_policy::automatic}, {"off", tile_policy::off}, {"force", tile_policy::force}});
}

lt_policy cuda_lt_policy_from_env() {
  return cuda_env_choice("LOOM_CUDA_LT", lt_policy::automatic,
                         {{"auto", lt_policy::automatic}, {"off", lt_policy::off}, {"force", lt_policy::force}});
}

void cuda_choose_gemm_paths(cuda_ctx& c) {
  cuda_gemm_state& gs = c.gemm;
  std::string lt_refusal;
  double before = 0, after = 0;
  int considered = 0;
  for (auto& s : c.full.launches) {
    if (s.l->kind != launch_kind::gemm || s.calls.size() != 1) continue;
    const gemm_mode m = s.calls[0].mode;
    if (m != gemm_mode::strided && m != gemm_mode::batched && !gemm_mode_is_gemv(m)) continue;
    considered++;
    try {
      choose_launch(c, s, lt_refusal, before, after);
    } catch (const loom_error& e) {
      throw loom_error("launch " + std::to_string(s.l->id) + " '" + s.l->label + "' (choosing its GEMM path): " + e.what());
    }
  }
  gs.cublas_calls = gs.gemv_calls = gs.lt_calls = gs.epilogue_launches = gs.fused_epilogues = 0;
  int lt_fused = 0, gemv_fused = 0, tile_fused = 0;
  for (const auto& s : c.full.launches) {
    for (const auto& g : s.calls) {
      if (gemm_mode_is_gemv(g.mode)) gs.gemv_calls++;
      else if (g.mode == gemm_mode::lt_strided) gs.lt_calls++;
      else gs.cublas_calls += g.mode == gemm_mode::grouped_split ? static_cast<int>(g.gsize.size()) : 1;
    }
    if (s.n_epi <= 0) continue;
    if (!cuda_epilogue_fused(s.calls)) {
      gs.epilogue_launches++;
      continue;
    }
    gs.fused_epilogues++;
    (s.calls[0].mode == gemm_mode::lt_strided ? lt_fused : s.calls[0].tiled ? tile_fused : gemv_fused)++;
  }
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "LOOM_CUDA_FUSE=%s, LOOM_CUDA_LT=%s: of %d gemm launches, %d apply their epilogue in the GEMM (%d skinny kernel, %d "
                "tiled kernel, %d cuBLASLt), %d epilogue launches remain; %d cuBLASLt calls; measured at load %.1f us -> %.1f us (%zu "
                "shapes timed, %d launches took an equal shape's choice)",
                fuse_name(gs.fuse), lt_name(gs.lt), considered, gs.fused_epilogues, gemv_fused, tile_fused, lt_fused, gs.epilogue_launches,
                gs.lt_calls, before, after, gs.memo.paths.size(), gs.memo.path_hits);
  gs.paths_note = buf;
  cuda_split_k_assign(c); // split calls leave the load-time scratch for memory of their own
  if (gs.split_mem.calls > 0 || gs.split_k != 0) {
    const char* how = gs.split_k < 0 ? "off" : gs.split_k == 0 ? "auto" : "forced";
    std::snprintf(buf, sizeof buf, "; LOOM_CUDA_SPLIT_K %s: %d tiled launches split k (%.1f MB of partial sums and counters)", how,
                  gs.split_mem.calls, static_cast<double>(gs.split_mem.sem_bytes + gs.split_mem.ws_bytes) / 1e6);
    gs.paths_note += buf;
  }
  if (!lt_refusal.empty()) gs.paths_note += "; first cuBLASLt limit: " + lt_refusal;
}

} // namespace loom
