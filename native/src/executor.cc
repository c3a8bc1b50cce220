#include "executor.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "backend_ext.h"
#include "thread_pool.h"

namespace loom {

namespace {

constexpr int kMaxPipelineDepth = 8;
constexpr int64_t kResultPoolBytes = int64_t(256) << 20;

std::string join_or(const std::vector<const char*>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); i++) out += std::string(i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return out;
}

// The registry entry for `name`, or the error the addon has always given for an unknown or unbuilt backend.
const backend_entry& find_backend(const std::string& name) {
  if (const backend_entry* e = backend_find(name)) return *e;
  if (const char* why = backend_missing_reason(name))
    throw loom_error("backend '" + name + "' is not built into this addon (" + why + "); use backend 'cpu'");
  throw loom_error("unknown backend '" + name + "' (expected " + join_or(backend_known_names()) + ")");
}

// Every launch must be one the backend runs: a clear error at load, not a failure mid-tick.
void check_supported(const launch_plan& plan, const backend_entry& e) {
  for (const auto& l : plan.launches) {
    if (e.supports(l.kind, l.op.kind)) continue;
    const std::string what = l.kind == launch_kind::kernel ? std::string("kernel op '") + kernel_kind_name(l.op.kind) + "'"
                                                           : std::string("launch kind '") + launch_kind_name(l.kind) + "'";
    throw loom_error(launch_where(plan, l) + ": backend '" + e.name + "' cannot run " + what);
  }
}

} // namespace

executor::executor(launch_plan plan, const uint8_t* weights, size_t weight_bytes, const executor_options& opts) : plan_(std::move(plan)) {
  plan_validate(plan_);
  if (static_cast<int64_t>(weight_bytes) > plan_.arenas.weights) {
    throw loom_error("weights are " + std::to_string(weight_bytes) + " bytes but the plan's weights arena is " +
                     std::to_string(plan_.arenas.weights) + " bytes");
  }
  for (size_t t = 0; t < plan_.io.size(); t++) {
    for (const auto* slots : {&plan_.io[t].inputs, &plan_.io[t].outputs}) {
      for (const auto& s : *slots) {
        if (s.offset < 0 || s.bytes < 0 || s.offset + s.bytes > plan_.arenas.io) {
          throw loom_error("tenant '" + plan_.tenants[t] + "': an I/O slot [" + std::to_string(s.offset) + ", +" + std::to_string(s.bytes) +
                           ") lies outside the io arena of " + std::to_string(plan_.arenas.io) + " bytes");
        }
      }
    }
  }
  for (const auto& l : plan_.launches)
    for (const auto& g : l.groups)
      if (g.problem.rows_unit > 0) full_rows_ = std::max(full_rows_, g.problem.m / g.problem.rows_unit);
  poison_outputs_ = opts.poison_outputs;
  const backend_entry& entry = find_backend(opts.backend);
  if (entry.abi != LOOM_BACKEND_ABI) {
    throw loom_error("backend '" + opts.backend + "' was built against backend ABI " + std::to_string(entry.abi) + ", this addon's is " +
                     std::to_string(LOOM_BACKEND_ABI) + " (rebuild: npm run build:native)");
  }
  check_supported(plan_, entry);
  backend_config cfg;
  cfg.threads = opts.threads > 0 ? opts.threads : thread_pool_default_threads();
  cfg.cuda = opts.cuda;
  cfg.emu = opts.emu;
  // a backend that runs the tick as one unit poisons its outputs itself (run_launches does it otherwise)
  cfg.cuda.poison_outputs = opts.cuda.poison_outputs || opts.poison_outputs;
  backend_ = entry.create(cfg);
  if (backend_.ops->abi != LOOM_BACKEND_ABI) {
    backend_.ops->destroy(backend_.ctx);
    backend_ = backend{};
    throw loom_error("backend '" + opts.backend + "' returned a function table of another ABI (rebuild: npm run build:native)");
  }
  try {
    backend_.ops->allocate(backend_.ctx, plan_.arenas);
    if (opts.defer_weights) {
      // weights_window / weights_commit / weights_finish bring the weights in, chunk by chunk, in order
      loading_ = true;
      weights_expected_ = static_cast<int64_t>(weight_bytes);
      pipeline_depth_ = opts.pipeline_depth;
      return;
    }
    backend_.ops->upload_weights(backend_.ctx, weights, weight_bytes);
    if (backend_.tick && backend_.tick->prepare) backend_.tick->prepare(backend_.ctx, plan_);
    setup_staging(opts.pipeline_depth);
  } catch (...) {
    staging_.clear();
    landing_.clear();
    results_.reset();
    backend_.ops->destroy(backend_.ctx);
    throw;
  }
}

