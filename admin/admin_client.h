// The client side of the admin socket, for `tlsedge cert` (and the daemon's
// start-up check for a live daemon): blocking, one request per connection.
//
// Thread: the main thread of a CLI process, or the control loop before it
// runs (net::probeUnixSocket).
#pragma once

#include <string>

#include "base/result.h"

namespace tlsedge::admin {

struct AdminReply {
  int status = 0;
  std::string body;
  std::string retryAfter;  // the Retry-After field, if any
};

// Sends one HTTP/1.1 request over the socket and reads the whole response
// (the request says `Connection: close`). `accept` is the Accept header.
// Fails (naming the socket) on connection or protocol errors, or after
// `timeoutSeconds` without progress. A busy server's `503` with Retry-After
// (all its places taken) is retried every 250 ms within `timeoutSeconds`.
Result<AdminReply> adminRequest(const std::string& socketPath, const std::string& method,
                                const std::string& target, const std::string& body,
                                const std::string& accept, int timeoutSeconds = 60);

}  // namespace tlsedge::admin
