#include "tls/ticket_keys.h"

#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace tlsedge::tls {
namespace {

// What the SSL_CTX's ex_data slot holds: the worker's current ring. Written
// only by the thread that owns the SSL_CTX (installTicketKeys before that
// thread starts), freed with the SSL_CTX.
struct Slot {
  TicketKeyRingPtr ring;
};

void freeSlot(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<Slot*>(ptr);
}

int slotIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &freeSlot);
  return index;
}

Slot* slotOf(const SSL_CTX* ctx) {
  return static_cast<Slot*>(SSL_CTX_get_ex_data(ctx, slotIndex()));
}

// Fills the key in place (no copy of the material left on the stack).
void fill(TicketKey& key) {
  RAND_bytes(key.name.data(), key.name.size());
  RAND_bytes(key.hmacKey.data(), key.hmacKey.size());
  RAND_bytes(key.aesKey.data(), key.aesKey.size());
}

void cleanse(TicketKey& key) { OPENSSL_cleanse(&key, sizeof key); }

// TLS 1.3 only. A TLS 1.2 session's timeout also bounds its master secret's
// age, renewed tickets included, so it keeps BoringSSL's 2 h default.
void setLifetime(SSL_CTX* ctx, const TicketKeyRing& ring) {
  SSL_CTX_set_session_psk_dhe_timeout(ctx, ring.lifetimeSeconds());
}

}  // namespace

TicketKeyRingPtr TicketKeyRing::generate(uint32_t lifetimeSeconds) {
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing);
  ring->lifetime_ = lifetimeSeconds;
  fill(ring->keys_.emplace_back());
  return ring;
}

TicketKeyRingPtr TicketKeyRing::rotated(size_t kept, uint32_t lifetimeSeconds) const {
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing);
  ring->lifetime_ = lifetimeSeconds;
  ring->keys_.reserve(1 + std::min(kept, keys_.size()));
  fill(ring->keys_.emplace_back());
  for (size_t i = 0; i < keys_.size() && i < kept; ++i) ring->keys_.push_back(keys_[i]);
  return ring;
}

TicketKeyRingPtr TicketKeyRing::generateFleet(uint32_t lifetimeSeconds) {
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing);
  ring->lifetime_ = lifetimeSeconds;
  ring->keys_.resize(2);
  for (TicketKey& key : ring->keys_) fill(key);
  ring->current_ = 1;
  return ring;
}

TicketKeyRingPtr TicketKeyRing::advanced(size_t kept, uint32_t lifetimeSeconds) const {
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing);
  ring->lifetime_ = lifetimeSeconds;
  fill(ring->keys_.emplace_back());                     // the next pending key
  if (current_ == 0) fill(ring->keys_.emplace_back());  // no pending one to promote
  // The old pending (now current), then the old current and previous ones.
  for (size_t i = 0; i < keys_.size() && ring->keys_.size() < 2 + kept; ++i) {
    ring->keys_.push_back(keys_[i]);
  }
  ring->current_ = 1;
  return ring;
}

namespace {
constexpr std::string_view kRingMagic = "tlsedge-ticket-ring\x01";
constexpr size_t kKeyBytes =
    sizeof(TicketKey::name) + sizeof(TicketKey::hmacKey) + sizeof(TicketKey::aesKey);
}  // namespace

std::string TicketKeyRing::serialize() const {
  std::string out(kRingMagic);
  out.push_back(static_cast<char>(current_));
  out.push_back(static_cast<char>(keys_.size()));
  for (const TicketKey& key : keys_) {
    out.append(reinterpret_cast<const char*>(key.name.data()), key.name.size());
    out.append(reinterpret_cast<const char*>(key.hmacKey.data()), key.hmacKey.size());
    out.append(reinterpret_cast<const char*>(key.aesKey.data()), key.aesKey.size());
  }
  return out;
}