executor::~executor() {
  if (backend_.ops) backend_.ops->destroy(backend_.ctx);
}

void executor::require_loaded(const char* what) const {
  if (loading_)
    throw loom_error(std::string(what) + ": the plan's weights are still loading (" + std::to_string(weights_committed_) + " of " +
                     std::to_string(weights_expected_) + " bytes in)");
}

executor::window_view executor::weights_window(int64_t offset, int64_t bytes) {
  if (!loading_) throw loom_error("weights_window: this plan is not loading its weights (they are in, or were passed whole)");
  if (offset < 0 || bytes <= 0 || bytes > kMaxWeightsChunk || offset + bytes > weights_expected_)
    throw loom_error("weights_window [" + std::to_string(offset) + ", +" + std::to_string(bytes) + ") is not a chunk of at most " +
                     std::to_string(kMaxWeightsChunk) + " bytes inside the " + std::to_string(weights_expected_) + " weight bytes");
  if (const auto* direct = backend_extension<backend_host_arena_ext>(backend_)) {
    uint8_t* base = direct->host_arena(backend_.ctx, arena_id::weights);
    if (base) return {base + offset, nullptr}; // the arena is host memory: the chunk is read straight into it
  }
  // a host buffer of its own per window in flight (pinned on CUDA); weights_commit copies it to the arena
  for (auto& w : windows_) {
    if (w.offset >= 0) continue;
    if (!w.block || w.block->bytes < static_cast<size_t>(bytes)) {
      const host_memory mem{backend_.ops->host_alloc, backend_.ops->host_free};
      w.block = std::make_shared<host_block>(mem, static_cast<size_t>(std::max<int64_t>(bytes, kWeightsStagingBytes)));
    }
    w.offset = offset;
    w.bytes = bytes;
    return {w.block->data, w.block};
  }
  throw loom_error("weights_window: " + std::to_string(sizeof(windows_) / sizeof(windows_[0])) +
                   " windows are already open (commit one first)");
}

void executor::weights_commit(int64_t offset, int64_t bytes, const uint8_t* data) {
  if (!loading_) throw loom_error("weights_commit: this plan is not loading its weights");
  if (offset != weights_committed_ || bytes <= 0 || offset + bytes > weights_expected_)
    throw loom_error("weights_commit [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                     "): chunks must arrive in order (next at " + std::to_string(weights_committed_) + ", " +
                     std::to_string(weights_expected_) + " bytes in all)");
  if (data) { // the bytes from the caller's own buffer (no window)
    backend_.ops->copy_in(backend_.ctx, ref{arena_id::weights, offset}, data, static_cast<size_t>(bytes));
    weights_committed_ += bytes;
    return;
  }
  bool staged = false;
  for (auto& w : windows_) {
    if (w.offset != offset) continue;
    if (w.bytes != bytes)
      throw loom_error("weights_commit: the window at " + std::to_string(offset) + " has " + std::to_string(w.bytes) + " bytes, not " +
                       std::to_string(bytes));
    backend_.ops->copy_in(backend_.ctx, ref{arena_id::weights, offset}, w.block->data, static_cast<size_t>(bytes));
    w.offset = -1;
    staged = true;
    break;
  }
  if (!staged && !backend_extension<backend_host_arena_ext>(backend_))
    throw loom_error("weights_commit: no window was opened at " + std::to_string(offset));
  weights_committed_ += bytes;
}

