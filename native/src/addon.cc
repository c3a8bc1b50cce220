// The N-API boundary, and nothing else: converts JS values to the executor's C++ types and back, runs
// ticks on libuv's thread pool (Napi::AsyncWorker → Promise) so Node's event loop never blocks, and turns
// C++ errors into JS Errors with code 'EVAL'.
//   create(plan, weights: Uint8Array, {backend, threads}) → handle
//   runTick(handle, inputs: {offset, data: Uint8Array}[], outputs: {offset, bytes}[], active: Uint8Array) → Promise<Uint8Array[]>
//   destroy(handle)   info() → {backends, cuda, cudaDevices, gpu?, threads, napiVersion}
//   handleInfo(handle) → backend facts   benchTick(handle, iters) → {wallUs[], deviceUs[]} (CUDA graph replay)
//   profileTick(handle) → [{id, us}] (CUDA: device time per launch of one eager tick)
#include <napi.h>

#include <memory>

#include "addon_plan.h"
#include "executor.h"
#include "thread_pool.h"

namespace {

using loom::executor;

Napi::Error eval_error(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, "EVAL"));
  return e;
}

// A handle keeps its executor alive for ticks in flight even after destroy().
struct handle_state {
  std::shared_ptr<executor> exec;
};

std::shared_ptr<executor> handle_executor(const Napi::Value& v) {
  if (!v.IsExternal()) throw eval_error(v.Env(), "loom addon: expected a plan handle");
  handle_state* h = v.As<Napi::External<handle_state>>().Data();
  if (!h->exec) throw eval_error(v.Env(), "loom addon: the plan was closed");
  return h->exec;
}

Napi::Uint8Array as_bytes(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw eval_error(v.Env(), std::string("loom addon: ") + what + " must be a Uint8Array");
  }
  return v.As<Napi::Uint8Array>();
}

int64_t as_offset(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw eval_error(v.Env(), std::string("loom addon: ") + what + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

Napi::Value create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject()) throw eval_error(env, "loom addon: create(plan, weights, opts) needs a plan object");
  Napi::Uint8Array weights = as_bytes(info[1], "weights");
  loom::executor_options opts;
  if (info.Length() > 2 && info[2].IsObject()) {
    Napi::Object o = info[2].As<Napi::Object>();
    if (o.Has("backend") && o.Get("backend").IsString()) opts.backend = o.Get("backend").As<Napi::String>().Utf8Value();
    if (o.Has("threads") && o.Get("threads").IsNumber()) opts.threads = o.Get("threads").As<Napi::Number>().Int32Value();
    // CUDA backend options (runtime/load-plan.ts passes the plan's cubin and kernels.cu source).
    if (o.Has("precision") && o.Get("precision").IsString()) {
      const std::string p = o.Get("precision").As<Napi::String>().Utf8Value();
      if (p != "fp32" && p != "tf32") throw eval_error(env, "loom addon: precision must be fp32 or tf32, got '" + p + "'");
      opts.cuda.tf32 = p == "tf32";
    }
    if (o.Has("debugPoisonOutputs") && o.Get("debugPoisonOutputs").IsBoolean()) opts.poison_outputs = o.Get("debugPoisonOutputs").As<Napi::Boolean>().Value();
    if (o.Has("graph") && o.Get("graph").IsBoolean()) opts.cuda.use_graph = o.Get("graph").As<Napi::Boolean>().Value();
    if (o.Has("forceNvrtc") && o.Get("forceNvrtc").IsBoolean()) opts.cuda.force_nvrtc = o.Get("forceNvrtc").As<Napi::Boolean>().Value();
    if (o.Has("device") && o.Get("device").IsNumber()) opts.cuda.device = o.Get("device").As<Napi::Number>().Int32Value();
    if (o.Has("cubin") && o.Get("cubin").IsTypedArray()) {
      Napi::Uint8Array c = as_bytes(o.Get("cubin"), "cubin");
      opts.cuda.cubin.assign(c.Data(), c.Data() + c.ByteLength());
    }
    if (o.Has("cubinArch") && o.Get("cubinArch").IsString()) opts.cuda.cubin_arch = o.Get("cubinArch").As<Napi::String>().Utf8Value();
    if (o.Has("kernelSource") && o.Get("kernelSource").IsString()) opts.cuda.kernel_source = o.Get("kernelSource").As<Napi::String>().Utf8Value();
  }
  try {
    loom::launch_plan plan = loom::addon_plan_from_js(info[0].As<Napi::Object>());
    auto exec = std::make_shared<executor>(std::move(plan), weights.Data(), weights.ByteLength(), opts);
    return Napi::External<handle_state>::New(env, new handle_state{std::move(exec)}, [](Napi::Env, handle_state* h) { delete h; });
  } catch (const std::exception& e) {
    throw eval_error(env, e.what());
  }
}

