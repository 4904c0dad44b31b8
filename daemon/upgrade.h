// Zero-downtime upgrade (SIGUSR2), the old process's side and the new one's.
//
// Old process: start() runs the binary at the path it was started from
// (argv[0], resolved now, so a package that replaced the file runs the new
// one) with the same arguments, handing over its listening sockets the way
// systemd's socket activation does: fds 3.. with $LISTEN_FDS, $LISTEN_PID
// (set in the child, after fork) and $LISTEN_FDNAMES ("https", "http",
// "admin"). One more fd, named by $TLSEDGE_UPGRADE_FD, is one end of a
// socket pair: the new process writes "READY=1" into it once its listeners
// are open and its certificates loaded (signalReady()). Then `ready` runs
// with the new PID; the old process stops accepting and drains. If the new
// process exits first, or is not ready within kReadyTimeout (then it is
// sent SIGTERM, and a READY=1 it sends after that is ignored: it is on its
// way out), `failed` runs with the reason once it is gone, and the old one
// serves on as if nothing happened.
//
// Both processes accept on the same kernel sockets meanwhile: a connection
// waiting in a queue is accepted by one of them, none is refused.
//
// Thread: control loop. The fork/exec child runs only async-signal-safe
// calls (sigaction, sigprocmask, dup2, close_range, execve) on memory
// prepared before fork.
#pragma once

#include <sys/types.h>
#include <uv.h>

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace tlsedge::daemon {

class Upgrade {
 public:
  static constexpr std::chrono::seconds kReadyTimeout{60};

  using Ready = std::function<void(pid_t)>;
  using Failed = std::function<void(const std::string&)>;

  Upgrade(uv_loop_t* loop, Ready ready, Failed failed,
          std::chrono::milliseconds readyTimeout = kReadyTimeout);
  ~Upgrade();
  Upgrade(const Upgrade&) = delete;
  Upgrade& operator=(const Upgrade&) = delete;

  // Starts `argv` with `sockets` (fd, name) passed in. Fails (nothing
  // started) if one is already under way or fork fails.
  Status start(const std::vector<std::string>& argv,
               const std::vector<std::pair<int, std::string>>& sockets);
  bool running() const { return pid_ > 0; }
  // Stops waiting: the new process (if one is starting) is sent SIGTERM,
  // the handles close (before the loop ends).
  void cancel();

  // New process: tells the process that started it (if any) that it is
  // ready. Returns true if it was started by an upgrade.
  static bool signalReady();

 private:
  void onReadable();
  void finish(const std::string& failure);
  void close();

  uv_loop_t* loop_;
  Ready ready_;
  Failed failed_;
  std::chrono::milliseconds readyTimeout_;
  bool timedOut_ = false;  // SIGTERM sent: no takeover any more
  pid_t pid_ = -1;
  int fd_ = -1;  // our end of the socket pair
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
};

}  // namespace tlsedge::daemon
