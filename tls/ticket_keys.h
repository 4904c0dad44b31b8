// Session ticket keys: a ring of the current key and the N previous ones,
// the same on every worker, so that a TLS 1.2 ticket or a TLS 1.3 resumption
// PSK issued by one worker is accepted by any other.
//
// Ownership and threads: the control loop owns the ring. Every rotation
// builds a new immutable TicketKeyRing (shared_ptr<const>) and posts it to
// each worker, which stores it in its own SSL_CTX (setTicketKeys) on its own
// thread. The ticket callback reads that worker-local pointer: no lock and
// no shared atomic on the handshake path.
//
// Tickets are encrypted with the current key (AES-256-CBC + HMAC-SHA256,
// named by a random 16-byte name). A ticket under a previous key is accepted
// and renewed (a fresh ticket under the current key); a ticket with an
// unknown name gets a full handshake. Key material is zeroed when a ring is
// destroyed, and never logged.
//
// A ring also carries the ticket lifetime the workers advertise (TLS 1.2
// lifetime hint, TLS 1.3 ticket_lifetime) and enforce on resumption: the time
// a ticket is sure to stay decryptable, rotation x kept (ticketLifetime), so
// a client is never told to keep a ticket longer than its key lives.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tlsedge::tls {

struct TicketKey {
  static constexpr size_t kNameSize = 16;
  std::array<uint8_t, kNameSize> name{};
  std::array<uint8_t, 32> hmacKey{};  // HMAC-SHA256
  std::array<uint8_t, 32> aesKey{};   // AES-256-CBC
};

class TicketKeyRing;
using TicketKeyRingPtr = std::shared_ptr<const TicketKeyRing>;

class TicketKeyRing {
 public:
  // A ring of one fresh key (from RAND_bytes).
  static TicketKeyRingPtr generate(uint32_t lifetimeSeconds);
  // A new ring: a fresh current key, then this ring's keys, at most `kept`
  // of them (the oldest are dropped).
  TicketKeyRingPtr rotated(size_t kept, uint32_t lifetimeSeconds) const;

  // Fleet mode (every node holds the ring etcd holds): a ring also has a
  // pending key, which decrypts but does not yet encrypt, so that a node
  // that has not yet read the fleet's next rotation still accepts the
  // tickets of one that has. generateFleet: a pending and a current key;
  // advanced: the pending key becomes current, a fresh one pending, and
  // at most `kept` previous keys stay.
  static TicketKeyRingPtr generateFleet(uint32_t lifetimeSeconds);
  TicketKeyRingPtr advanced(size_t kept, uint32_t lifetimeSeconds) const;
  // Every key and which is current, as bytes (for etcd, sealed there with
  // the fleet key; never logged), and back. parse errors: a malformed ring.
  std::string serialize() const;
  static Result<TicketKeyRingPtr> parse(std::string_view bytes, uint32_t lifetimeSeconds);

  ~TicketKeyRing();
  TicketKeyRing(const TicketKeyRing&) = delete;
  TicketKeyRing& operator=(const TicketKeyRing&) = delete;

  const TicketKey& current() const { return keys_[current_]; }
  // The key named `name` (kNameSize bytes), or nullptr; *isCurrent tells
  // whether it is the current one.
  const TicketKey* find(const uint8_t* name, bool* isCurrent) const;
  // Every key: pending (fleet mode), current and previous.
  size_t size() const { return keys_.size(); }
  uint32_t lifetimeSeconds() const { return lifetime_; }

 private:
  TicketKeyRing() = default;
  std::vector<TicketKey> keys_;  // newest to oldest: [pending,] current, previous...
  size_t current_ = 0;           // 1 when there is a pending key
  uint32_t lifetime_ = 0;
};

// The ticket lifetime for a rotation schedule: a key is current for one
// `rotation` and then kept for `kept` more, so no ticket is decryptable for
// longer than rotation x (kept + 1). An upper bound, as RFC 8446 section
// 4.6.1 defines ticket_lifetime: a ticket issued late in its key's period
// gets a full handshake sooner. At least 1 s, at most 7 days (the RFC's cap).
uint32_t ticketLifetime(std::chrono::milliseconds rotation, int kept);

// Control loop, before the worker starts: sets the ticket key callback on
// `ctx` and its first ring. Both functions also set the ctx's TLS 1.3
// session lifetime to the ring's.
void installTicketKeys(SSL_CTX* ctx, TicketKeyRingPtr ring);
// The thread that uses `ctx` (its worker): the ring new tickets are made and
// checked with from now on.
void setTicketKeys(SSL_CTX* ctx, TicketKeyRingPtr ring);

// The SSL_CTX_set_tlsext_ticket_key_cb callback (exposed for tests).
int ticketKeyCallback(SSL* ssl, uint8_t* keyName, uint8_t* iv, EVP_CIPHER_CTX* cipher,
                      HMAC_CTX* hmac, int encrypt) noexcept;

}  // namespace tlsedge::tls
