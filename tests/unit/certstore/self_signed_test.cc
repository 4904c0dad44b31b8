// generateSelfSigned round-trips through loadCredentials.
#include "certstore/self_signed.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>

#include "certstore/credentials.h"
#include "certstore/files.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using ::testing::ElementsAre;
using ::testing::StartsWith;
using testing::TempDir;

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(GenerateSelfSigned, RoundTripsThroughLoadCredentials) {
  TempDir dir;
  const std::string cert = dir.file("certs/localhost/fullchain.pem");
  const std::string key = dir.file("certs/localhost/privkey.pem");
  Status s = generateSelfSigned(cert, key, {"localhost", "127.0.0.1", "::1", "Dev.Example"}, 30);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(modeOf(key), 0600u);
  EXPECT_EQ(modeOf(cert), 0644u);
  EXPECT_THAT(*readFile(key), StartsWith("-----BEGIN PRIVATE KEY-----\n"));

  const time_t now = time(nullptr);
  auto c = loadCredentials("localhost", cert, key, sharedBufferPool(), now);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->chain.size(), 1u);
  EXPECT_TRUE((*c)->notes.empty());
  EXPECT_EQ((*c)->keyType, KeyType::kEcdsaP256);
  EXPECT_THAT((*c)->dnsNames, ElementsAre("localhost", "dev.example"));
  EXPECT_THAT((*c)->ipAddresses, ElementsAre("127.0.0.1", "::1"));
  EXPECT_EQ((*c)->subject, "CN=localhost");
  EXPECT_EQ((*c)->issuer, "CN=localhost");
  EXPECT_EQ((*c)->serialHex.size(), 32u);
  EXPECT_NE((*c)->serialHex[0], '8');  // positive: top bit clear
  EXPECT_NEAR(static_cast<double>((*c)->notBefore), static_cast<double>(now - 3600), 5);
  EXPECT_NEAR(static_cast<double>((*c)->notAfter), static_cast<double>(now + 30 * 86400), 5);
  EXPECT_TRUE((*c)->covers("localhost"));
  EXPECT_TRUE((*c)->covers("127.0.0.1"));
}

TEST(GenerateSelfSigned, LongFirstNameGoesInTheSanOnly) {
  TempDir dir;
  const std::string longName = std::string(70, 'a') + ".example";
  ASSERT_TRUE(generateSelfSigned(dir.file("c.pem"), dir.file("k.pem"), {longName}, 1).ok());
  auto c = loadCredentials("long", dir.file("c.pem"), dir.file("k.pem"), sharedBufferPool(),
                           time(nullptr));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->subject, "");
  EXPECT_THAT((*c)->dnsNames, ElementsAre(longName));
}

TEST(GenerateSelfSigned, RefusesNoNames) {
  TempDir dir;
  EXPECT_FALSE(generateSelfSigned(dir.file("c.pem"), dir.file("k.pem"), {}, 30).ok());
  EXPECT_FALSE(generateSelfSigned(dir.file("c.pem"), dir.file("k.pem"), {"a"}, 0).ok());
}

}  // namespace
}  // namespace tlsedge::certstore
