// SignalWatcher: the process's control signals (SIGHUP, SIGTERM, SIGINT,
// SIGUSR1, SIGUSR2), read on one loop through a signalfd.
//
// blockControlSignals() blocks them in the calling thread; called first
// thing in the daemon, before any thread exists, every thread inherits the
// mask, so no signal handler ever runs: a control signal stays pending in
// the kernel until the control loop reads it from the signalfd. (libuv's
// uv_signal_t runs an asynchronous handler on whichever thread the kernel
// picks; under ThreadSanitizer, which defers such handlers, a SIGHUP sent
// right after start-up was occasionally never handled.) Children started
// with uv_spawn get an empty mask from libuv.
//
// Thread: the loop's.
#pragma once

#include <uv.h>

#include <functional>

#include "base/result.h"

namespace tlsedge::net {

// The signals the daemon acts on (blocked, then read from the signalfd).
void blockControlSignals();

class SignalWatcher {
 public:
  using Callback = std::function<void(int signum)>;

  SignalWatcher() = default;
  ~SignalWatcher();  // after close() completed, or if never started
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

  // Starts reading the control signals on `loop`; `callback` runs once per
  // signal received (signals of one kind sent before it is read coalesce,
  // as the kernel does).
  Status start(uv_loop_t* loop, Callback callback);
  // Stops reading; signals sent afterwards stay blocked and pending.
  void close();

 private:
  static void onReadable(uv_poll_t* handle, int status, int events) noexcept;

  int fd_ = -1;
  uv_poll_t* poll_ = nullptr;  // deleted by its close callback
  Callback callback_;
};

}  // namespace tlsedge::net