void executor::weights_finish() {
  if (!loading_) throw loom_error("weights_finish: this plan is not loading its weights");
  if (weights_committed_ != weights_expected_)
    throw loom_error("weights_finish: " + std::to_string(weights_committed_) + " of " + std::to_string(weights_expected_) +
                     " weight bytes are in");
  for (auto& w : windows_) w = weights_window_slot{};
  if (backend_.tick && backend_.tick->prepare) backend_.tick->prepare(backend_.ctx, plan_);
  setup_staging(pipeline_depth_);
  loading_ = false;
}

void executor::check_io(int64_t offset, int64_t bytes, const char* what) const {
  if (offset < 0 || bytes < 0 || offset + bytes > plan_.arenas.io) {
    throw loom_error(std::string("tick ") + what + " [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
                     ") lies outside the io arena of " + std::to_string(plan_.arenas.io) + " bytes");
  }
}

void executor::setup_staging(int depth) {
  if (depth < 1 || depth > kMaxPipelineDepth)
    throw loom_error("pipeline depth must be 1.." + std::to_string(kMaxPipelineDepth) + ", got " + std::to_string(depth));
  layout_ = make_io_layout(plan_, kStagingMergeGap);
  if (!plan_.io.empty()) {
    in_slots_ = make_tenant_slots(plan_, layout_.in, false);
    out_slots_ = make_tenant_slots(plan_, layout_.out, true);
  }
  const host_memory mem{backend_.ops->host_alloc, backend_.ops->host_free};
  for (int i = 0; i < depth; i++) {
    staging_.push_back(std::make_shared<host_block>(mem, static_cast<size_t>(layout_.in_bytes)));
    std::memset(staging_.back()->data, 0, staging_.back()->bytes);
    landing_.push_back(std::make_shared<host_block>(mem, static_cast<size_t>(layout_.out_bytes)));
  }
  // Result blocks for the ticks in flight and a few answers JS still holds (until its collector returns them),
  // within a byte budget: only submitTick without a live list hands them out (runTick's results are compact
  // copies), so they are allocated on that path's first tick (result_pool), not at load: up to 256 MB pinned.
  const int64_t per = std::max<int64_t>(layout_.out_bytes, 1);
  const int by_bytes = static_cast<int>(std::min<int64_t>(kResultPoolBytes / per, 1 << 20));
  result_blocks_ = std::max(depth + 1, std::min(4 * depth + 4, by_bytes));
  tickets_.assign(static_cast<size_t>(depth), staged_ticket{});
}

block_pool& executor::result_pool() {
  if (!results_) {
    const host_memory mem{backend_.ops->host_alloc, backend_.ops->host_free};
    results_ = std::make_shared<block_pool>(mem, static_cast<size_t>(layout_.out_bytes), result_blocks_);
  }
  return *results_;
}

const backend_fault_ext* executor::arm_fault() {
  if (fault_ticks_ <= 0) return nullptr;
  if (fault_after_ > 0) {
    fault_after_--;
    return nullptr;
  }
  fault_ticks_--;
  faults_injected_++;
  const auto* fault = backend_extension<backend_fault_ext>(backend_);
  fault->arm(backend_.ctx, static_cast<int32_t>(plan_.launches.size() / 2));
  return fault;
}

void executor::check_set(int set, const char* what) const {
  if (set < 0 || set >= depth())
    throw loom_error(std::string(what) + ": staging set " + std::to_string(set) + " does not exist (the plan has " +
                     std::to_string(depth()) + ")");
}

