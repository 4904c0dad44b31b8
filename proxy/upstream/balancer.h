// Server choice and passive health for one upstream on one worker, as pure
// logic over plain state with the time passed in (unit-tested without
// sockets). UpstreamPool holds the state and does the logging.
//
// Thread: the state is per worker; nothing here is shared.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "conf/config.h"

namespace tlsedge::proxy {

// Passive health of one server (nginx's max_fails / fail_timeout): failed
// attempts are counted in a window that starts with the first of them and
// lasts fail_timeout; `maxFails` of them within it take the server out of
// rotation for fail_timeout. Successes do not reset the count.
struct ServerHealth {
  int fails = 0;              // failed attempts in the current window
  uint64_t windowStart = 0;   // ms, loop time
  uint64_t ejectedUntil = 0;  // ms; out of rotation while now < ejectedUntil
  bool ejected = false;       // taken out, and its return not yet noticed

  bool inRotation(uint64_t now) const { return now >= ejectedUntil; }
  // Counts one failed attempt. True if this took the server out of rotation
  // (false if it already was out, or maxFails is 0: never).
  bool recordFailure(uint64_t now, int maxFails, uint64_t failTimeoutMs);
  // True once, the first time it is asked after an ejection ran out.
  bool noticeReturn(uint64_t now);
};

// One server as the balancer sees it.
struct ServerSlot {
  ServerHealth health;
  size_t active = 0;  // attempts under way to it on this worker (least_connections)
};

// The servers one request has tried (each at most once). No allocation up
// to 64 servers.
class TriedServers {
 public:
  bool has(size_t i) const {
    return i < 64 ? ((bits_ >> i) & 1) != 0 : (i - 64 < more_.size() && more_[i - 64]);
  }
  void add(size_t i);
  size_t count() const { return count_; }

 private:
  uint64_t bits_ = 0;
  std::vector<bool> more_;
  size_t count_ = 0;
};

inline constexpr size_t kNoServer = static_cast<size_t>(-1);

// Picks a server not yet tried: among those in rotation, by `balance`
// (round robin from `*cursor`; or the fewest active attempts, ties broken
// in round-robin order). If every untried server is out of rotation, they
// are picked from anyway (better to try than to refuse: nginx does the
// same). Advances `*cursor` past the pick. kNoServer when all were tried.
size_t pickServer(std::span<const ServerSlot> servers, conf::Balance balance, size_t* cursor,
                  uint64_t now, const TriedServers& tried);

}  // namespace tlsedge::proxy
