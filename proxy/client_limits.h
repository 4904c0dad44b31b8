// ClientTable: the per-client limits (conf::ClientLimits) of one worker.
//
// A client is an IPv4 address, or an IPv6 address's /ipv6_prefix network
// (an IPv4-mapped IPv6 address is the IPv4 client). Its entry counts its
// open connections and handshakes in progress and holds two token buckets:
// new connections and requests. A connection is admitted (or refused) once
// its client is known: at accept, or when a PROXY header names the client;
// the admitted connection holds its entry until it closes, so checking a
// request costs no lookup at all, only a bucket update.
//
// Memory is bounded however many addresses appear: an entry with
// connections open is always kept (at most max_connections of them); the
// others wait in least-recently-seen order and are forgotten beyond
// `table_size`, or as soon as their buckets would be full again (then the
// entry is the same as a new one). Forgetting a client can only let it do
// more, never less. The hash is SipHash with a per-table random key, so
// clients cannot pick addresses that collide.
//
// Thread: its worker's loop only (no locks, no atomics).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "conf/config.h"

namespace tlsedge::proxy {

// `rate` tokens a second, at most `burst` held; a new bucket is full.
struct RateBucket {
  double tokens = -1;  // < 0: new (full)
  uint64_t atMs = 0;   // when `tokens` was right
  // Takes a token at `nowMs`, or returns false and sets *waitMs to the time
  // until the next one.
  bool take(uint32_t rate, uint32_t burst, uint64_t nowMs, uint64_t* waitMs);
};

class ClientTable {
 public:
  // What a refusal was for (tlsedge_client_limited_total{limit}).
  enum Limit : size_t { kConnections, kHandshakes, kConnectionRate, kRequestRate, kLimits };
  static constexpr const char* kLimitNames[kLimits] = {"connections", "handshakes",
                                                       "connection_rate", "request_rate"};

  struct Key {
    uint64_t high = 0, low = 0;  // the 16 bytes of an IPv6 address (IPv4: ::ffff:a.b.c.d)
    bool operator==(const Key&) const = default;
  };
  struct Entry {
    uint32_t connections = 0;  // open (admitted, not yet closed)
    uint32_t handshakes = 0;   // of those, TLS handshakes in progress
    RateBucket connectionRate;
    RateBucket requestRate;
    uint64_t lastSeenMs = 0;
    // While no connection is open: its place in the least recently seen list.
    Entry* older = nullptr;
    Entry* newer = nullptr;
    const Key* key = nullptr;  // the map's
  };
  struct Admission {
    Entry* entry = nullptr;  // admitted; null if the client is exempt (or limits are off)
    bool refused = false;
    Limit limit = kConnections;  // refused: which
  };

  ClientTable();
  ~ClientTable();
  ClientTable(const ClientTable&) = delete;
  ClientTable& operator=(const ClientTable&) = delete;

  // One more connection from `client` (`handshake`: with a TLS handshake
  // still to come). Admitted connections must be released by closed(), and
  // their handshake by handshakeDone().
  Admission admit(const conf::ClientLimits& limits, const sockaddr* client, bool handshake,
                  uint64_t nowMs);
  static void handshakeDone(Entry* entry) { --entry->handshakes; }
  void closed(const conf::ClientLimits& limits, Entry* entry, uint64_t nowMs);
  // A request from `entry`'s client: 0 if it may go on, else the seconds a
  // Retry-After should say (at least 1).
  static uint32_t takeRequest(const conf::ClientLimits& limits, Entry* entry, uint64_t nowMs);

  size_t size() const { return entries_.size(); }
  uint64_t evictions() const { return evictions_; }
  // The client an address belongs to (exposed for tests).
  static Key keyOf(const sockaddr* client, int ipv6Prefix, bool* ipv4);

 private:
  struct KeyHash {
    KeyHash();        // a random key (RAND_bytes)
    uint64_t key[2];  // SipHash-2-4's
    size_t operator()(const Key& k) const;
  };
  void unlinkIdle(Entry* e);
  void pushIdle(Entry* e);
  // Forgets idle entries past `tableSize`, and up to two whose buckets are full.
  void prune(const conf::ClientLimits& limits, uint64_t nowMs);

  std::unordered_map<Key, Entry, KeyHash> entries_;
  Entry* oldestIdle_ = nullptr;
  Entry* newestIdle_ = nullptr;
  size_t idle_ = 0;
  uint64_t evictions_ = 0;  // forgotten for room (not for being full again)
};

}  // namespace tlsedge::proxy
