// The fleet key ring: the key file (format, mode, line-numbered errors
// that never echo key material), sealing and opening (round trip, rotation,
// associated data, tampering, unknown ids, truncation).
#include "fleet/fleet_key.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "tests/unit/certstore/test_pki.h"

namespace tlsedge::fleet {
namespace {

using certstore::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// Fixed keys, so that a test can tell they never reach a message.
constexpr const char* kKeyA = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";  // bytes 0..31
constexpr const char* kKeyB = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";  // bytes 32..63

std::string writeKeyFile(const TempDir& dir, const std::string& text, mode_t mode = 0600) {
  const std::string path = dir.file("fleet.key");
  {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  }
  EXPECT_EQ(chmod(path.c_str(), mode), 0);
  return path;
}

FleetKey ring(const std::string& text) {
  auto parsed = FleetKey::parse(text, "/etc/tlsedge/fleet.key");
  EXPECT_TRUE(parsed.ok()) << parsed.error().message;
  return std::move(*parsed);
}

std::string problem(const std::string& text) {
  auto parsed = FleetKey::parse(text, "/x");
  EXPECT_FALSE(parsed.ok()) << text;
  return parsed.ok() ? std::string() : parsed.error().message;
}

TEST(FleetKey, LoadsAFileWithCommentsAndBlankLines) {
  TempDir dir;
  const std::string path = writeKeyFile(
      dir, std::string("# the fleet's keys\n\n  k2 ") + kKeyB + "  \r\n# old\nk1\t" + kKeyA + "\n");
  auto key = FleetKey::load(path);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->sealingId(), "k2");
  EXPECT_THAT(key->ids(), ::testing::ElementsAre("k2", "k1"));
  EXPECT_EQ(key->source(), path);
}

TEST(FleetKey, SealsAndOpens) {
  const FleetKey key = ring(std::string("k1 ") + kKeyA + "\n");
  for (const std::string& plaintext :
       {std::string(), std::string("-----BEGIN PRIVATE KEY-----\n"), std::string(100000, '\0')}) {
    auto sealed = key.seal(plaintext, "/tlsedge/certs/shop/privkey.pem");
    ASSERT_TRUE(sealed.ok()) << sealed.error().message;
    EXPECT_TRUE(FleetKey::isSealed(*sealed));
    EXPECT_EQ(sealed->size(), 15 + 1 + 2 + 12 + plaintext.size() + 16);
    if (!plaintext.empty()) {
      EXPECT_EQ(sealed->find(plaintext), std::string::npos);
    }
    auto opened = key.open(*sealed, "/tlsedge/certs/shop/privkey.pem");
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_EQ(*opened, plaintext);
  }
}

TEST(FleetKey, SealedValuesAreSelfDescribingAndFresh) {
  const FleetKey key = ring(std::string("k1 ") + kKeyA + "\n");
  auto a = key.seal("secret", "aad");
  auto b = key.seal("secret", "aad");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->substr(0, 18), std::string("tlsedge-sealed\x01\x02k1", 18));
  EXPECT_NE(*a, *b);  // a fresh nonce each time
  EXPECT_FALSE(FleetKey::isSealed("-----BEGIN PRIVATE KEY-----"));
  EXPECT_FALSE(FleetKey::isSealed("tlsedge-sealed"));
  EXPECT_FALSE(FleetKey::isSealed(""));
}

TEST(FleetKey, RotationOpensOldValuesAndSealsUnderTheNewKey) {
  const FleetKey before = ring(std::string("old ") + kKeyA + "\n");
  auto sealedOld = before.seal("key bytes", "k");
  ASSERT_TRUE(sealedOld.ok());

  const FleetKey after = ring(std::string("new ") + kKeyB + "\nold " + kKeyA + "\n");
  EXPECT_EQ(after.sealingId(), "new");
  auto opened = after.open(*sealedOld, "k");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(*opened, "key bytes");

  auto sealedNew = after.seal("key bytes", "k");
  ASSERT_TRUE(sealedNew.ok());
  EXPECT_EQ(sealedNew->substr(15, 4), std::string("\x03new", 4));
  EXPECT_EQ(FleetKey::sealedWith(*sealedNew), "new");  // what `fleet reseal` looks at
  EXPECT_EQ(FleetKey::sealedWith(*sealedOld), "old");
  EXPECT_EQ(FleetKey::sealedWith("plain PEM"), "");
  EXPECT_EQ(FleetKey::sealedWith(sealedNew->substr(0, 17)), "");  // the id cut short
  // Once the old key is dropped, old values no longer open; new ones do.
  const FleetKey done = ring(std::string("new ") + kKeyB + "\n");
  EXPECT_TRUE(done.open(*sealedNew, "k").ok());
  auto stale = done.open(*sealedOld, "k");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().message,
            "sealed with fleet key 'old', which /etc/tlsedge/fleet.key does not hold");
  EXPECT_EQ(stale.error().kind, ErrorKind::kInvalid);
}

