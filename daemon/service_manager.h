// The service manager's side of the process: systemd's readiness protocol
// (sd_notify(3)) and the sockets it passes in (sd_listen_fds(3)), written
// here rather than linking libsystemd: both are a few lines over stable,
// documented interfaces (a datagram to $NOTIFY_SOCKET; fds from 3 on named
// by $LISTEN_FDS/$LISTEN_PID/$LISTEN_FDNAMES), and the same environment is
// what an upgrading tlsedge hands its successor (daemon/upgrade.h), so one
// reader serves both.
//
// Thread: control loop (at start, and on reload/stop/upgrade).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tlsedge::daemon::service {

// Sends `state` (newline-separated VAR=VALUE, e.g. "READY=1") to
// $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Without
// $NOTIFY_SOCKET it does nothing. Failures are returned (and are not fatal:
// the caller logs them).
Status notify(std::string_view state);

// "MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>", sent with RELOADING=1.
std::string monotonicUsec();

// A socket passed in at start.
struct InheritedSocket {
  int fd = -1;
  std::string name;  // $LISTEN_FDNAMES' entry ("unknown" without one)
  int family = AF_UNSPEC;
  bool stream = false;  // SOCK_STREAM and listening
  uint16_t port = 0;    // TCP
  // "127.0.0.1:8443", "[::1]:443" (canonical, as listeners.h compares), or
  // the path of a Unix socket.
  std::string address;
  // "fd 3 (https) bound to 127.0.0.1:8443": for messages
  std::string describe() const;
};

// The sockets passed in: fds 3 .. 3+$LISTEN_FDS-1 when $LISTEN_PID is this
// process. Unsets the three variables (a child we start must not take them)
// and marks the fds close-on-exec. None when the variables are absent or for
// another process; an error when they are malformed or a fd is not a socket.
Result<std::vector<InheritedSocket>> takeInheritedSockets();

}  // namespace tlsedge::daemon::service
