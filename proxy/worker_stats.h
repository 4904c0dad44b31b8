// WorkerStats: counters of what a worker refused or cut short, for
// operators (metrics fold them at scrape time; today they are logged at
// debug level when the worker stops).
//
// Thread: the worker's own loop only. Plain integers, no atomics: nothing
// else writes them, and a reader on another thread must go through
// Worker::post (principle 2) or accept torn values.
#pragma once

#include <cstdint>
#include <string>

namespace tlsedge::proxy {

struct WorkerStats {
  uint64_t handshakeTimeouts = 0;  // TLS handshakes not done within handshake_timeout
  uint64_t handshakeFailures = 0;  // TLS handshakes that failed (garbage, refused, peer gone)
  uint64_t headerTimeouts = 0;     // heads not complete within header_timeout
  uint64_t bodyTimeouts = 0;       // request bodies stalled beyond body_timeout
  uint64_t sendTimeouts = 0;       // clients that took no response bytes for send_timeout
  uint64_t idleTimeouts = 0;       // keep-alive connections closed after keepalive_timeout
  uint64_t badRequests = 0;        // 400 for malformed requests
  uint64_t requestTimeouts = 0;    // 408 sent (header or body timeout)
  uint64_t bodiesTooLarge = 0;     // 413 (max_body_size)
  uint64_t headsTooLarge = 0;      // 431 (max_header_size, max_headers)
  uint64_t acceptPauses = 0;       // times accepting paused at max_connections/max_handshakes

  // "handshake_timeouts=1 handshake_failures=0 ..."
  std::string summary() const {
    std::string s;
    auto add = [&s](const char* name, uint64_t value) {
      if (!s.empty()) s += ' ';
      s += name;
      s += '=';
      s += std::to_string(value);
    };
    add("handshake_timeouts", handshakeTimeouts);
    add("handshake_failures", handshakeFailures);
    add("header_timeouts", headerTimeouts);
    add("body_timeouts", bodyTimeouts);
    add("send_timeouts", sendTimeouts);
    add("idle_timeouts", idleTimeouts);
    add("400", badRequests);
    add("408", requestTimeouts);
    add("413", bodiesTooLarge);
    add("431", headsTooLarge);
    add("accept_pauses", acceptPauses);
    return s;
  }
};

}  // namespace tlsedge::proxy