bool executor::rows_given(const tick_rows& rows) const {
  if (rows.empty()) return false;
  if (rows.size() != plan_.tenants.size())
    throw loom_error("tick rows name " + std::to_string(rows.size()) + " tenants, the plan has " + std::to_string(plan_.tenants.size()));
  return true;
}

int64_t executor::live_rows(const tick_rows& rows, size_t t) const {
  if (rows[t] < 1) throw loom_error("tenant '" + plan_.tenants[t] + "' is live with " + std::to_string(rows[t]) + " rows (at least 1)");
  return rows[t];
}

int64_t executor::bucket_for(int64_t most) const {
  if (full_rows_ <= 0 || most == 0) return 0;
  int64_t bucket = 1;
  while (bucket < most) bucket *= 2;
  return bucket >= full_rows_ ? 0 : bucket;
}

int64_t executor::row_bucket(const tenant_mask& active, const tick_rows& rows) const {
  if (!rows_given(rows)) return 0;
  int64_t most = 0;
  for (size_t t = 0; t < rows.size(); t++)
    if (t < active.size() && active[t]) most = std::max(most, live_rows(rows, t));
  return bucket_for(most);
}

int64_t executor::row_bucket_live(const tenant_mask& active, const tick_rows& rows, const std::vector<int32_t>& live) const {
  const size_t n = plan_.tenants.size();
  for (const int32_t t : live) {
    if (t < 0 || static_cast<size_t>(t) >= n || !active[static_cast<size_t>(t)])
      throw loom_error("live tenant " + std::to_string(t) + " is not a live tenant of the tick (the plan has " + std::to_string(n) + ")");
  }
  if (!rows_given(rows)) return 0;
  int64_t most = 0;
  for (const int32_t t : live) most = std::max(most, live_rows(rows, static_cast<size_t>(t)));
  return bucket_for(most);
}

void executor::note_bucket(int64_t bucket) {
  last_bucket_ = bucket;
  if (bucket > 0) bucketed_ticks_++;
}

void executor::submit(int set, tenant_mask active, const tick_rows& rows, std::vector<int32_t> live, bool compact) {
  require_loaded("submit");
  check_set(set, "submit");
  if (active.size() != plan_.tenants.size()) {
    throw loom_error("tick names " + std::to_string(active.size()) + " tenants, the plan has " + std::to_string(plan_.tenants.size()));
  }
  if (compact && !compact_results()) throw loom_error("a compact result needs the plan's I/O slot table (this plan has none)");
  const int64_t bucket = compact ? row_bucket_live(active, rows, live) : row_bucket(active, rows);
  staged_ticket& t = tickets_[static_cast<size_t>(set)];
  if (t.busy) throw loom_error("staging set " + std::to_string(set) + " is still in use by an earlier tick");
  // a compact result is copied out of the landing buffer when the tick is handed back: no block leaves the pool
  std::shared_ptr<host_block> result = compact ? nullptr : result_pool().acquire();
  {
    std::lock_guard<std::mutex> lock(staged_mu_);
    t.busy = true;
    t.done = false;
    t.error = nullptr;
    t.seq = next_seq_;
    t.active = std::move(active);
    t.bucket = bucket;
    t.result = std::move(result);
    t.compact = compact;
    t.live = std::move(live);
    t.t0 = std::chrono::steady_clock::now();
  }
  if (!backend_.tick || !backend_.tick->submit) {
    std::lock_guard<std::mutex> lock(staged_mu_);
    next_seq_++; // run by await, in this order
    return;
  }
  std::lock_guard<std::mutex> lock(tick_mu_);
  note_bucket(bucket);
  const backend_fault_ext* fault = arm_fault();
  staged_tick st;
  st.layout = &layout_;
  st.in = staging_[static_cast<size_t>(set)]->data;
  st.out = t.result ? t.result->data : landing_[static_cast<size_t>(set)]->data;
  st.active = &t.active;
  st.rows = bucket;
  st.slot = set;
  try {
    backend_.tick->submit(backend_.ctx, st);
  } catch (...) {
    failed_ticks_++;
    if (fault) fault->arm(backend_.ctx, -1);
    std::lock_guard<std::mutex> l2(staged_mu_);
    t = staged_ticket{};
    throw;
  }
  if (fault) fault->arm(backend_.ctx, -1);
  std::lock_guard<std::mutex> l2(staged_mu_);
  next_seq_++;
}

