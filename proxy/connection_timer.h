// ConnectionTimer: the one deadline of a client connection.
//
// A connection is always in exactly one phase that a limit applies to (the
// TLS handshake, idle between requests, reading a head, reading a body,
// waiting for the client to take response bytes, lingering before close), so
// one uv_timer_t, re-armed with the deadline of the current phase, serves
// every timeout: no timer per limit, and nothing allocated per phase. The
// connection decides the phase; this only arms and reports.
//
// Thread: the connection's worker loop. Lifetime: embedded in its owner;
// close() releases the handle and then calls Owner::onTimerClosed(), where
// the owner may be deleted.
#pragma once

#include <uv.h>

#include <cstdint>

#include "conf/config.h"

namespace tlsedge::proxy {

class ConnectionTimer {
 public:
  enum class Phase : uint8_t {
    kNone,       // no client deadline (e.g. waiting for the origin, which has its own)
    kHandshake,  // limits.handshake_timeout
    kIdle,       // limits.keepalive_timeout
    kHead,       // limits.header_timeout
    kBody,       // limits.body_timeout, from the last body read
    kSend,       // limits.send_timeout, from the last progress writing
    kLinger,     // lingering close
  };

  class Owner {
   public:
    virtual void onDeadline(Phase phase) = 0;
    // kTrimAfter into kIdle: give back what an idle connection need not
    // hold (buffers kept at their largest size). The countdown goes on.
    virtual void onIdleTrim() = 0;
    // After close(): libuv is done with the handle; the owner may go.
    virtual void onTimerClosed() = 0;

   protected:
    ~Owner() = default;
  };

  // When an idle connection trims (see Owner::onIdleTrim): late enough
  // that a connection between two requests of a burst does not.
  static constexpr conf::Duration kTrimAfter{std::chrono::milliseconds(500)};

  ConnectionTimer() = default;
  ConnectionTimer(const ConnectionTimer&) = delete;
  ConnectionTimer& operator=(const ConnectionTimer&) = delete;

  void init(uv_loop_t* loop, Owner* owner);

  Phase phase() const { return phase_; }
  // Enters `phase` with a countdown of `timeout`; staying in the same phase
  // keeps the running countdown unless `restart`.
  void enter(Phase phase, conf::Duration timeout, bool restart = false);
  // Releases the handle; Owner::onTimerClosed() follows.
  void close();

 private:
  static void onTimeout(uv_timer_t* timer) noexcept;

  uv_timer_t timer_;
  Owner* owner_ = nullptr;
  Phase phase_ = Phase::kNone;
  // kIdle: the countdown running is kTrimAfter's; idleRest_ ms follow it.
  bool trimDue_ = false;
  uint64_t idleRest_ = 0;
};

}  // namespace tlsedge::proxy
