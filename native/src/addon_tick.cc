// The addon's two tick entry points. Both run the tick on libuv's thread pool (Napi::AsyncWorker → Promise)
// so Node's event loop never blocks:
//   runTick(handle, inputs: {offset, data}[], outputs: {offset, bytes}[], active) → Promise<Uint8Array[]>
//     the general form (hand-built plans, tests): one JS object per input and output.
//   runTickPacked(handle, data: Uint8Array, inputs: Float64Array, outputs: Float64Array, active) → Promise<ArrayBuffer>
//     the runtime's form: every input's bytes in one buffer, tables of numbers instead of objects, and all
//     outputs in one ArrayBuffer, so a tick costs a constant number of N-API calls whatever its tenant count.
//     inputs: [ioOffset, dataOffset, bytes] per input; outputs: [ioOffset, bytes, resultOffset] per output.
//     The caller must leave `data` untouched until the promise settles (it is read on the worker thread).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "addon_common.h"

namespace loom {

namespace {

class tick_worker : public Napi::AsyncWorker {
 public:
  tick_worker(Napi::Env env, std::shared_ptr<executor> exec, std::vector<tick_input> inputs, std::vector<tick_output> outputs,
              tenant_mask active)
      : Napi::AsyncWorker(env, "loom.runTick"),
        deferred_(Napi::Promise::Deferred::New(env)),
        exec_(std::move(exec)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)),
        active_(std::move(active)) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  // Where output i goes: dst_[i], set up by the subclass before the worker is queued.
  virtual Napi::Value result_value(Napi::Env env) = 0;

  void Execute() override {
    try {
      exec_->run_tick(inputs_, outputs_, active_, dst_.data());
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
  std::vector<uint8_t*> dst_;
};

// runTick: inputs copied on the JS thread (the caller may reuse its buffers at once), one buffer per output.
class tick_list_worker : public tick_worker {
 public:
  tick_list_worker(Napi::Env env, std::shared_ptr<executor> exec, std::vector<std::vector<uint8_t>> in_bytes,
                   std::vector<int64_t> in_offsets, std::vector<tick_output> outputs, tenant_mask active)
      : tick_worker(env, std::move(exec), {}, std::move(outputs), std::move(active)), in_store_(std::move(in_bytes)) {
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

struct packed_input {
  int64_t io_offset, data_offset, bytes;
};

// runTickPacked: the backend reads the inputs straight out of the JS buffer (kept alive and untouched by
// the caller until the promise settles) and writes the outputs straight into the result ArrayBuffer, so a
// tick's bytes are copied once each way on the host (into / out of the backend's staging).
class tick_packed_worker : public tick_worker {
 public:
  tick_packed_worker(Napi::Env env, std::shared_ptr<executor> exec, Napi::Uint8Array data, const std::vector<packed_input>& packed,
                     std::vector<tick_output> outputs, const std::vector<int64_t>& result_offsets, size_t result_bytes, tenant_mask active)
      : tick_worker(env, std::move(exec), {}, std::move(outputs), std::move(active)), data_ref_(Napi::Persistent(data)) {
    const uint8_t* base = data.Data();
    inputs_.reserve(packed.size());
    for (const auto& p : packed) inputs_.push_back({p.io_offset, base + p.data_offset, static_cast<size_t>(p.bytes)});
    Napi::ArrayBuffer result = Napi::ArrayBuffer::New(env, std::max<size_t>(result_bytes, 1));
    auto* out = static_cast<uint8_t*>(result.Data());
    result_ref_ = Napi::Persistent(result);
    for (size_t i = 0; i < outputs_.size(); i++) dst_.push_back(out + result_offsets[i]);
  }

 protected:
  Napi::Value result_value(Napi::Env) override { return result_ref_.Value(); }

 private:
  Napi::Reference<Napi::Uint8Array> data_ref_; // keeps the input bytes alive while the worker reads them
  Napi::Reference<Napi::ArrayBuffer> result_ref_;
};

int64_t table_int(Napi::Env env, double v, const char* table, size_t row, const char* field) {
  if (!(v >= 0 && v <= 9007199254740992.0 && std::floor(v) == v)) {
    throw addon_eval_error(env, std::string("loom addon: ") + table + " row " + std::to_string(row) + ": " + field +
                                    " must be a non-negative integer, got " + std::to_string(v));
  }
  return static_cast<int64_t>(v);
}

} // namespace

Napi::Value addon_run_tick(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[1].IsArray() || !info[2].IsArray()) {
    throw addon_eval_error(env, "loom addon: runTick(handle, inputs, outputs, active) needs two arrays and a mask");
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
  auto* worker =
      new tick_list_worker(env, std::move(exec), std::move(in_bytes), std::move(in_offsets), std::move(outputs), std::move(active));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

Napi::Value addon_run_tick_packed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) throw addon_eval_error(env, "loom addon: runTickPacked(handle, data, inputs, outputs, active)");
  std::shared_ptr<executor> exec = addon_handle_executor(info[0]);
  Napi::Uint8Array data = addon_bytes(info[1], "tick data");
  Napi::Float64Array in_table = addon_f64s(info[2], "input table");
  Napi::Float64Array out_table = addon_f64s(info[3], "output table");
  Napi::Uint8Array mask = addon_bytes(info[4], "active mask");
  if (in_table.ElementLength() % 3 != 0 || out_table.ElementLength() % 3 != 0) {
    throw addon_eval_error(env,
                           "loom addon: runTickPacked tables hold 3 numbers per row (inputs: ioOffset, dataOffset, bytes; outputs: "
                           "ioOffset, bytes, resultOffset)");
  }
  const size_t data_bytes = data.ByteLength();
  std::vector<packed_input> inputs(in_table.ElementLength() / 3);
  for (size_t i = 0; i < inputs.size(); i++) {
    const double* r = in_table.Data() + 3 * i;
    inputs[i] = {table_int(env, r[0], "input table", i, "ioOffset"), table_int(env, r[1], "input table", i, "dataOffset"),
                 table_int(env, r[2], "input table", i, "bytes")};
    if (static_cast<uint64_t>(inputs[i].data_offset) + static_cast<uint64_t>(inputs[i].bytes) > data_bytes) {
      throw addon_eval_error(env, "loom addon: input " + std::to_string(i) + " [" + std::to_string(inputs[i].data_offset) + ", +" +
                                      std::to_string(inputs[i].bytes) + ") lies outside the tick data of " + std::to_string(data_bytes) +
                                      " bytes");
    }
  }
  std::vector<tick_output> outputs(out_table.ElementLength() / 3);
  std::vector<int64_t> result_offsets(outputs.size());
  size_t result_bytes = 0;
  for (size_t i = 0; i < outputs.size(); i++) {
    const double* r = out_table.Data() + 3 * i;
    outputs[i] = {table_int(env, r[0], "output table", i, "ioOffset"), table_int(env, r[1], "output table", i, "bytes")};
    result_offsets[i] = table_int(env, r[2], "output table", i, "resultOffset");
    result_bytes = std::max(result_bytes, static_cast<size_t>(result_offsets[i] + outputs[i].bytes));
  }
  tenant_mask active(mask.Data(), mask.Data() + mask.ByteLength());
  auto* worker =
      new tick_packed_worker(env, std::move(exec), data, inputs, std::move(outputs), result_offsets, result_bytes, std::move(active));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

} // namespace loom
