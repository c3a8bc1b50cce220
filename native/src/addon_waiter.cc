#include "addon_waiter.h"

#include "addon_common.h"

namespace loom {

void addon_handle::close() {
  exec.reset();
  // with no tick in flight the plan is freed now (its device memory back before destroy() returns); else
  // once its last tick is answered (the waiter lets go of it in its finalizer, on this thread)
  if (waiter) waiter->stop();
}

addon_handle::~addon_handle() {
  if (waiter) waiter->stop();
}

std::shared_ptr<tick_waiter> tick_waiter::create(Napi::Env env, std::shared_ptr<executor> exec) {
  auto w = std::make_shared<tick_waiter>(std::move(exec));
  w->deferred_.resize(static_cast<size_t>(w->exec_->depth()));
  // The finalizer (JS thread, after the thread released the function, or at environment teardown) owns a
  // reference until it has joined the thread, so the thread never outlives its object.
  auto* keep = new std::shared_ptr<tick_waiter>(w);
  w->tsfn_ =
      Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "loom.tick", 0, 1, [keep](Napi::Env) {
        tick_waiter& self = **keep;
        {
          std::lock_guard<std::mutex> lock(self.mu_);
          self.stopping_ = true;
        }
        self.cv_.notify_all();
        if (self.thread_.joinable()) self.thread_.join();
        self.exec_.reset(); // the plan is freed here, on the JS thread, never on the waiter thread
        delete keep;
      });
  w->tsfn_.Unref(env); // an idle plan does not keep the process alive
  tick_waiter* raw = w.get();
  w->thread_ = std::thread([raw] { raw->run(); });
  return w;
}

tick_waiter::~tick_waiter() {
  if (thread_.joinable()) thread_.detach(); // only when the environment is gone without finalizing (never joined from itself)
}

Napi::Promise tick_waiter::watch(Napi::Env env, int set) {
  auto& d = deferred_.at(static_cast<size_t>(set));
  d.emplace(Napi::Promise::Deferred::New(env));
  if (in_flight_++ == 0) tsfn_.Ref(env);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(set);
  }
  cv_.notify_one();
  return d->Promise();
}

void tick_waiter::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // nothing watched is pending (in_flight_ counts settles not yet run): the thread touches exec_ no more
  if (in_flight_ == 0) exec_.reset();
}

void tick_waiter::run() {
  for (;;) {
    completion c;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break; // stopping, nothing left to hand back
      c.set = queue_.front();
      queue_.pop_front();
    }
    c.exec = exec_;
    try {
      c.exec->await(c.set);
    } catch (const std::exception& e) {
      c.error = e.what();
      if (c.error.empty()) c.error = "the tick failed";
    }
    c.done = std::chrono::steady_clock::now();
    bool call = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(c));
      call = !call_queued_; // else the queued call settles this tick too
      call_queued_ = true;
    }
    if (!call) continue;
    // the object outlives every queued call: the finalizer, which runs after them, holds a reference
    tick_waiter* self = this;
    if (tsfn_.BlockingCall([self](Napi::Env env, Napi::Function) { self->drain(env); }) != napi_ok) {
      std::lock_guard<std::mutex> lock(mu_);
      call_queued_ = false; // the environment is going away; done_ is dropped with this object
    }
  }
  tsfn_.Release();
}

void tick_waiter::drain(Napi::Env env) {
  const auto entered = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_.swap(done_);
    call_queued_ = false;
  }
  if (env == nullptr) { // torn down with ticks queued
    draining_.clear();
    return;
  }
  hand_backs_++;
  handed_back_ticks_ += draining_.size();
  try {
    for (completion& c : draining_) {
      last_hand_back_us_ = std::chrono::duration<double, std::micro>(entered - c.done).count();
      hand_back_us_total_ += last_hand_back_us_;
      settle(env, c);
    }
  } catch (...) {
    draining_.clear();
    throw;
  }
  if (!draining_.empty()) {
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - entered).count();
    settle_us_total_ += us;
    last_settle_us_ = us / static_cast<double>(draining_.size());
  }
  draining_.clear();
}

void tick_waiter::settle(Napi::Env env, completion& c) {
  std::optional<Napi::Promise::Deferred>& d = deferred_.at(static_cast<size_t>(c.set));
  if (!d) return;
  Napi::Promise::Deferred deferred = *d;
  d.reset();
  if (--in_flight_ == 0) tsfn_.Unref(env);
  if (!c.error.empty()) {
    try {
      c.exec->finish(c.set);
    } catch (const std::exception&) {
      // the set is freed either way; the tick's own error is the one to report
    }
    deferred.Reject(addon_eval_error(env, c.error).Value());
    return;
  }
  try {
    deferred.Resolve(addon_result_buffer(env, c.exec->finish(c.set)));
  } catch (const std::exception& e) {
    deferred.Reject(addon_eval_error(env, e.what()).Value());
  }
}

std::vector<std::pair<std::string, double>> tick_waiter::stats() const {
  return {{"lastHandBackUs", last_hand_back_us_},          {"lastSettleUs", last_settle_us_},
          {"handBacks", static_cast<double>(hand_backs_)}, {"handedBackTicks", static_cast<double>(handed_back_ticks_)},
          {"handBackUsTotal", hand_back_us_total_},        {"settleUsTotal", settle_us_total_}};
}

} // namespace loom