void executor::await(int set) {
  check_set(set, "await");
  staged_ticket& t = tickets_[static_cast<size_t>(set)];
  if (!t.busy) throw loom_error("await: staging set " + std::to_string(set) + " has no tick");
  if (backend_.tick && backend_.tick->submit) {
    try {
      backend_.tick->wait(backend_.ctx, set);
      pack(set);
    } catch (...) {
      std::lock_guard<std::mutex> lock(staged_mu_);
      t.error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(staged_mu_);
    t.done = true;
    last_tick_us_ = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t.t0).count();
  } else {
    // a backend without asynchronous ticks runs them here, one at a time, in submission order
    std::unique_lock<std::mutex> lock(staged_mu_);
    staged_cv_.wait(lock, [&] { return next_run_ == t.seq; });
    lock.unlock();
    try {
      run_staged(set);
      pack(set);
    } catch (...) {
      lock.lock();
      t.error = std::current_exception();
      lock.unlock();
    }
    lock.lock();
    t.done = true;
    next_run_++;
    lock.unlock();
    staged_cv_.notify_all();
  }
  if (t.error) std::rethrow_exception(t.error);
}

// A finished compact tick: its live tenants' output bytes out of the set's landing buffer, on the awaiting thread.
void executor::pack(int set) {
  staged_ticket& t = tickets_[static_cast<size_t>(set)];
  if (!t.compact) return;
  t.packed.resize(compact_bytes(out_slots_, t.live));
  compact_copy(out_slots_, t.live, landing_[static_cast<size_t>(set)]->data, t.packed.data());
}

staged_result executor::finish(int set) {
  check_set(set, "finish");
  staged_ticket& t = tickets_[static_cast<size_t>(set)];
  if (!t.busy || !t.done) throw loom_error("finish: staging set " + std::to_string(set) + " has no finished tick");
  staged_result r;
  r.bytes = static_cast<size_t>(layout_.out_bytes);
  if (backend_.tick && backend_.tick->finish) {
    std::lock_guard<std::mutex> lock(tick_mu_);
    backend_.tick->finish(backend_.ctx, set, last_tick_us_);
  }
  if (t.compact) {
    r.compact = true;
    r.packed = std::move(t.packed);
    r.bytes = r.packed.size();
    compact_results_++;
  } else if (t.result) {
    r.block = std::move(t.result);
    pooled_results_++;
  } else {
    r.landing = landing_[static_cast<size_t>(set)]->data;
    copied_results_++;
  }
  staged_ticks_++;
  std::lock_guard<std::mutex> lock(staged_mu_);
  t = staged_ticket{};
  return r;
}

