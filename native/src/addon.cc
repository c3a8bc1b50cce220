// The N-API boundary, and nothing else: converts JS values to the executor's C++ types and back, runs
// ticks on libuv's thread pool (Napi::AsyncWorker → Promise) so Node's event loop never blocks, and turns
// C++ errors into JS Errors with code 'EVAL'.
//   create(plan, weights: Uint8Array, {backend, threads}) → handle; create(plan, null, {..., weightBytes}) → a handle
//     whose weights come in chunks: weightsWindow(handle, offset, bytes) / weightsCommit(...) / weightsFinish(handle)
//   runTick / staging / submitTick (addon_tick.cc)
//   destroy(handle)   info() → {backends, cuda, cudaDevices, gpu?, threads, napiVersion, registry}
//   handleInfo(handle) → backend facts   benchTick(handle, iters, active?) → {wallUs[], deviceUs[]} (CUDA graph replay)
//   benchTicks(handles[], iters) → {wallUs[], deviceUs[]} (CUDA: every plan's graph at once, one stream each)
//   profileTick(handle) → [{id, us}] (CUDA: device time per launch of one eager tick; CPU: host time per launch)
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "addon_common.h"
#include "addon_plan.h"
#include "addon_waiter.h"
#include "backend_ext.h"
#include "thread_pool.h"

namespace {

using loom::addon_bytes;
using loom::addon_eval_error;
using loom::addon_handle;
using loom::addon_handle_executor;
using loom::executor;

Napi::Value create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject()) throw addon_eval_error(env, "loom addon: create(plan, weights, opts) needs a plan object");
  // weights null: they come later in chunks (weightsWindow / weightsCommit / weightsFinish); opts.weightBytes says how many
  const bool deferred = info[1].IsNull() || info[1].IsUndefined();
  Napi::Uint8Array weights;
  if (!deferred) weights = addon_bytes(info[1], "weights");
  int64_t deferred_bytes = -1;
  loom::executor_options opts;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    if (o.Has("backend") && o.Get("backend").IsString()) opts.backend = o.Get("backend").As<Napi::String>().Utf8Value();
    if (o.Has("threads") && o.Get("threads").IsNumber()) opts.threads = o.Get("threads").As<Napi::Number>().Int32Value();
    // CUDA backend options (runtime/load-plan.ts passes the plan's cubin and kernels.cu source).
    if (o.Has("precision") && o.Get("precision").IsString()) {
      const std::string p = o.Get("precision").As<Napi::String>().Utf8Value();
      if (p != "fp32" && p != "tf32") throw addon_eval_error(env, "loom addon: precision must be fp32 or tf32, got '" + p + "'");
      opts.cuda.tf32 = p == "tf32";
    }
    if (o.Has("debugPoisonOutputs") && o.Get("debugPoisonOutputs").IsBoolean())
      opts.poison_outputs = o.Get("debugPoisonOutputs").As<Napi::Boolean>().Value();
    if (o.Has("graph") && o.Get("graph").IsBoolean()) opts.cuda.use_graph = o.Get("graph").As<Napi::Boolean>().Value();
    if (o.Has("forceNvrtc") && o.Get("forceNvrtc").IsBoolean()) opts.cuda.force_nvrtc = o.Get("forceNvrtc").As<Napi::Boolean>().Value();
    if (o.Has("device") && o.Get("device").IsNumber()) opts.cuda.device = o.Get("device").As<Napi::Number>().Int32Value();
    if (o.Has("pipelineDepth") && o.Get("pipelineDepth").IsNumber())
      opts.pipeline_depth = o.Get("pipelineDepth").As<Napi::Number>().Int32Value();
    if (o.Has("cubin") && o.Get("cubin").IsTypedArray()) {
      Napi::Uint8Array c = addon_bytes(o.Get("cubin"), "cubin");
      opts.cuda.cubin.assign(c.Data(), c.Data() + c.ByteLength());
    }
    if (o.Has("cubinArch") && o.Get("cubinArch").IsString()) opts.cuda.cubin_arch = o.Get("cubinArch").As<Napi::String>().Utf8Value();
    if (deferred && o.Has("weightBytes") && o.Get("weightBytes").IsNumber())
      deferred_bytes = static_cast<int64_t>(o.Get("weightBytes").As<Napi::Number>().DoubleValue());
    if (o.Has("kernelSource") && o.Get("kernelSource").IsString())
      opts.cuda.kernel_source = o.Get("kernelSource").As<Napi::String>().Utf8Value();
    // cuda-emu backend: the plan's kernels.cu compiled for the host (runtime/emu-kernels.ts).
    if (o.Has("emuLibrary") && o.Get("emuLibrary").IsString()) opts.emu.library = o.Get("emuLibrary").As<Napi::String>().Utf8Value();
  }
  try {
    loom::launch_plan plan = loom::addon_plan_from_js(info[0].As<Napi::Object>());
    if (deferred && deferred_bytes < 0)
      throw addon_eval_error(env, "loom addon: create(plan, null, opts) loads the weights later and needs opts.weightBytes");
    opts.defer_weights = deferred;
    auto exec = deferred ? std::make_shared<executor>(std::move(plan), nullptr, static_cast<size_t>(deferred_bytes), opts)
                         : std::make_shared<executor>(std::move(plan), weights.Data(), weights.ByteLength(), opts);
    return Napi::External<addon_handle>::New(env, new addon_handle{std::move(exec)}, [](Napi::Env, addon_handle* h) { delete h; });
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
}