class tick_worker : public Napi::AsyncWorker {
 public:
  tick_worker(Napi::Env env, std::shared_ptr<executor> exec, std::vector<loom::tick_input> inputs, std::vector<loom::tick_output> outputs,
              loom::tenant_mask active)
      : Napi::AsyncWorker(env, "loom.runTick"),
        deferred_(Napi::Promise::Deferred::New(env)),
        exec_(std::move(exec)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        active_(std::move(active)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      results_ = exec_->run_tick(inputs_, outputs_, active_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array out = Napi::Array::New(env, results_.size());
    for (size_t i = 0; i < results_.size(); i++) {
      Napi::Uint8Array a = Napi::Uint8Array::New(env, results_[i].size());
      if (!results_[i].empty()) std::memcpy(a.Data(), results_[i].data(), results_[i].size());
      out.Set(static_cast<uint32_t>(i), a);
    }
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    Napi::Error err = eval_error(Env(), e.Message());
    deferred_.Reject(err.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<executor> exec_;
  std::vector<loom::tick_input> inputs_;
  std::vector<loom::tick_output> outputs_;
  loom::tenant_mask active_;
  std::vector<std::vector<uint8_t>> results_;
};

Napi::Value run_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsArray() || !info[2].IsArray()) {
    throw eval_error(env, "loom addon: runTick(handle, inputs, outputs, active) needs two arrays and a mask");
  }
  std::shared_ptr<executor> exec = handle_executor(info[0]);
  // Inputs are copied here, on the JS thread: the caller may reuse its buffers as soon as this returns.
  std::vector<loom::tick_input> inputs;
  Napi::Array ins = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < ins.Length(); i++) {
    Napi::Object o = ins.Get(i).As<Napi::Object>();
    Napi::Uint8Array data = as_bytes(o.Get("data"), "input data");
    loom::tick_input in;
    in.offset = as_offset(o.Get("offset"), "input offset");
    in.bytes.assign(data.Data(), data.Data() + data.ByteLength());
    inputs.push_back(std::move(in));
  }
  std::vector<loom::tick_output> outputs;
  Napi::Array outs = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < outs.Length(); i++) {
    Napi::Object o = outs.Get(i).As<Napi::Object>();
    outputs.push_back({as_offset(o.Get("offset"), "output offset"), as_offset(o.Get("bytes"), "output bytes")});
  }
  Napi::Uint8Array mask = as_bytes(info[3], "active mask");
  loom::tenant_mask active(mask.Data(), mask.Data() + mask.ByteLength());
  auto* worker = new tick_worker(env, std::move(exec), std::move(inputs), std::move(outputs), std::move(active));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value destroy(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsExternal()) info[0].As<Napi::External<handle_state>>().Data()->exec.reset();
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
  if (info.Length() < 1) throw eval_error(env, "loom addon: handleInfo(handle)");
  std::shared_ptr<executor> exec = handle_executor(info[0]);
  try {
    return stats_object(env, exec->stats());
  } catch (const std::exception& e) {
    throw eval_error(env, e.what());
  }
}

// benchTick(handle, iters) → {wallUs: number[], deviceUs: number[]}: replays the captured tick (benchmarks
// only; blocks the calling thread for the whole run).
Napi::Value bench_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[1].IsNumber()) throw eval_error(env, "loom addon: benchTick(handle, iters)");
  std::shared_ptr<executor> exec = handle_executor(info[0]);
  std::vector<double> wall, dev;
  try {
    exec->bench(info[1].As<Napi::Number>().Int32Value(), wall, dev);
  } catch (const std::exception& e) {
    throw eval_error(env, e.what());
  }
  Napi::Object o = Napi::Object::New(env);
  Napi::Array w = Napi::Array::New(env, wall.size()), d = Napi::Array::New(env, dev.size());
  for (size_t i = 0; i < wall.size(); i++) w.Set(static_cast<uint32_t>(i), Napi::Number::New(env, wall[i]));
  for (size_t i = 0; i < dev.size(); i++) d.Set(static_cast<uint32_t>(i), Napi::Number::New(env, dev[i]));
  o.Set("wallUs", w);
  o.Set("deviceUs", d);
  return o;
}

// profileTick(handle) → [{id, us}]: device time of every launch of one eager tick (CUDA; benchmarks only).
Napi::Value profile_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw eval_error(env, "loom addon: profileTick(handle)");
  std::shared_ptr<executor> exec = handle_executor(info[0]);
  std::vector<std::pair<int32_t, double>> prof;
  try {
    prof = exec->profile();
  } catch (const std::exception& e) {
    throw eval_error(env, e.what());
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

Napi::Value addon_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array backends = Napi::Array::New(env);
  backends.Set(0u, Napi::String::New(env, "cpu"));
#if LOOM_HAVE_CUDA
  backends.Set(1u, Napi::String::New(env, "cuda"));
#endif
  o.Set("backends", backends);
  o.Set("cuda", Napi::Boolean::New(env, LOOM_HAVE_CUDA != 0));
  o.Set("threads", Napi::Number::New(env, loom::thread_pool_default_threads()));
  o.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
#if LOOM_HAVE_CUDA
  const int devices = loom::cuda_device_count();
  o.Set("cudaDevices", Napi::Number::New(env, devices));
  if (devices > 0) o.Set("gpu", stats_object(env, loom::cuda_device_info()));
#else
  o.Set("cudaDevices", Napi::Number::New(env, 0));
#endif
  return o;
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("create", Napi::Function::New(env, create, "create"));
  exports.Set("runTick", Napi::Function::New(env, run_tick, "runTick"));
  exports.Set("destroy", Napi::Function::New(env, destroy, "destroy"));
  exports.Set("info", Napi::Function::New(env, addon_info, "info"));
  exports.Set("handleInfo", Napi::Function::New(env, handle_info, "handleInfo"));
  exports.Set("benchTick", Napi::Function::New(env, bench_tick, "benchTick"));
  exports.Set("profileTick", Napi::Function::New(env, profile_tick, "profileTick"));
  return exports;
}

} // namespace

NODE_API_MODULE(loom, init)
