// The client side of the admin socket, for `tlsedge cert` (and the daemon's
// start-up check for a live daemon): blocking, one request per connection.
//
// Thread: the main thread of a CLI process, or the control loop before it
// runs (probeUnixSocket: connect() to a Unix socket does not wait).
#pragma once

#include <string>

#include "base/result.h"

namespace tlsedge::proxy {

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

struct AdminReply {
  int status = 0;
  std::string body;
};

// Sends one HTTP/1.1 request over the socket and reads the whole response
// (the request says `Connection: close`). `accept` is the Accept header.
// Fails (naming the socket) on connection or protocol errors, or after
// `timeoutSeconds` without progress.
Result<AdminReply> adminRequest(const std::string& socketPath, const std::string& method,
                                const std::string& target, const std::string& body,
                                const std::string& accept, int timeoutSeconds = 60);

}  // namespace tlsedge::proxy
