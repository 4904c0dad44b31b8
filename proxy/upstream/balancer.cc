#include "proxy/upstream/balancer.h"

namespace tlsedge::proxy {

bool ServerHealth::recordFailure(uint64_t now, int maxFails, uint64_t failTimeoutMs) {
  if (maxFails <= 0) return false;
  if (!inRotation(now)) {
    // Tried while out (every server was): it stays out a while longer.
    ejectedUntil = now + failTimeoutMs;
    return false;
  }
  if (fails == 0 || now - windowStart >= failTimeoutMs) {
    fails = 0;
    windowStart = now;
  }
  if (++fails < maxFails) return false;
  fails = 0;
  ejectedUntil = now + failTimeoutMs;
  ejected = true;
  return true;
}

bool ServerHealth::noticeReturn(uint64_t now) {
  if (!ejected || !inRotation(now)) return false;
  ejected = false;
  return true;
}

void TriedServers::add(size_t i) {
  if (has(i)) return;
  if (i < 64) {
    bits_ |= uint64_t{1} << i;
  } else {
    if (more_.size() <= i - 64) more_.resize(i - 64 + 1);
    more_[i - 64] = true;
  }
  ++count_;
}

size_t pickServer(std::span<const ServerSlot> servers, conf::Balance balance, size_t* cursor,
                  uint64_t now, const TriedServers& tried) {
  const size_t n = servers.size();
  if (n == 0) return kNoServer;
  for (bool healthyOnly : {true, false}) {
    size_t best = kNoServer;
    for (size_t k = 0; k < n; ++k) {
      size_t i = (*cursor + k) % n;
      if (tried.has(i)) continue;
      if (healthyOnly && !servers[i].health.inRotation(now)) continue;
      if (balance == conf::Balance::kRoundRobin) {
        best = i;
        break;
      }
      // Strictly fewer: the first in round-robin order wins a tie.
      if (best == kNoServer || servers[i].active < servers[best].active) best = i;
    }
    if (best != kNoServer) {
      *cursor = (best + 1) % n;
      return best;
    }
  }
  return kNoServer;
}

}  // namespace tlsedge::proxy