// weightsWindow(handle, offset, bytes) → Uint8Array over host memory the weights at [offset, +bytes) go into
// (the CPU arena itself, or a pinned buffer), or null where this runtime refuses external buffers (then
// pass the bytes to weightsCommit). The buffer keeps the plan alive while it is reachable; the caller drops
// it at weightsCommit (a staged window's buffer is reused for a later chunk).
Napi::Value weights_window(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber())
    throw addon_eval_error(env, "loom addon: weightsWindow(handle, offset, bytes)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  const auto offset = static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue());
  const auto bytes = static_cast<int64_t>(info[2].As<Napi::Number>().DoubleValue());
#ifndef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  executor::window_view w;
  try {
    w = exec->weights_window(offset, bytes);
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  // The buffer keeps alive what its bytes belong to: a window of its own keeps just that host block, so a
  // buffer the collector has not reached yet never holds a closed plan (on CUDA: its device memory); bytes
  // inside the backend's host arena (CPU) keep the plan.
  using owner = std::shared_ptr<const void>;
  auto* hint = new owner(w.block ? owner(w.block) : owner(exec));
  try {
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
        env, w.data, static_cast<size_t>(bytes), [](Napi::Env, void*, owner* h) { delete h; }, hint);
    return Napi::Uint8Array::New(env, static_cast<size_t>(bytes), ab, 0);
  } catch (const Napi::Error&) {
    delete hint; // external buffers refused (a sandboxed runtime): the caller passes its bytes instead
  }
#endif
  return env.Null();
}

// weightsCommit(handle, offset, bytes, data?) once the window at offset holds its bytes, or
// with `data`: those bytes. Chunks in file order.
Napi::Value weights_commit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber())
    throw addon_eval_error(env, "loom addon: weightsCommit(handle, offset, bytes, data?)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  const auto offset = static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue());
  const auto bytes = static_cast<int64_t>(info[2].As<Napi::Number>().DoubleValue());
  const bool has_data = info.Length() > 3 && !info[3].IsUndefined() && !info[3].IsNull();
  try {
    if (has_data) {
      Napi::Uint8Array data = addon_bytes(info[3], "weights chunk");
      if (static_cast<int64_t>(data.ByteLength()) != bytes)
        throw addon_eval_error(
            env, "loom addon: weightsCommit: the chunk has " + std::to_string(data.ByteLength()) + " bytes, not " + std::to_string(bytes));
      exec->weights_commit(offset, bytes, data.Data());
    } else {
      exec->weights_commit(offset, bytes);
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  return env.Undefined();
}

// weightsFinish(handle): every weight byte is in; prepares the backend (CUDA: captures the tick) and the staging sets.
Napi::Value weights_finish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw addon_eval_error(env, "loom addon: weightsFinish(handle)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  try {
    exec->weights_finish();
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  return env.Undefined();
}

Napi::Value destroy(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsExternal()) info[0].As<Napi::External<addon_handle>>().Data()->close();
  return info.Env().Undefined();
}

Napi::Object stats_object(Napi::Env env, const loom::backend_stats& st) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [k, v] : st.numbers) o.Set(k, Napi::Number::New(env, v));
  for (const auto& [k, v] : st.strings) o.Set(k, Napi::String::New(env, v));
  return o;
}

