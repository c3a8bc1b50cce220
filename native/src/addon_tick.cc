// The addon's tick entry points; the tick itself never runs on the JS thread (Napi::AsyncWorker → Promise):
//   staging(handle) → the plan's staging sets (ArrayBuffers over pinned memory on CUDA) and their layout.
//   submitTick(handle, set, active, rows?) → Promise<ArrayBuffer>: the runtime's tick. JS wrote the inputs into staging
//     set `set` at the layout's offsets; the tick is submitted at once (CUDA: enqueued on the stream before this
//     returns), up to `depth` ticks are in flight, and the result block (output layout) is read in place.
//   runTick(handle, inputs: {offset, data}[], outputs: {offset, bytes}[], active, rows?) → Promise<Uint8Array[]>
//     the general form (hand-built plans, tests): one JS object per input and output.
// rows (Int32Array, one count per plan tenant; absent: every tenant at maxBatch) sets the tick's row bucket
// (executor.h row_bucket): GEMMs whose m scales with the rows run only the rows the tick carries.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "addon_common.h"
#include "addon_waiter.h"

namespace loom {

namespace {

class tick_worker : public Napi::AsyncWorker {
 public:
  tick_worker(Napi::Env env, std::shared_ptr<executor> exec, std::vector<tick_input> inputs, std::vector<tick_output> outputs,
              tenant_mask active, tick_rows rows)
      : Napi::AsyncWorker(env, "loom.runTick"),
        deferred_(Napi::Promise::Deferred::New(env)),
        exec_(std::move(exec)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        active_(std::move(active)),
        rows_(std::move(rows)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  // Where output i goes: dst_[i], set up by the subclass before the worker is queued.
  virtual Napi::Value result_value(Napi::Env env) = 0;

  void Execute() override {
    try {
      exec_->run_tick(inputs_, outputs_, active_, rows_, dst_.data());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnOK() override { deferred_.Resolve(result_value(Env())); }

  void OnError(const Napi::Error& e) override { deferred_.Reject(addon_eval_error(Env(), e.Message()).Value()); }

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<executor> exec_;
  std::vector<tick_input> inputs_; // spans into memory the subclass keeps alive
  std::vector<tick_output> outputs_;
  tenant_mask active_;
  tick_rows rows_;
  std::vector<uint8_t*> dst_;
};

// runTick: inputs copied on the JS thread (the caller may reuse its buffers at once), one buffer per output.
class tick_list_worker : public tick_worker {
 public:
  tick_list_worker(Napi::Env env, std::shared_ptr<executor> exec, std::vector<std::vector<uint8_t>> in_bytes,
                   std::vector<int64_t> in_offsets, std::vector<tick_output> outputs, tenant_mask active, tick_rows rows)
      : tick_worker(env, std::move(exec), {}, std::move(outputs), std::move(active), std::move(rows)), in_store_(std::move(in_bytes)) {
    for (size_t i = 0; i < in_store_.size(); i++) inputs_.push_back({in_offsets[i], in_store_[i].data(), in_store_[i].size()});
    out_store_.resize(outputs_.size());
    for (size_t i = 0; i < outputs_.size(); i++) {
      out_store_[i].resize(static_cast<size_t>(outputs_[i].bytes));
      dst_.push_back(out_store_[i].data());
    }
  }

 protected:
  Napi::Value result_value(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, out_store_.size());
    for (size_t i = 0; i < out_store_.size(); i++) {
      Napi::Uint8Array a = Napi::Uint8Array::New(env, out_store_[i].size());
      if (!out_store_[i].empty()) std::memcpy(a.Data(), out_store_[i].data(), out_store_[i].size());
      out.Set(static_cast<uint32_t>(i), a);
    }
    return out;
  }

 private:
  std::vector<std::vector<uint8_t>> in_store_, out_store_;
};

int set_index(Napi::Env env, const Napi::Value& v, const executor& exec) {
  if (!v.IsNumber()) throw addon_eval_error(env, "loom addon: the staging set must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d < exec.depth() && std::floor(d) == d)) {
    std::ostringstream n;
    n << d;
    throw addon_eval_error(env,
                           "loom addon: staging set " + n.str() + " does not exist (the plan has " + std::to_string(exec.depth()) + ")");
  }
  return static_cast<int>(d);
}

Napi::Float64Array span_table(Napi::Env env, const std::vector<io_span>& spans) {
  Napi::Float64Array a = Napi::Float64Array::New(env, spans.size() * 3);
  for (size_t i = 0; i < spans.size(); i++) {
    a[3 * i] = static_cast<double>(spans[i].offset);
    a[3 * i + 1] = static_cast<double>(spans[i].bytes);
    a[3 * i + 2] = static_cast<double>(spans[i].host);
  }
  return a;
}

// A JS-owned copy of `bytes` host bytes.
Napi::ArrayBuffer copy_buffer(Napi::Env env, const uint8_t* data, size_t bytes) {
  Napi::ArrayBuffer copy = Napi::ArrayBuffer::New(env, std::max<size_t>(bytes, 1));
  if (bytes) std::memcpy(copy.Data(), data, bytes);
  return copy;
}

// An ArrayBuffer over a host block, read in place; the block stays alive (and out of the pool) until the
// buffer is collected. Where this Node forbids external buffers, a copy.
Napi::ArrayBuffer block_buffer(Napi::Env env, const std::shared_ptr<host_block>& block, size_t bytes) {
#ifndef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  if (bytes > 0) {
    auto* hint = new std::shared_ptr<host_block>(block);
    try {
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
          env, block->data, bytes,
          [](Napi::Env e, void*, std::shared_ptr<host_block>* h) {
            Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>((*h)->bytes));
            delete h;
          },
          hint);
      // the collector learns what the buffer holds, so blocks held only by dropped results come back soon
      Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(block->bytes));
      return ab;
    } catch (const Napi::Error&) {
      delete hint; // external buffers refused (a sandboxed runtime): copy below
    }
  }
#endif
  return copy_buffer(env, block->data, bytes);
}

} // namespace

