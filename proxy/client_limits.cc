#include "proxy/client_limits.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/siphash.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace tlsedge::proxy {
namespace {

// How long an idle entry takes to be the same as a new one: every bucket
// full again. With no rate limits an idle entry holds nothing at all.
uint64_t refillMs(const conf::ClientLimits& limits) {
  auto full = [](uint32_t rate, uint32_t burst) -> uint64_t {
    if (rate == 0) return 0;
    return (uint64_t{burst == 0 ? rate : burst} * 1000 + rate - 1) / rate;
  };
  return std::max(full(limits.connectionsPerSecond, limits.connectionBurst),
                  full(limits.requestsPerSecond, limits.requestBurst));
}

}  // namespace

bool RateBucket::take(uint32_t rate, uint32_t burst, uint64_t nowMs, uint64_t* waitMs) {
  const double cap = burst == 0 ? rate : burst;
  if (tokens < 0) {
    tokens = cap;
  } else if (nowMs > atMs) {
    tokens = std::min(cap, tokens + static_cast<double>(nowMs - atMs) * rate / 1000.0);
  }
  atMs = nowMs;
  if (tokens >= 1) {
    tokens -= 1;
    return true;
  }
  *waitMs = static_cast<uint64_t>(std::ceil((1 - tokens) * 1000.0 / rate));
  return false;
}

ClientTable::ClientTable() = default;

ClientTable::~ClientTable() = default;

ClientTable::KeyHash::KeyHash() : key{0, 0} {
  RAND_bytes(reinterpret_cast<uint8_t*>(key), sizeof(key));
}

size_t ClientTable::KeyHash::operator()(const Key& k) const {
  uint8_t bytes[16];
  std::memcpy(bytes, &k.high, 8);
  std::memcpy(bytes + 8, &k.low, 8);
  return static_cast<size_t>(SIPHASH_24(key, bytes, sizeof(bytes)));
}

ClientTable::Key ClientTable::keyOf(const sockaddr* client, int ipv6Prefix, bool* ipv4) {
  uint8_t b[16] = {};
  *ipv4 = false;
  if (client->sa_family == AF_INET) {
    b[10] = b[11] = 0xff;
    std::memcpy(b + 12, &reinterpret_cast<const sockaddr_in*>(client)->sin_addr, 4);
    *ipv4 = true;
  } else if (client->sa_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6*>(client)->sin6_addr;
    std::memcpy(b, a.s6_addr, 16);
    *ipv4 = IN6_IS_ADDR_V4MAPPED(&a);
    if (!*ipv4) {
      const int prefix = std::clamp(ipv6Prefix, 0, 128);
      for (int i = 0; i < 16; ++i) {
        const int keep = std::clamp(prefix - i * 8, 0, 8);
        b[i] &= static_cast<uint8_t>(0xFF00 >> keep);
      }
    }
  }
  Key key;
  std::memcpy(&key.high, b, 8);
  std::memcpy(&key.low, b + 8, 8);
  return key;
}

ClientTable::Admission ClientTable::admit(const conf::ClientLimits& limits, const sockaddr* client,
                                          bool handshake, uint64_t nowMs) {
  Admission a;
  if (!limits.enabled()) return a;
  for (const auto& network : limits.exempt) {
    if (network.contains(client)) return a;
  }
  prune(limits, nowMs);
  bool ipv4 = false;
  auto [it, inserted] = entries_.try_emplace(keyOf(client, limits.ipv6Prefix, &ipv4));
  Entry& e = it->second;
  if (inserted) {
    e.key = &it->first;
  } else if (e.connections == 0) {
    unlinkIdle(&e);
  }
  e.lastSeenMs = nowMs;
  uint64_t waitMs = 0;
  if (limits.maxConnections != 0 && e.connections >= limits.maxConnections) {
    a.limit = kConnections;
  } else if (handshake && limits.maxHandshakes != 0 && e.handshakes >= limits.maxHandshakes) {
    a.limit = kHandshakes;
  } else if (limits.connectionsPerSecond != 0 &&
             !e.connectionRate.take(limits.connectionsPerSecond, limits.connectionBurst, nowMs,
                                    &waitMs)) {
    a.limit = kConnectionRate;
  } else {
    ++e.connections;
    if (handshake) ++e.handshakes;
    a.entry = &e;
    return a;
  }
  a.refused = true;
  if (e.connections == 0) pushIdle(&e);  // remembered (its rate) as any idle client
  return a;
}

void ClientTable::closed(const conf::ClientLimits& limits, Entry* entry, uint64_t nowMs) {
  entry->lastSeenMs = nowMs;
  if (--entry->connections == 0) pushIdle(entry);
  prune(limits, nowMs);
}

uint32_t ClientTable::takeRequest(const conf::ClientLimits& limits, Entry* entry, uint64_t nowMs) {
  if (limits.requestsPerSecond == 0) return 0;
  uint64_t waitMs = 0;
  if (entry->requestRate.take(limits.requestsPerSecond, limits.requestBurst, nowMs, &waitMs)) {
    return 0;
  }
  return static_cast<uint32_t>(std::max<uint64_t>(1, (waitMs + 999) / 1000));
}

void ClientTable::unlinkIdle(Entry* e) {
  (e->older != nullptr ? e->older->newer : oldestIdle_) = e->newer;
  (e->newer != nullptr ? e->newer->older : newestIdle_) = e->older;
  e->older = e->newer = nullptr;
  --idle_;
}

void ClientTable::pushIdle(Entry* e) {
  e->older = newestIdle_;
  e->newer = nullptr;
  (newestIdle_ != nullptr ? newestIdle_->newer : oldestIdle_) = e;
  newestIdle_ = e;
  ++idle_;
}

void ClientTable::prune(const conf::ClientLimits& limits, uint64_t nowMs) {
  auto forgetOldest = [this] {
    Entry* e = oldestIdle_;
    unlinkIdle(e);
    const Key key = *e->key;
    entries_.erase(key);
  };
  while (idle_ > limits.tableSize) {
    forgetOldest();
    ++evictions_;
  }
  const uint64_t fullAfter = refillMs(limits);
  for (int i = 0; i < 2 && oldestIdle_ != nullptr; ++i) {
    if (nowMs - oldestIdle_->lastSeenMs < fullAfter) break;
    forgetOldest();
  }
}

}  // namespace tlsedge::proxy