void executor::run_staged(int set) {
  const staged_ticket& t = tickets_[static_cast<size_t>(set)];
  const uint8_t* in = staging_[static_cast<size_t>(set)]->data;
  uint8_t* out = t.result ? t.result->data : landing_[static_cast<size_t>(set)]->data;
  std::vector<tick_input> inputs;
  std::vector<tick_output> outputs;
  std::vector<uint8_t*> dst;
  if (plan_.io.empty()) { // a hand-built plan: the whole layout
    for (const auto& s : layout_.in) inputs.push_back({s.offset, in + s.host, static_cast<size_t>(s.bytes)});
    for (const auto& s : layout_.out) {
      outputs.push_back({s.offset, s.bytes});
      dst.push_back(out + s.host);
    }
  } else {
    // a compact tick's live tenants, else every tenant live in the mask; slots from the per-tenant tables
    auto add = [&](size_t k) {
      for (int32_t i = in_slots_.first[k]; i < in_slots_.first[k + 1]; i++) {
        const size_t j = static_cast<size_t>(i);
        inputs.push_back({in_slots_.offset[j], in + in_slots_.host[j], static_cast<size_t>(in_slots_.bytes[j])});
      }
      for (int32_t i = out_slots_.first[k]; i < out_slots_.first[k + 1]; i++) {
        const size_t j = static_cast<size_t>(i);
        outputs.push_back({out_slots_.offset[j], out_slots_.bytes[j]});
        dst.push_back(out + out_slots_.host[j]);
      }
    };
    if (t.compact) {
      for (const int32_t k : t.live) add(static_cast<size_t>(k));
    } else {
      for (size_t k = 0; k < plan_.io.size(); k++)
        if (t.active[k]) add(k);
    }
  }
  run_bucketed(inputs, outputs, t.active, t.bucket, dst.data());
}

void executor::run_tick(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                        const tick_rows& rows, uint8_t* const* dst) {
  require_loaded("run_tick");
  if (active.size() != plan_.tenants.size()) {
    throw loom_error("tick names " + std::to_string(active.size()) + " tenants, the plan has " + std::to_string(plan_.tenants.size()));
  }
  run_bucketed(inputs, outputs, active, row_bucket(active, rows), dst);
}

void executor::run_bucketed(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                            int64_t bucket, uint8_t* const* dst) {
  std::lock_guard<std::mutex> lock(tick_mu_);
  if (active.size() != plan_.tenants.size()) {
    throw loom_error("tick names " + std::to_string(active.size()) + " tenants, the plan has " + std::to_string(plan_.tenants.size()));
  }
  note_bucket(bucket);
  for (const auto& in : inputs) {
    check_io(in.offset, static_cast<int64_t>(in.size), "input");
    if (in.size > 0 && in.data == nullptr) throw loom_error("tick input at io offset " + std::to_string(in.offset) + " has no bytes");
  }
  for (const auto& out : outputs) check_io(out.offset, out.bytes, "output");

  // Test only: arm the backend's fault hook for this tick when inject_fault asked for it.
  const backend_fault_ext* fault = arm_fault();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    if (backend_.tick && backend_.tick->run_tick) {
      backend_.tick->run_tick(backend_.ctx, inputs, outputs, active, bucket, dst);
    } else {
      run_launches(inputs, outputs, active, bucket, dst);
    }
  } catch (...) {
    failed_ticks_++;
    if (fault) fault->arm(backend_.ctx, -1);
    throw;
  }
  if (fault) {
    fault->arm(backend_.ctx, -1);
    // a plan without launches gives the hook nothing to fail: the tick still fails, as asked
    failed_ticks_++;
    throw loom_error("injected fault (test only): the plan has no launch to fail, so the tick fails here");
  }
  last_tick_us_ = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
}

void executor::run_launches(const std::vector<tick_input>& inputs, const std::vector<tick_output>& outputs, const tenant_mask& active,
                            int64_t bucket, uint8_t* const* dst) {
  const backend_ops& ops = *backend_.ops;
  for (const auto& in : inputs) ops.copy_in(backend_.ctx, ref{arena_id::io, in.offset}, in.data, in.size);
  if (poison_outputs_) poison(outputs);
  for (const auto& l : plan_.launches) {
    try {
      switch (l.kind) {
        case launch_kind::gemm: ops.gemm(backend_.ctx, l, active, bucket); break;
        case launch_kind::gemm_grouped: ops.gemm_grouped(backend_.ctx, l, active, bucket); break;
        case launch_kind::kernel: ops.kernel(backend_.ctx, l, active); break;
      }
    } catch (const tenant_error& e) {
      const std::string who = e.tenant >= 0 && static_cast<size_t>(e.tenant) < plan_.tenants.size() ? plan_.tenants[e.tenant] : "?";
      throw loom_error("tenant '" + who + "', " + launch_where(plan_, l) + ": " + e.what());
    } catch (const loom_error& e) {
      throw loom_error(launch_where(plan_, l) + ": " + e.what());
    }
  }
  ops.synchronize(backend_.ctx);
  for (size_t i = 0; i < outputs.size(); i++)
    ops.copy_out(backend_.ctx, ref{arena_id::io, outputs[i].offset}, dst[i], static_cast<size_t>(outputs[i].bytes));
}

