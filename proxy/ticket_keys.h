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
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace tlsedge::proxy {

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
  static TicketKeyRingPtr generate();
  // A new ring: a fresh current key, then this ring's keys, at most `kept`
  // of them (the oldest are dropped).
  TicketKeyRingPtr rotated(size_t kept) const;

  ~TicketKeyRing();
  TicketKeyRing(const TicketKeyRing&) = delete;
  TicketKeyRing& operator=(const TicketKeyRing&) = delete;

  const TicketKey& current() const { return keys_.front(); }
  // The key named `name` (kNameSize bytes), or nullptr; *isCurrent tells
  // whether it is the current one.
  const TicketKey* find(const uint8_t* name, bool* isCurrent) const;
  // Current + previous.
  size_t size() const { return keys_.size(); }

 private:
  TicketKeyRing() = default;
  std::vector<TicketKey> keys_;  // [0] is the current key, then newest to oldest
};

// Control loop, before the worker starts: sets the ticket key callback on
// `ctx` and its first ring.
void installTicketKeys(SSL_CTX* ctx, TicketKeyRingPtr ring);
// The thread that uses `ctx` (its worker): the ring new tickets are made and
// checked with from now on.
void setTicketKeys(SSL_CTX* ctx, TicketKeyRingPtr ring);

// The SSL_CTX_set_tlsext_ticket_key_cb callback (exposed for tests).
int ticketKeyCallback(SSL* ssl, uint8_t* keyName, uint8_t* iv, EVP_CIPHER_CTX* cipher,
                      HMAC_CTX* hmac, int encrypt);

}  // namespace tlsedge::proxy
