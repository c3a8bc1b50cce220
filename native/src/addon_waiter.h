// One per plan handle: a thread that waits for the plan's staged ticks in submission order (CUDA: each tick's
// event; CPU: it runs them) and hands each back to the JS thread through a thread-safe function. A tick never
// waits for, or holds, a libuv pool thread (file system, DNS, crypto and zlib work share that pool), so a busy
// pool cannot delay a tick's answer. Part of the N-API boundary.
#pragma once

#include <napi.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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

  tick_waiter(std::shared_ptr<executor> exec) : exec_(std::move(exec)) {}

 private:
  struct completion {
    int set;
    std::string error;              // empty: the tick succeeded
    std::shared_ptr<executor> exec; // alive until the JS thread has finished the tick
  };
  void run();
  void settle(Napi::Env env, completion* c);

  std::shared_ptr<executor> exec_;
  Napi::ThreadSafeFunction tsfn_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> queue_;
  bool stopping_ = false;
  // JS thread only
  std::vector<std::optional<Napi::Promise::Deferred>> deferred_;
  int in_flight_ = 0;
};

// An ArrayBuffer over a finished tick's result (addon_tick.cc).
Napi::Value addon_result_buffer(Napi::Env env, const staged_result& r);

} // namespace loom
