// Connecting to a Unix stream socket, and what one connect() says about a
// daemon behind it: the admin socket's client (admin/admin_client.h) and
// the daemon's start-up check for a live daemon share it.
//
// Thread: any; blocking, but connect() to a Unix socket does not wait.
#pragma once

#include <string>

namespace tlsedge::net {

// A connected Unix stream socket (close-on-exec), or -1 with errno set
// (ENAMETOOLONG for a path longer than sun_path).
int connectUnix(const std::string& path);

// What one connect() to a Unix socket says about a daemon behind it.
struct SocketProbe {
  enum class State {
    kAnswers,         // something accepted the connection
    kNothingListens,  // ENOENT (no socket file) or ECONNREFUSED (a stale socket file)
    kUnknown,         // any other errno (EACCES, EPERM, ENOTSOCK, ENAMETOOLONG, ...):
                      // a daemon may well run there; never taken for "none"
  };
  State state = State::kUnknown;
  int error = 0;  // connect()'s errno, 0 when kAnswers
  // "admin socket PATH: cannot connect: <strerror>"; empty when kAnswers.
  std::string message;
};

// Connects to the Unix socket `path` once and closes at once.
SocketProbe probeUnixSocket(const std::string& path);

}  // namespace tlsedge::net