TEST(FleetKey, WrongAssociatedDataDoesNotOpen) {
  const FleetKey key = ring(std::string("k1 ") + kKeyA + "\n");
  auto sealed = key.seal("secret", "/tlsedge/certs/shop/privkey.pem");
  ASSERT_TRUE(sealed.ok());
  auto moved = key.open(*sealed, "/tlsedge/certs/blog/privkey.pem");
  ASSERT_FALSE(moved.ok());
  EXPECT_EQ(moved.error().message,
            "sealed value does not open under fleet key 'k1': wrong key or altered");
  EXPECT_FALSE(key.open(*sealed, "").ok());
}

TEST(FleetKey, EveryAlteredByteIsRefused) {
  const FleetKey key = ring(std::string("k1 ") + kKeyA + "\n");
  auto sealed = key.seal("secret", "aad");
  ASSERT_TRUE(sealed.ok());
  // Past the magic: the id length, the id, the nonce, the ciphertext, the tag.
  for (size_t i = 15; i < sealed->size(); ++i) {
    std::string altered = *sealed;
    altered[i] = static_cast<char>(altered[i] ^ 0x01);
    auto opened = key.open(altered, "aad");
    EXPECT_FALSE(opened.ok()) << "byte " << i;
  }
}

TEST(FleetKey, TheIdIsAuthenticated) {
  // The same key under two ids: a value relabelled with the other id fails.
  const FleetKey key = ring(std::string("k1 ") + kKeyA + "\nk2 " + kKeyA + "\n");
  auto sealed = key.seal("secret", "aad");
  ASSERT_TRUE(sealed.ok());
  std::string relabelled = *sealed;
  relabelled[17] = '2';
  auto opened = key.open(relabelled, "aad");
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.error().message, HasSubstr("fleet key 'k2': wrong key or altered"));
}

TEST(FleetKey, AnotherKeyUnderTheSameIdDoesNotOpen) {
  auto sealed = ring(std::string("k1 ") + kKeyA + "\n").seal("secret", "aad");
  ASSERT_TRUE(sealed.ok());
  auto opened = ring(std::string("k1 ") + kKeyB + "\n").open(*sealed, "aad");
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.error().message, HasSubstr("wrong key or altered"));
}

TEST(FleetKey, TruncatedAndForeignValues) {
  const FleetKey key = ring(std::string("k1 ") + kKeyA + "\n");
  auto sealed = key.seal("secret", "aad");
  ASSERT_TRUE(sealed.ok());
  for (size_t size : {15, 16, 18, 30, 45}) {
    auto opened = key.open(sealed->substr(0, size), "aad");
    ASSERT_FALSE(opened.ok()) << size;
    EXPECT_EQ(opened.error().message,
              "sealed value truncated (" + std::to_string(size) + " bytes)");
  }
  // One byte short of the tag: a tag that does not match.
  EXPECT_FALSE(key.open(sealed->substr(0, sealed->size() - 1), "aad").ok());
  auto plain = key.open("-----BEGIN PRIVATE KEY-----", "aad");
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.error().message, "not a sealed value");
}

TEST(FleetKey, RefusesAFileOthersMayReadOrWrite) {
  TempDir dir;
  for (auto [mode, what] :
       {std::pair{0644, "mode 0644, must not be readable by group or others (chmod 600)"},
        std::pair{0640, "mode 0640, must not be readable"},
        std::pair{0604, "mode 0604, must not be readable"},
        std::pair{0620, "mode 0620, must not be writable by group or others"}}) {
    const std::string path = writeKeyFile(dir, std::string("k1 ") + kKeyA + "\n", mode);
    auto key = FleetKey::load(path);
    ASSERT_FALSE(key.ok()) << mode;
    EXPECT_EQ(key.error().message.rfind("fleet key " + path + ": " + what, 0), 0u)
        << key.error().message;
    EXPECT_EQ(key.error().kind, ErrorKind::kInvalid);
  }
  EXPECT_TRUE(FleetKey::load(writeKeyFile(dir, std::string("k1 ") + kKeyA + "\n", 0400)).ok());
  auto missing = FleetKey::load(dir.file("none.key"));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("fleet key " + dir.file("none.key")));
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
}

