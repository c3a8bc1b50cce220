// Helpers shared by the addon's translation units (addon.cc, addon_tick.cc): JS errors with code 'EVAL',
// plan handles, and argument checks. Part of the N-API boundary only.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "executor.h"

namespace loom {

inline Napi::Error addon_eval_error(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, "EVAL"));
  return e;
}

class tick_waiter;

// A handle keeps its executor alive for ticks in flight even after destroy(); its waiter (addon_waiter.h, made
// on the first submitTick) hands staged ticks back to JS.
struct addon_handle {
  std::shared_ptr<executor> exec;
  std::shared_ptr<tick_waiter> waiter;
  ~addon_handle();
  void close(); // destroy(): no more ticks; those in flight are still answered
};

inline std::shared_ptr<executor> addon_handle_executor(const Napi::Value& v) {
  if (!v.IsExternal()) throw addon_eval_error(v.Env(), "loom addon: expected a plan handle");
  addon_handle* h = v.As<Napi::External<addon_handle>>().Data();
  if (!h->exec) throw addon_eval_error(v.Env(), "loom addon: the plan was closed");
  return h->exec;
}

inline Napi::Uint8Array addon_bytes(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw addon_eval_error(v.Env(), std::string("loom addon: ") + what + " must be a Uint8Array");
  }
  return v.As<Napi::Uint8Array>();
}

inline Napi::Float64Array addon_f64s(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw addon_eval_error(v.Env(), std::string("loom addon: ") + what + " must be a Float64Array");
  }
  return v.As<Napi::Float64Array>();
}

// A tick's rows per plan tenant (executor.h tick_rows): an Int32Array, or undefined for every tenant at maxBatch.
inline tick_rows addon_rows(const Napi::Value& v) {
  if (v.IsUndefined()) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    throw addon_eval_error(v.Env(), "loom addon: tick rows must be an Int32Array (one count per plan tenant) or undefined");
  Napi::Int32Array a = v.As<Napi::Int32Array>();
  return tick_rows(a.Data(), a.Data() + a.ElementLength());
}

inline int64_t addon_offset(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw addon_eval_error(v.Env(), std::string("loom addon: ") + what + " must be a number");
  return v.As<Napi::Number>().Int64Value();
}

// runTick / staging / submitTick, defined in addon_tick.cc.
Napi::Value addon_run_tick(const Napi::CallbackInfo& info);
Napi::Value addon_staging(const Napi::CallbackInfo& info);
Napi::Value addon_submit_tick(const Napi::CallbackInfo& info);

} // namespace loom
