// The session ticket key ring: rotation keeps the configured number of
// previous keys, lookup by name, and the ticket callback encrypts with the
// current key, accepts (and renews) previous ones, and refuses unknown names.
#include "tls/ticket_keys.h"

#include <gtest/gtest.h>
#include <openssl/cipher.h>
#include <openssl/hmac.h>

#include <array>
#include <chrono>
#include <vector>

namespace tlsedge::tls {
namespace {

using Name = std::array<uint8_t, TicketKey::kNameSize>;
constexpr uint32_t kLifetime = 7200;

bool has(const TicketKeyRing& ring, const Name& name, bool* isCurrent = nullptr) {
  bool current = false;
  const TicketKey* key = ring.find(name.data(), &current);
  if (isCurrent != nullptr) *isCurrent = current;
  return key != nullptr;
}

TEST(TicketKeyRing, GenerateMakesOneRandomKey) {
  auto a = TicketKeyRing::generate(kLifetime);
  auto b = TicketKeyRing::generate(kLifetime);
  EXPECT_EQ(a->size(), 1u);
  EXPECT_NE(a->current().name, b->current().name);
  EXPECT_NE(a->current().aesKey, b->current().aesKey);
  EXPECT_NE(a->current().hmacKey, a->current().aesKey);
}

TEST(TicketKeyRing, RotationKeepsNPrevious) {
  auto ring = TicketKeyRing::generate(kLifetime);
  std::vector<Name> names{ring->current().name};
  for (int i = 0; i < 5; ++i) {
    ring = ring->rotated(2, kLifetime);
    names.push_back(ring->current().name);
  }
  ASSERT_EQ(ring->size(), 3u);  // current + 2 previous
  bool current = false;
  EXPECT_TRUE(has(*ring, names[5], &current));
  EXPECT_TRUE(current);
  EXPECT_TRUE(has(*ring, names[4], &current));
  EXPECT_FALSE(current);
  EXPECT_TRUE(has(*ring, names[3], &current));
  EXPECT_FALSE(current);
  EXPECT_FALSE(has(*ring, names[2]));
  EXPECT_FALSE(has(*ring, names[0]));
}

TEST(TicketKeyRing, AFleetRingHasAPendingKeyThatDecryptsAndBecomesCurrent) {
  auto ring = TicketKeyRing::generateFleet(kLifetime);
  ASSERT_EQ(ring->size(), 2u);
  const Name current = ring->current().name;
  auto next = ring->advanced(2, kLifetime);
  // The pending key of `ring` is `next`'s current one: a node still on
  // `ring` accepts (and renews) the tickets of a node already on `next`.
  bool isCurrent = true;
  EXPECT_TRUE(has(*ring, next->current().name, &isCurrent));
  EXPECT_FALSE(isCurrent);
  EXPECT_TRUE(has(*next, current, &isCurrent));
  EXPECT_FALSE(isCurrent);
  EXPECT_EQ(next->size(), 3u);  // pending, current, the previous current
  auto later = next->advanced(2, kLifetime)->advanced(2, kLifetime)->advanced(2, kLifetime);
  EXPECT_EQ(later->size(), 4u);  // pending, current, 2 kept
  EXPECT_FALSE(has(*later, current));
}

TEST(TicketKeyRing, ARingRoundTripsAsBytesAndMalformedOnesAreRefused) {
  auto ring = TicketKeyRing::generateFleet(kLifetime)->advanced(1, kLifetime);
  auto back = TicketKeyRing::parse(ring->serialize(), 60);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ((*back)->size(), ring->size());
  EXPECT_EQ((*back)->current().name, ring->current().name);
  EXPECT_EQ((*back)->current().aesKey, ring->current().aesKey);
  EXPECT_EQ((*back)->current().hmacKey, ring->current().hmacKey);
  EXPECT_EQ((*back)->lifetimeSeconds(), 60u);
  const std::string bytes = ring->serialize();
  EXPECT_FALSE(TicketKeyRing::parse(bytes.substr(0, bytes.size() - 1), 60).ok());
  EXPECT_FALSE(TicketKeyRing::parse("x" + bytes.substr(1), 60).ok());
  EXPECT_FALSE(TicketKeyRing::parse("", 60).ok());
}

TEST(TicketKeyRing, RotationDoesNotChangeTheOldRing) {
  auto first = TicketKeyRing::generate(kLifetime);
  auto second = first->rotated(1, kLifetime);
  EXPECT_EQ(first->size(), 1u);
  EXPECT_EQ(second->size(), 2u);
  EXPECT_TRUE(has(*second, first->current().name));
  EXPECT_FALSE(has(*first, second->current().name));
}

TEST(TicketKeyRing, KeptZeroKeepsOnlyCurrent) {
  auto ring = TicketKeyRing::generate(kLifetime);
  Name old = ring->current().name;
  ring = ring->rotated(0, kLifetime);
  EXPECT_EQ(ring->size(), 1u);
  EXPECT_FALSE(has(*ring, old));
}

TEST(TicketLifetime, IsHowLongAKeyLives) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  EXPECT_EQ(ticketLifetime(hours(1), 2), 3u * 3600);         // current, then two more rotations
  EXPECT_EQ(ticketLifetime(hours(1), 0), 3600u);             // only the current key
  EXPECT_EQ(ticketLifetime(milliseconds(200), 0), 1u);       // never 0 (no tickets at all)
  EXPECT_EQ(ticketLifetime(hours(24), 30), 7u * 24 * 3600);  // RFC 8446 maximum
}

TEST(TicketLifetime, CarriedByRotatedRings) {
  auto ring = TicketKeyRing::generate(600);
  EXPECT_EQ(ring->lifetimeSeconds(), 600u);
  EXPECT_EQ(ring->rotated(1, 1200)->lifetimeSeconds(), 1200u);
}

// The callback on a real SSL of a context with the ring installed.
class TicketCallback : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.reset(SSL_CTX_new(TLS_method()));
    ring_ = TicketKeyRing::generate(kLifetime);
    installTicketKeys(ctx_.get(), ring_);
    ssl_.reset(SSL_new(ctx_.get()));
  }

  int call(Name& name, bool encrypt) {
    bssl::ScopedEVP_CIPHER_CTX cipher;
    bssl::ScopedHMAC_CTX hmac;
    std::array<uint8_t, EVP_MAX_IV_LENGTH> iv{};
    return ticketKeyCallback(ssl_.get(), name.data(), iv.data(), cipher.get(), hmac.get(),
                             encrypt ? 1 : 0);
  }

  bssl::UniquePtr<SSL_CTX> ctx_;
  bssl::UniquePtr<SSL> ssl_;
  TicketKeyRingPtr ring_;
};

TEST_F(TicketCallback, EncryptsWithCurrentAndRenewsPrevious) {
  Name name{};
  EXPECT_EQ(call(name, true), 1);
  EXPECT_EQ(name, ring_->current().name);
  EXPECT_EQ(call(name, false), 1);  // current: accepted as it is

  auto next = ring_->rotated(1, kLifetime);
  setTicketKeys(ctx_.get(), next);
  EXPECT_EQ(call(name, false), 2);  // previous: accepted and renewed
  Name fresh{};
  EXPECT_EQ(call(fresh, true), 1);
  EXPECT_EQ(fresh, next->current().name);

  setTicketKeys(ctx_.get(), next->rotated(1, kLifetime));
  EXPECT_EQ(call(name, false), 0);  // dropped: a full handshake
  Name unknown{};
  unknown.fill(0xAB);
  EXPECT_EQ(call(unknown, false), 0);
}

}  // namespace
}  // namespace tlsedge::tls