// handleInfo(handle) → what the backend says about this plan (graph nodes, kernel module source, ...).
Napi::Value handle_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw addon_eval_error(env, "loom addon: handleInfo(handle)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  try {
    loom::backend_stats st = exec->stats();
    const loom::addon_handle* h = info[0].As<Napi::External<loom::addon_handle>>().Data();
    if (h->waiter)
      for (auto& kv : h->waiter->stats()) st.numbers.push_back(std::move(kv));
    return stats_object(env, st);
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
}

Napi::Object bench_object(Napi::Env env, const std::vector<double>& wall, const std::vector<double>& dev) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array w = Napi::Array::New(env, wall.size()), d = Napi::Array::New(env, dev.size());
  for (size_t i = 0; i < wall.size(); i++) w.Set(static_cast<uint32_t>(i), Napi::Number::New(env, wall[i]));
  for (size_t i = 0; i < dev.size(); i++) d.Set(static_cast<uint32_t>(i), Napi::Number::New(env, dev[i]));
  o.Set("wallUs", w);
  o.Set("deviceUs", d);
  return o;
}

// benchTick(handle, iters, active?: Uint8Array) → {wallUs, deviceUs}: replays the captured tick (benchmarks
// only; blocks the calling thread for the whole run). `active`: one byte per plan tenant; absent: all live.
Napi::Value bench_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsNumber()) throw addon_eval_error(env, "loom addon: benchTick(handle, iters, active?)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  const bool masked = info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull();
  loom::tenant_mask active;
  if (masked) {
    Napi::Uint8Array mask = addon_bytes(info[2], "bench mask");
    active.assign(mask.Data(), mask.Data() + mask.ByteLength());
  }
  std::vector<double> wall, dev;
  try {
    exec->bench(info[1].As<Napi::Number>().Int32Value(), masked ? &active : nullptr, wall, dev);
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  return bench_object(env, wall, dev);
}

// benchTicks(handles[], iters) → {wallUs, deviceUs}: every plan's full tick launched at once, one CUDA stream
// each (the space-only baseline of `loom bench`; blocks the calling thread).
Napi::Value bench_ticks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsNumber())
    throw addon_eval_error(env, "loom addon: benchTicks(handles[], iters)");
  Napi::Array hs = info[0].As<Napi::Array>();
  std::vector<std::shared_ptr<executor>> owned;
  std::vector<executor*> execs;
  for (uint32_t i = 0; i < hs.Length(); i++) {
    owned.push_back(addon_handle_executor(hs.Get(i)));
    execs.push_back(owned.back().get());
  }
  std::vector<double> wall, dev;
  try {
    executor::bench_concurrent(execs, info[1].As<Napi::Number>().Int32Value(), wall, dev);
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  return bench_object(env, wall, dev);
}

// profileTick(handle) → [{id, us}]: the time of every launch of one tick (CUDA: device time, eager; CPU: host clock).
Napi::Value profile_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw addon_eval_error(env, "loom addon: profileTick(handle)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  std::vector<std::pair<int32_t, double>> prof;
  try {
    prof = exec->profile();
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  Napi::Array out = Napi::Array::New(env, prof.size());
  for (size_t i = 0; i < prof.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, prof[i].first));
    o.Set("us", Napi::Number::New(env, prof[i].second));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// testInjectFault(handle, ticks, after): TEST ONLY. After `after` more ticks, the next `ticks` ticks fail inside the
// backend (executor::inject_fault); ticks 0 disarms.
Napi::Value test_inject_fault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber())
    throw addon_eval_error(env, "loom addon: testInjectFault(handle, ticks, after)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  const double ticks = info[1].As<Napi::Number>().DoubleValue(), after = info[2].As<Napi::Number>().DoubleValue();
  if (!(ticks >= 0 && ticks <= 1e9 && ticks == static_cast<int>(ticks)) ||
      !(after >= 0 && after <= 1e9 && after == static_cast<int>(after)))
    throw addon_eval_error(env, "loom addon: testInjectFault needs integer ticks and after in [0, 1e9]");
  try {
    exec->inject_fault(static_cast<int>(ticks), static_cast<int>(after));
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  return env.Undefined();
}

Napi::Array string_array(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::String::New(env, v[i]));
  return a;
}