TEST(FleetKey, BadLinesSayWhereAndEchoNoKey) {
  const std::string a = kKeyA;
  EXPECT_EQ(problem("# keys\n\n" + a + "\n"),
            "fleet key /x:3: expected `ID KEY` (an id, a blank, base64 of 32 bytes), got 1 field");
  EXPECT_EQ(problem("k1 " + a + " extra\n"),
            "fleet key /x:1: expected `ID KEY` (an id, a blank, base64 of 32 bytes), got 3 fields");
  EXPECT_EQ(problem("k1 " + a + "\nk/2 " + a + "\n"),
            "fleet key /x:2: a key id is made of [A-Za-z0-9._-] only");
  EXPECT_EQ(problem(std::string(33, 'k') + " " + a + "\n"),
            "fleet key /x:1: a key id is 1 to 32 characters, got 33");
  EXPECT_EQ(problem("k1 " + a + "\nk1 " + kKeyB + "\n"),
            "fleet key /x:2: key id 'k1' is used twice");
  EXPECT_EQ(problem("k1 " + a.substr(0, 41) + "\n"), "fleet key /x:1: key 'k1': not base64");
  EXPECT_EQ(problem("k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\n"),
            "fleet key /x:1: key 'k1': 30 bytes, must be 32");
  EXPECT_EQ(problem("k1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj\n"),
            "fleet key /x:1: key 'k1': 36 bytes, must be 32");
  EXPECT_EQ(problem(""),
            "fleet key /x: no key (a line `ID KEY`; `tlsedge fleet-key new` prints one)");
  EXPECT_EQ(problem("# only a comment\n\n"),
            "fleet key /x: no key (a line `ID KEY`; `tlsedge fleet-key new` prints one)");
  // The key where the id belongs, and a key-looking id: never echoed.
  EXPECT_THAT(problem(a + " " + kKeyB + "\n"), AllOf(Not(HasSubstr(a)), Not(HasSubstr(kKeyB))));
  EXPECT_THAT(problem(std::string("k1 ") + kKeyB + "!\n"), Not(HasSubstr(kKeyB)));
}

TEST(FleetKey, CheckKeyId) {
  EXPECT_TRUE(checkKeyId("k20261206").ok());
  EXPECT_TRUE(checkKeyId("fleet-2026.12_a").ok());
  EXPECT_TRUE(checkKeyId(std::string(32, 'a')).ok());
  EXPECT_FALSE(checkKeyId("").ok());
  EXPECT_FALSE(checkKeyId(std::string(33, 'a')).ok());
  EXPECT_FALSE(checkKeyId("a b").ok());
  EXPECT_FALSE(checkKeyId("ké").ok());
}

TEST(FleetKey, GeneratedLinesLoadAndDiffer) {
  const std::string a = generateKeyLine("k20261206");
  const std::string b = generateKeyLine("k20261206");
  EXPECT_NE(a, b);
  ASSERT_EQ(a.size(), std::string("k20261206 ").size() + 44) << a;
  EXPECT_EQ(a.rfind("k20261206 ", 0), 0u);
  EXPECT_EQ(a.find('\n'), std::string::npos);
  const FleetKey key = ring(a + "\n");
  EXPECT_EQ(key.sealingId(), "k20261206");
  auto sealed = key.seal("x", "y");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(*key.open(*sealed, "y"), "x");
}

TEST(FleetKey, MovedRingStillOpens) {
  FleetKey key = ring(std::string("k1 ") + kKeyA + "\n");
  auto sealed = key.seal("secret", "aad");
  ASSERT_TRUE(sealed.ok());
  FleetKey moved = std::move(key);
  EXPECT_EQ(*moved.open(*sealed, "aad"), "secret");
}

}  // namespace
}  // namespace tlsedge::fleet