// Debug: every output slot the plan declares (or, for a hand-built plan, every output this tick reads) is
// filled with 0xFF bytes, a NaN in every float dtype, so a launch that fails to write part of it shows.
void executor::poison(const std::vector<tick_output>& outputs) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  for (const auto& t : plan_.io)
    for (const auto& s : t.outputs) ranges.emplace_back(s.offset, s.bytes);
  if (plan_.io.empty())
    for (const auto& o : outputs) ranges.emplace_back(o.offset, o.bytes);
  for (const auto& [offset, bytes] : ranges) {
    std::vector<uint8_t> ff(static_cast<size_t>(bytes), 0xFF);
    backend_.ops->copy_in(backend_.ctx, ref{arena_id::io, offset}, ff.data(), ff.size());
  }
}

backend_stats executor::stats() {
  std::lock_guard<std::mutex> lock(tick_mu_);
  backend_stats s;
  s.strings.emplace_back("backend", backend_.ops->name);
  s.numbers.emplace_back("planLaunches", static_cast<double>(plan_.launches.size()));
  s.numbers.emplace_back("lastTickUs", last_tick_us_);
  s.numbers.emplace_back("failedTicks", failed_ticks_);
  s.numbers.emplace_back("faultsInjected", faults_injected_);
  s.numbers.emplace_back("pipelineDepth", depth());
  s.numbers.emplace_back("stagedTicks", static_cast<double>(staged_ticks_));
  s.numbers.emplace_back("pooledResults", static_cast<double>(pooled_results_));
  s.numbers.emplace_back("copiedResults", static_cast<double>(copied_results_));
  s.numbers.emplace_back("compactResults", static_cast<double>(compact_results_));
  s.numbers.emplace_back("resultBlocks", result_blocks_); // allocated on first use (result_pool)
  s.numbers.emplace_back("resultBlocksAllocated", results_ ? results_->blocks() : 0);
  s.numbers.emplace_back("stagingInBytes", static_cast<double>(layout_.in_bytes));
  s.numbers.emplace_back("stagingOutBytes", static_cast<double>(layout_.out_bytes));
  // rows per tick (issue 12): the bucket the last tick ran at (fullRows when every row ran)
  s.numbers.emplace_back("fullRows", static_cast<double>(full_rows_));
  s.numbers.emplace_back("lastRowsBucket", static_cast<double>(last_bucket_ > 0 ? last_bucket_ : full_rows_));
  s.numbers.emplace_back("rowBucketTicks", static_cast<double>(bucketed_ticks_));
  if (const auto* ext = backend_extension<backend_stats_ext>(backend_)) ext->stats(backend_.ctx, s);
  return s;
}

void executor::inject_fault(int ticks, int after) {
  std::lock_guard<std::mutex> lock(tick_mu_);
  if (ticks < 0 || after < 0) throw loom_error("injectFault needs ticks >= 0 and after >= 0");
  if (ticks > 0 && !backend_extension<backend_fault_ext>(backend_))
    throw loom_error(std::string("backend '") + backend_.ops->name + "' has no fault hook");
  fault_ticks_ = ticks;
  fault_after_ = after;
}