Napi::Value addon_result_buffer(Napi::Env env, const staged_result& r) {
  if (r.compact) { // the live tenants' output bytes only, in a buffer of JS's own: nothing native stays held
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, std::max<size_t>(r.packed.size(), 1));
    if (!r.packed.empty()) std::memcpy(ab.Data(), r.packed.data(), r.packed.size());
    return ab;
  }
  if (r.block) return block_buffer(env, r.block, r.bytes);
  return copy_buffer(env, r.landing, r.bytes);
}

Napi::Value addon_run_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsArray() || !info[2].IsArray()) {
    throw addon_eval_error(env, "loom addon: runTick(handle, inputs, outputs, active, rows?) needs two arrays and a mask");
  }
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  // Inputs are copied here, on the JS thread: the caller may reuse its buffers as soon as this returns.
  std::vector<std::vector<uint8_t>> in_bytes;
  std::vector<int64_t> in_offsets;
  Napi::Array ins = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < ins.Length(); i++) {
    Napi::Object o = ins.Get(i).As<Napi::Object>();
    Napi::Uint8Array data = addon_bytes(o.Get("data"), "input data");
    in_offsets.push_back(addon_offset(o.Get("offset"), "input offset"));
    in_bytes.emplace_back(data.Data(), data.Data() + data.ByteLength());
  }
  std::vector<tick_output> outputs;
  Napi::Array outs = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < outs.Length(); i++) {
    Napi::Object o = outs.Get(i).As<Napi::Object>();
    outputs.push_back({addon_offset(o.Get("offset"), "output offset"), addon_offset(o.Get("bytes"), "output bytes")});
  }
  Napi::Uint8Array mask = addon_bytes(info[3], "active mask");
  tenant_mask active(mask.Data(), mask.Data() + mask.ByteLength());
  tick_rows rows = addon_rows(info.Length() > 4 ? info[4] : env.Undefined());
  auto* worker = new tick_list_worker(env, std::move(exec), std::move(in_bytes), std::move(in_offsets), std::move(outputs),
                                      std::move(active), std::move(rows));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

// staging(handle) → {sets: ArrayBuffer[], inSpans, outSpans: Float64Array [ioOffset, bytes, hostOffset] per span,
// inBytes, outBytes}: the plan's staging buffers (JS writes a tick's inputs there) and their layout.
Napi::Value addon_staging(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1) throw addon_eval_error(env, "loom addon: staging(handle)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  const io_layout& l = exec->layout();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array sets = Napi::Array::New(env, static_cast<size_t>(exec->depth()));
  for (int i = 0; i < exec->depth(); i++)
    sets.Set(static_cast<uint32_t>(i), block_buffer(env, exec->staging(i), static_cast<size_t>(l.in_bytes)));
  o.Set("sets", sets);
  o.Set("inSpans", span_table(env, l.in));
  o.Set("outSpans", span_table(env, l.out));
  o.Set("inBytes", Napi::Number::New(env, static_cast<double>(l.in_bytes)));
  o.Set("outBytes", Napi::Number::New(env, static_cast<double>(l.out_bytes)));
  o.Set("compact", Napi::Boolean::New(env, exec->compact_results()));
  return o;
}

// submitTick(handle, set, active, rows?, live?) → Promise<ArrayBuffer>: the tick whose inputs JS wrote into staging set
// `set`; submitted now (the CUDA backend enqueues it before this returns), settled in submission order. Without
// `live` the result is a block of the whole output layout; with `live` (Int32Array of plan tenant indices, each live
// in `active`; staging().compact must be true) it is compact: only those tenants' outputs, in that order
// (tick_staging.h compact_copy), a buffer of its own.
Napi::Value addon_submit_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) throw addon_eval_error(env, "loom addon: submitTick(handle, set, active, rows?, live?)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  const int set = set_index(env, info[1], *exec);
  Napi::Uint8Array mask = addon_bytes(info[2], "active mask");
  const tick_rows rows = addon_rows(info.Length() > 3 ? info[3] : env.Undefined());
  const bool compact = info.Length() > 4 && !info[4].IsUndefined();
  std::vector<int32_t> live;
  if (compact) {
    if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw addon_eval_error(env, "loom addon: live tenants must be an Int32Array (plan tenant indices) or undefined");
    Napi::Int32Array a = info[4].As<Napi::Int32Array>();
    live.assign(a.Data(), a.Data() + a.ElementLength());
  }
  try {
    exec->submit(set, tenant_mask(mask.Data(), mask.Data() + mask.ByteLength()), rows, std::move(live), compact);
  } catch (const std::exception& e) {
    throw addon_eval_error(env, e.what());
  }
  addon_handle* h = info[0].As<Napi::External<addon_handle>>().Data();
  if (!h->waiter) h->waiter = tick_waiter::create(env, exec);
  return h->waiter->watch(env, set);
}

} // namespace loom