// registry[i]: one built-in backend and what it runs, from its registry entry (backend.h backend_entry).
Napi::Object registry_object(Napi::Env env, const loom::backend_entry& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", Napi::String::New(env, e.name));
  o.Set("abi", Napi::Number::New(env, e.abi));
  o.Set("available", Napi::Boolean::New(env, e.available()));
  std::vector<std::string> kinds, ops, exts;
  for (size_t k = 0; k < loom::launch_kind_count; k++) {
    const auto kind = static_cast<loom::launch_kind>(k);
    bool any = false;
    for (size_t op = 0; op < loom::kernel_kind_count; op++) any = any || e.supports(kind, static_cast<loom::kernel_kind>(op));
    if (any) kinds.push_back(loom::launch_kind_name(kind));
  }
  for (size_t op = 0; op < loom::kernel_kind_count; op++) {
    if (e.supports(loom::launch_kind::kernel, static_cast<loom::kernel_kind>(op)))
      ops.push_back(loom::kernel_kind_name(static_cast<loom::kernel_kind>(op)));
  }
  for (const char* name : loom::backend_extension_names())
    if (e.get_extension && e.get_extension(name)) exts.push_back(name);
  o.Set("launchKinds", string_array(env, kinds));
  o.Set("kernelOps", string_array(env, ops));
  o.Set("extensions", string_array(env, exts));
  return o;
}

// info(): backends / cuda / cudaDevices / gpu keep the shape runtime/native-addon.ts and `loom doctor` read;
// they now come from the backend registry (cuda = a backend named "cuda" is registered, i.e. LOOM_HAVE_CUDA).
// registry: every built-in backend with the launch kinds, KernelOps and extensions it offers.
Napi::Value addon_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::vector<std::string> names;
  Napi::Array registry = Napi::Array::New(env);
  for (const loom::backend_entry* e : loom::backend_registry()) {
    registry.Set(static_cast<uint32_t>(names.size()), registry_object(env, *e));
    names.push_back(e->name);
  }
  o.Set("backends", string_array(env, names));
  const loom::backend_entry* cuda = loom::backend_find("cuda");
  o.Set("cuda", Napi::Boolean::New(env, cuda != nullptr));
  o.Set("threads", Napi::Number::New(env, loom::thread_pool_default_threads()));
  o.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  const auto* devices_ext = cuda ? loom::backend_extension<loom::backend_device_info_ext>(*cuda) : nullptr;
  const int devices = devices_ext ? devices_ext->device_count() : 0;
  o.Set("cudaDevices", Napi::Number::New(env, devices));
  if (devices > 0) o.Set("gpu", stats_object(env, devices_ext->device_info()));
  o.Set("registry", registry);
  return o;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("create", Napi::Function::New(env, create, "create"));
  exports.Set("runTick", Napi::Function::New(env, loom::addon_run_tick, "runTick"));
  exports.Set("staging", Napi::Function::New(env, loom::addon_staging, "staging"));
  exports.Set("submitTick", Napi::Function::New(env, loom::addon_submit_tick, "submitTick"));
  exports.Set("weightsWindow", Napi::Function::New(env, weights_window, "weightsWindow"));
  exports.Set("weightsCommit", Napi::Function::New(env, weights_commit, "weightsCommit"));
  exports.Set("weightsFinish", Napi::Function::New(env, weights_finish, "weightsFinish"));
  exports.Set("destroy", Napi::Function::New(env, destroy, "destroy"));
  exports.Set("info", Napi::Function::New(env, addon_info, "info"));
  exports.Set("handleInfo", Napi::Function::New(env, handle_info, "handleInfo"));
  exports.Set("benchTick", Napi::Function::New(env, bench_tick, "benchTick"));
  exports.Set("benchTicks", Napi::Function::New(env, bench_ticks, "benchTicks"));
  exports.Set("profileTick", Napi::Function::New(env, profile_tick, "profileTick"));
  exports.Set("testInjectFault", Napi::Function::New(env, test_inject_fault, "testInjectFault"));
  return exports;
}

} // namespace

NODE_API_MODULE(loom, init)
