// Access (admin/access.h) and API tokens (admin/tokens.h): which scope a
// request needs, tokens stored as hashes and found by them, 401/403, the
// failed-attempt allowance per address and its bound.
#include "admin/access.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace tlsedge::admin {
namespace {

class AccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("tlsedge-access-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    path_ = tokensPath(dir_.string());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  AdminRequest request(std::string method, std::string target, std::string token,
                       std::string peer = "192.0.2.1") {
    AdminRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    if (!token.empty()) r.authorization = "Bearer " + token;
    r.peer = std::move(peer);
    return r;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST(Scopes, RequiredByMethodAndPath) {
  EXPECT_EQ(requiredScopes("GET", "/v1/certificates?x=1"), kScopeRead);
  EXPECT_EQ(requiredScopes("HEAD", "/v1/acme"), kScopeRead);
  EXPECT_EQ(requiredScopes("PUT", "/v1/certificates/a"), kScopeCertificates);
  EXPECT_EQ(requiredScopes("DELETE", "/v1/certificates"), kScopeCertificates);
  EXPECT_EQ(requiredScopes("POST", "/v1/sites/a"), kScopeSites);
  EXPECT_EQ(requiredScopes("POST", "/v1/acme/a/renew"), kScopeAcme);
  EXPECT_EQ(requiredScopes("POST", "/v1/certificatesX"), kNoScope);  // not a prefix match
  EXPECT_EQ(requiredScopes("GET", "/console/app.js"), 0);
  EXPECT_EQ(requiredScopes("POST", "/console"), kNoScope);
}

TEST(Scopes, ParsedAndNamed) {
  EXPECT_EQ(*parseScopes(std::string_view("read, certificates")), kScopeRead | kScopeCertificates);
  EXPECT_EQ(*parseScopes(std::string_view("all")), kAllScopes);
  auto bad = parseScopes(std::string_view("read,write"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("unknown scope \"write\""), std::string::npos);
  EXPECT_FALSE(parseScopes(std::string_view(" , ")));
  EXPECT_EQ(scopeNames(kScopeSites | kScopeRead), (std::vector<std::string>{"read", "sites"}));
}

TEST_F(AccessTest, TokensAreKeptAsHashesAndRemovable) {
  auto secret = addToken(path_, "panel", kScopeRead, 1000);
  ASSERT_TRUE(secret) << secret.error().message;
  EXPECT_EQ(secret->substr(0, 4), "tle_");
  EXPECT_EQ(secret->size(), 4u + 43u);
  std::ifstream in(path_);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str().find(secret->substr(4)), std::string::npos);
  EXPECT_NE(text.str().find(sha256Hex(*secret)), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(addToken(path_, "panel", kScopeRead, 1).error().kind, ErrorKind::kConflict);
  EXPECT_EQ(addToken(path_, "bad name", kScopeRead, 1).error().kind, ErrorKind::kInvalid);
  auto tokens = readTokens(path_);
  ASSERT_TRUE(tokens);
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ(tokens->begin()->second.name, "panel");
  EXPECT_EQ(tokens->begin()->second.created, 1000);
  EXPECT_TRUE(removeToken(path_, "panel"));
  EXPECT_EQ(removeToken(path_, "panel").error().kind, ErrorKind::kNotFound);
}

TEST_F(AccessTest, AuthenticatesAndChecksScopes) {
  const std::string reader = *addToken(path_, "reader", kScopeRead, 0);
  Access access(path_, {{"panel.example", kScopeRead | kScopeAcme}});
  std::string who;
  EXPECT_FALSE(access.check(request("GET", "/v1/certificates", reader), 0, &who));
  EXPECT_EQ(who, "token:reader");
  auto forbidden = access.check(request("PUT", "/v1/certificates/a", reader), 0, &who);
  ASSERT_TRUE(forbidden);
  EXPECT_EQ(forbidden->status, 403);
  EXPECT_NE(forbidden->body.find("lacks the scope \\\"certificates\\\""), std::string::npos)
      << forbidden->body;
  auto missing = access.check(request("GET", "/v1/acme", ""), 0, &who);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(missing->authenticate, "Bearer");
  AdminRequest byCertificate = request("POST", "/v1/acme/s/renew", "");
  byCertificate.clientCertificate = "panel.example";
  EXPECT_FALSE(access.check(byCertificate, 0, &who));
  EXPECT_EQ(who, "certificate:panel.example");
  byCertificate.clientCertificate = "other.example";
  EXPECT_EQ(access.check(byCertificate, 0, &who)->status, 401);
  // A token removed on disk stops working at once.
  ASSERT_TRUE(removeToken(path_, "reader"));
  EXPECT_EQ(access.check(request("GET", "/v1/acme", reader), 0, &who)->status, 401);
  EXPECT_EQ(access.counters().unauthenticated, 3u);
  EXPECT_EQ(access.counters().forbidden, 1u);
}

TEST_F(AccessTest, FailuresAreLimitedPerAddressAndRefill) {
  const std::string reader = *addToken(path_, "reader", kScopeRead, 0);
  Access access(path_, {});
  std::string who;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(access.check(request("GET", "/v1/acme", "tle_wrong"), 0, &who)->status, 401);
  }
  auto limited = access.check(request("GET", "/v1/acme", reader), 0, &who);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(limited->retryAfter, 6);
  // Another address is not affected; after 6 s one more attempt is allowed.
  EXPECT_FALSE(access.check(request("GET", "/v1/acme", reader, "192.0.2.2"), 0, &who));
  EXPECT_FALSE(access.check(request("GET", "/v1/acme", reader), 6000, &who));
  EXPECT_EQ(access.counters().rateLimited, 1u);
}

TEST_F(AccessTest, TheAddressTableIsBounded) {
  Access access(path_, {});
  std::string who;
  for (size_t i = 0; i < Access::kMaxAddresses + 100; ++i) {
    const std::string peer = "10." + std::to_string(i / 65536) + "." +
                             std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
    ASSERT_EQ(access.check(request("GET", "/v1/acme", "tle_wrong", peer), 0, &who)->status, 401);
  }
  EXPECT_LE(access.trackedAddresses(), Access::kMaxAddresses);
}

}  // namespace
}  // namespace tlsedge::admin

namespace tlsedge::admin {
namespace {

TEST_F(AccessTest, AuditLinesAreJsonEvenForBytesThatAreNotUtf8) {
  const std::string path = (dir_ / "audit.log").string();
  AuditLog audit(path);
  AdminRequest get = request("GET", "/v1/certificates", "");
  audit.record("token:a", get, 200, 0);  // a read: not recorded
  AdminRequest put = request("PUT", "/v1/certificates/\xff\xfe", "tle_secret");
  put.body = "{\"key\": \"PRIVATE\"}";
  audit.record("token:a", put, 422, 0);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(text.str(),
            "{\"from\":\"192.0.2.1\",\"method\":\"PUT\",\"status\":422,\"target\":"
            "\"/v1/certificates/\xEF\xBF\xBD\xEF\xBF\xBD\",\"time\":\"1970-01-01T00:00:00Z\","
            "\"who\":\"token:a\"}\n");
}

}  // namespace
}  // namespace tlsedge::admin