Result<TicketKeyRingPtr> TicketKeyRing::parse(std::string_view bytes, uint32_t lifetimeSeconds) {
  if (bytes.substr(0, kRingMagic.size()) != kRingMagic || bytes.size() < kRingMagic.size() + 2) {
    return makeError("ticket key ring: not a ring", ErrorKind::kInvalid);
  }
  const size_t current = static_cast<uint8_t>(bytes[kRingMagic.size()]);
  const size_t count = static_cast<uint8_t>(bytes[kRingMagic.size() + 1]);
  bytes.remove_prefix(kRingMagic.size() + 2);
  if (count == 0 || current >= count || current > 1 || bytes.size() != count * kKeyBytes) {
    return makeError("ticket key ring: malformed (" + std::to_string(count) + " keys)",
                     ErrorKind::kInvalid);
  }
  std::shared_ptr<TicketKeyRing> ring(new TicketKeyRing);
  ring->lifetime_ = lifetimeSeconds;
  ring->current_ = current;
  ring->keys_.resize(count);
  for (TicketKey& key : ring->keys_) {
    std::memcpy(key.name.data(), bytes.data(), key.name.size());
    std::memcpy(key.hmacKey.data(), bytes.data() + key.name.size(), key.hmacKey.size());
    std::memcpy(key.aesKey.data(), bytes.data() + key.name.size() + key.hmacKey.size(),
                key.aesKey.size());
    bytes.remove_prefix(kKeyBytes);
  }
  return TicketKeyRingPtr(std::move(ring));
}

TicketKeyRing::~TicketKeyRing() {
  for (TicketKey& key : keys_) cleanse(key);
}

const TicketKey* TicketKeyRing::find(const uint8_t* name, bool* isCurrent) const {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (CRYPTO_memcmp(keys_[i].name.data(), name, TicketKey::kNameSize) == 0) {
      *isCurrent = i == current_;
      return &keys_[i];
    }
  }
  return nullptr;
}

uint32_t ticketLifetime(std::chrono::milliseconds rotation, int kept) {
  constexpr int64_t kMaxSeconds = 7 * 24 * 3600;
  const int64_t seconds =
      std::chrono::duration_cast<std::chrono::seconds>(rotation).count() * (std::max(kept, 0) + 1);
  return static_cast<uint32_t>(std::clamp<int64_t>(seconds, 1, kMaxSeconds));
}

void installTicketKeys(SSL_CTX* ctx, TicketKeyRingPtr ring) {
  setLifetime(ctx, *ring);
  auto* slot = new Slot{std::move(ring)};
  if (!SSL_CTX_set_ex_data(ctx, slotIndex(), slot)) {
    delete slot;
    std::abort();  // only fails on allocation failure
  }
  SSL_CTX_set_tlsext_ticket_key_cb(ctx, &ticketKeyCallback);
}

void setTicketKeys(SSL_CTX* ctx, TicketKeyRingPtr ring) {
  setLifetime(ctx, *ring);
  Slot* slot = slotOf(ctx);
  if (slot != nullptr) slot->ring = std::move(ring);  // the old ring goes when its last user does
}

int ticketKeyCallback(SSL* ssl, uint8_t* keyName, uint8_t* iv, EVP_CIPHER_CTX* cipher,
                      HMAC_CTX* hmac, int encrypt) noexcept {
  const Slot* slot = slotOf(SSL_get_SSL_CTX(ssl));
  if (slot == nullptr || slot->ring == nullptr) return encrypt ? -1 : 0;
  const EVP_CIPHER* aes = EVP_aes_256_cbc();
  if (encrypt) {
    const TicketKey& key = slot->ring->current();
    std::memcpy(keyName, key.name.data(), key.name.size());
    if (!RAND_bytes(iv, EVP_CIPHER_iv_length(aes)) ||
        !EVP_EncryptInit_ex(cipher, aes, nullptr, key.aesKey.data(), iv) ||
        !HMAC_Init_ex(hmac, key.hmacKey.data(), key.hmacKey.size(), EVP_sha256(), nullptr)) {
      return -1;
    }
    return 1;
  }
  bool isCurrent = false;
  const TicketKey* key = slot->ring->find(keyName, &isCurrent);
  if (key == nullptr) return 0;  // expired or foreign: a full handshake
  if (!HMAC_Init_ex(hmac, key->hmacKey.data(), key->hmacKey.size(), EVP_sha256(), nullptr) ||
      !EVP_DecryptInit_ex(cipher, aes, nullptr, key->aesKey.data(), iv)) {
    return -1;
  }
  return isCurrent ? 1 : 2;  // 2: renew, so that the client gets a ticket under the current key
}

}  // namespace tlsedge::tls
