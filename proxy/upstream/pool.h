// UpstreamPool: what one worker keeps about the upstreams it talks to —
// keep-alive connections per server, the balancing cursor, passive health,
// the last TLS session per server — filed by UpstreamSetup::stateKey.
//
// Thread: one worker loop; nothing here is shared with other workers, so
// health and balancing are per worker (as in nginx without a shared zone).
// Ownership: the pool owns the per-upstream states; idle connections own
// themselves (see UpstreamConnection) and are linked into the pool's lists.
#pragma once

#include <openssl/ssl.h>
#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/upstream_tls.h"

namespace tlsedge::proxy {

class UpstreamConnection;

// Idle connections to one server, oldest first. Reuse takes the newest (the
// least likely to have been closed by the origin meanwhile); the idle timer
// closes from the oldest.
struct IdleList {
  UpstreamConnection* oldest = nullptr;
  UpstreamConnection* newest = nullptr;
  size_t size = 0;
};

struct ServerConnections {
  IdleList idle;
  bssl::UniquePtr<SSL_SESSION> session;  // the last one the server gave us, for resumption
};

// What a worker's pool did, for metrics: WorkerStats embeds it.
struct UpstreamPoolStats {
  uint64_t upstreamConnectionsOpened = 0;  // connects started
  uint64_t upstreamConnectionsReused = 0;  // exchanges that took an idle connection
};

// One upstream (one stateKey) on one worker.
struct UpstreamState {
  std::string key;
  std::vector<ServerSlot> slots;           // balancing and health, per server
  std::vector<ServerConnections> servers;  // pooled connections, per server
  size_t cursor = 0;                       // round robin
  size_t users = 0;                        // exchanges and connections pointing here
  uint64_t lastUsed = 0;                   // ms, loop time
  uint64_t keepMs = 0;                     // kept this long unused (fail_timeout)
};

class UpstreamPool {
 public:
  UpstreamPool(uv_loop_t* loop, UpstreamPoolStats& stats) : loop_(loop), stats_(stats) {}
  ~UpstreamPool();  // after the loop ended: touches no handle
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  uv_loop_t* loop() const { return loop_; }
  uint64_t now() const { return uv_now(loop_); }
  UpstreamPoolStats& stats() { return stats_; }

  // The state for `setup`, created on first use. Pinned (not dropped) until
  // unpin(); pin() adds a user to a state already held.
  UpstreamState* acquire(const UpstreamSetup& setup);
  void pin(UpstreamState* state) { ++state->users; }
  void unpin(UpstreamState* state) { --state->users; }

  // The server for a request's next attempt (see pickServer); kNoServer when
  // it tried them all. Logs a server coming back into rotation.
  size_t pick(UpstreamState& state, const conf::Upstream& upstream, const TriedServers& tried);
  // A failed attempt (connect error or timeout, TLS failure, reset or
  // timeout before any response byte). Logs when it takes the server out.
  void recordFailure(UpstreamState& state, size_t server, const conf::Upstream& upstream,
                     const std::string& reason);

  // The newest idle connection to `server` private to `owner` (0: shared
  // ones), unlinked; null if none.
  UpstreamConnection* takeIdle(UpstreamState& state, size_t server, uint64_t owner = 0);
  // Keeps a connection that finished an exchange cleanly for reuse, within
  // `keepalive` per server (the oldest is closed to make room) and for
  // `idle_timeout`; or closes it. With `keepalive: auto` the bound is high
  // and the pool follows demand: reuse takes the newest, so connections
  // beyond what the requests in flight need are the oldest, and
  // idle_timeout closes them.
  void putIdle(UpstreamConnection* connection, const conf::Upstream& upstream);
  // A connection is closing: unlink it if it is idle.
  void forget(UpstreamConnection* connection);
  // Draining: closes every idle connection and pools no more.
  void closeIdle();
  // The client connection `owner` closed: its idle private connections
  // (send_proxy_protocol) can serve nobody else, so they close now rather
  // than at idle_timeout.
  void closeOwned(uint64_t owner);

 private:
  static void onIdleTimer(uv_timer_t* timer) noexcept;
  void expireIdle();
  void unlink(UpstreamConnection* connection);
  void dropUnused();

  uv_loop_t* loop_;
  UpstreamPoolStats& stats_;
  std::unordered_map<std::string, std::unique_ptr<UpstreamState>> states_;
  uv_timer_t* idleTimer_ = nullptr;  // one for the whole pool, due at the earliest expiry
  // Idle private connections by owner: the newest of each owner's list.
  std::unordered_map<uint64_t, UpstreamConnection*> ownedIdle_;
  bool draining_ = false;
};

}  // namespace tlsedge::proxy
