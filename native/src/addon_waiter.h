// One per plan handle: a thread that waits for the plan's staged ticks in submission order (CUDA: each tick's
// event; CPU: it runs them) and hands them back to the JS thread through a thread-safe function. A tick never
// waits for, or holds, a libuv pool thread (file system, DNS, crypto and zlib work share that pool), so a busy
// pool cannot delay a tick's answer. Ticks that finish while a hand-back is already queued ride on that one: the
// JS thread settles every finished tick, in order, in one call (pipelined ticks pay one wake-up, not one each).
// Part of the N-API boundary.
#pragma once

#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "executor.h"

namespace loom {

class tick_waiter : public std::enable_shared_from_this<tick_waiter> {
 public:
  static std::shared_ptr<tick_waiter> create(Napi::Env env, std::shared_ptr<executor> exec);
  ~tick_waiter();
  // JS thread: the tick in staging set `set` was submitted; the promise settles with its result buffer.
  Napi::Promise watch(Napi::Env env, int set);
  // JS thread: no more ticks; the thread ends once the ticks already watched are handed back. With none
  // in flight the waiter lets go of the plan at once.
  void stop();
  // JS thread: how the hand-back went (handleInfo): lastHandBackUs (the tick seen done by this thread → the JS
  // thread settling it), lastSettleUs (settling it: the result buffer and the promise), handBacks (calls into
  // JS), handedBackTicks (ticks settled by them; more ticks than calls: some rode on another's call), and the
  // sums handBackUsTotal / settleUsTotal (per call) for means over many ticks.
  std::vector<std::pair<std::string, double>> stats() const;

  tick_waiter(std::shared_ptr<executor> exec) : exec_(std::move(exec)) {}

 private:
  struct completion {
    int set = 0;
    std::string error;              // empty: the tick succeeded
    std::shared_ptr<executor> exec; // alive until the JS thread has finished the tick
    std::chrono::steady_clock::time_point done;
  };
  void run();
  // JS thread (env null: the environment is going away): settles every completion in done_, in order.
  void drain(Napi::Env env);
  void settle(Napi::Env env, completion& c);

  std::shared_ptr<executor> exec_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> queue_;
  bool stopping_ = false;
  std::vector<completion> done_; // finished, not yet settled (mu_)
  bool call_queued_ = false;     // a drain call is queued on the thread-safe function (mu_)
  // JS thread only
  std::vector<std::optional<Napi::Promise::Deferred>> deferred_;
  std::vector<completion> draining_; // reused by drain
  int in_flight_ = 0;
  double last_hand_back_us_ = 0, last_settle_us_ = 0, hand_back_us_total_ = 0, settle_us_total_ = 0;
  uint64_t hand_backs_ = 0, handed_back_ticks_ = 0;
};

// An ArrayBuffer over a finished tick's result (addon_tick.cc).
Napi::Value addon_result_buffer(Napi::Env env, const staged_result& r);

} // namespace loom