void executor::bench(int iters, const tenant_mask* active, std::vector<double>& wall_us, std::vector<double>& device_us) {
  std::lock_guard<std::mutex> lock(tick_mu_);
  require_loaded("bench");
  if (iters < 1) throw loom_error("bench needs at least one iteration, got " + std::to_string(iters));
  if (active && active->size() != plan_.tenants.size()) {
    throw loom_error("bench mask names " + std::to_string(active->size()) + " tenants, the plan has " +
                     std::to_string(plan_.tenants.size()));
  }
  const auto* ext = backend_extension<backend_bench_ext>(backend_);
  if (!ext) throw loom_error(std::string("backend '") + backend_.ops->name + "' has no captured tick to replay");
  ext->bench(backend_.ctx, iters, active, wall_us, device_us);
}

void executor::bench_concurrent(const std::vector<executor*>& execs, int iters, std::vector<double>& wall_us,
                                std::vector<double>& device_us) {
  if (execs.empty()) throw loom_error("concurrent bench needs at least one plan");
  if (iters < 1) throw loom_error("concurrent bench needs at least one iteration, got " + std::to_string(iters));
  // one extension, of one backend (the CUDA backend's today), runs them all: every plan must be on it
  const auto* ext = backend_extension<backend_bench_concurrent_ext>(execs[0]->backend_);
  for (size_t i = 0; i < execs.size(); i++) {
    execs[i]->require_loaded("concurrent bench");
    const backend& b = execs[i]->backend_;
    if (!ext || b.ops != execs[0]->backend_.ops) {
      throw loom_error("concurrent bench runs CUDA graphs side by side: plan " + std::to_string(i) + " is on backend '" + b.ops->name +
                       "', not cuda");
    }
  }
  // One lock per distinct executor, taken in address order so two concurrent benches cannot deadlock;
  // the same plan twice would replay one graph on two streams over the same arenas.
  std::vector<executor*> order(execs);
  std::sort(order.begin(), order.end());
  if (std::adjacent_find(order.begin(), order.end()) != order.end()) throw loom_error("concurrent bench names the same plan twice");
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(order.size());
  for (executor* e : order) locks.emplace_back(e->tick_mu_);
  std::vector<backend*> backends;
  backends.reserve(execs.size());
  for (executor* e : execs) backends.push_back(&e->backend_);
  ext->bench_concurrent(backends, iters, wall_us, device_us);
}

std::vector<std::pair<int32_t, double>> executor::profile() {
  std::lock_guard<std::mutex> lock(tick_mu_);
  require_loaded("profile");
  std::vector<std::pair<int32_t, double>> out;
  if (const auto* ext = backend_extension<backend_profile_ext>(backend_)) {
    ext->profile(backend_.ctx, out);
    return out;
  }
  if (backend_.tick && backend_.tick->run_tick)
    throw loom_error(std::string("backend '") + backend_.ops->name + "' cannot profile launches");
  // A backend that runs the tick launch by launch through its ops (the CPU backend): each launch of one
  // full tick timed on the host clock, to the end of its synchronize; the io arena is left as it is.
  const backend_ops& ops = *backend_.ops;
  const tenant_mask all(plan_.tenants.size(), 1);
  out.reserve(plan_.launches.size());
  for (const auto& l : plan_.launches) {
    const auto t0 = std::chrono::steady_clock::now();
    try {
      switch (l.kind) {
        case launch_kind::gemm: ops.gemm(backend_.ctx, l, all, 0); break;
        case launch_kind::gemm_grouped: ops.gemm_grouped(backend_.ctx, l, all, 0); break;
        case launch_kind::kernel: ops.kernel(backend_.ctx, l, all); break;
      }
      ops.synchronize(backend_.ctx);
    } catch (const std::exception& e) {
      throw loom_error("profiling " + launch_where(plan_, l) + ": " + e.what());
    }
    out.emplace_back(l.id, std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  return out;
}

} // namespace loom
