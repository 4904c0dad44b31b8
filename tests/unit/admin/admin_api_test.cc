// AdminApi routing and request checks: paths, methods, bodies, query
// parameters; that a refused request writes nothing and reports no store
// change; that an upload hands the hot swap the credentials it validated.
// Uploads through the real daemon: tests/integration/test_admin.py.
#include "admin/admin_api.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "certstore/credentials.h"
#include "certstore/files.h"
#include "certstore/selector.h"
#include "certstore/self_signed.h"

namespace tlsedge::admin {
namespace {

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = std::filesystem::temp_directory_path() /
             ("tlsedge-admin-api-" + std::to_string(::getpid()));
    std::filesystem::remove_all(state_);
    auto config = conf::loadString("state_dir: " + state_.string() +
                                       "\nsites:\n  - name: s\n    hosts: [a.example]\n    routes: "
                                       "[{ path: /, respond: {} }]\n",
                                   "t.yaml", "/");
    ASSERT_TRUE(config.ok()) << config.error().message;
    config_ = *config;
    selector_ = certstore::Selector::make({});
  }
  void TearDown() override { std::filesystem::remove_all(state_); }

  AdminResponse call(const std::string& method, const std::string& target,
                     const std::string& body = "") {
    AdminApi api({[this] { return config_; }, [this] { return selector_; },
                  [this](const std::string& name, certstore::CredentialsPtr credentials) {
                    changed_.push_back(name);
                    handed_.push_back(std::move(credentials));
                  }});
    return api.handle({method, target, body, false});
  }

  std::filesystem::path state_;
  conf::ConfigPtr config_;
  std::shared_ptr<const certstore::Selector> selector_;
  std::vector<std::string> changed_;
  std::vector<certstore::CredentialsPtr> handed_;  // what storeChanged got, in order
};

TEST_F(AdminApiTest, UnknownPathsAndMethods) {
  AdminResponse r = call("GET", "/v2/x");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body.rfind("{\"error\":\"no such path: /v2/x", 0), 0u) << r.body;
  r = call("POST", "/v1/certificates");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET");
  r = call("PATCH", "/v1/certificates/a");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, PUT, POST, DELETE");
  EXPECT_EQ(call("GET", "/v1/certificates/a%2Fb").status, 404);
  EXPECT_EQ(call("GET", "/v1/certificates/a%zz").status, 400);
}

TEST_F(AdminApiTest, EmptyStoreListsAndUnknownNamesAre404) {
  AdminResponse r = call("GET", "/v1/certificates");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "[]");
  EXPECT_EQ(r.contentType, "application/json");
  AdminApi api({[this] { return config_; }, [this] { return selector_; },
                [](const std::string&, certstore::CredentialsPtr) {}});
  AdminResponse text = api.handle({"GET", "/v1/certificates", "", true});
  EXPECT_EQ(text.body, "no certificates in " + state_.string() + "/certs\n");
  EXPECT_EQ(text.contentType, "text/plain; charset=utf-8");
  EXPECT_EQ(call("GET", "/v1/certificates/nope").status, 404);
  EXPECT_EQ(call("DELETE", "/v1/certificates/nope").status, 404);
}

TEST_F(AdminApiTest, CertificateRequestsArePostedListedAndRemoved) {
  AdminResponse r = call("POST", "/v1/certificates/ov", R"({"hosts": ["a.example"]})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_NE(r.body.find("-----BEGIN CERTIFICATE REQUEST-----"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(changed_.empty());  // nothing to serve yet
  EXPECT_TRUE(std::filesystem::exists(state_ / "requests/ov/privkey.pem"));
  r = call("GET", "/v1/certificates");
  EXPECT_NE(r.body.find(R"("name":"ov","pending":true)"), std::string::npos) << r.body;
  EXPECT_EQ(call("POST", "/v1/certificates/ov", R"({"hosts": ["a.example"]})").status, 409);
  EXPECT_EQ(call("POST", "/v1/certificates/x", R"({"hosts": "a.example"})").status, 400);
  EXPECT_EQ(call("POST", "/v1/certificates/x", R"({"hosts": [], "key_type": "dsa"})").status, 422);
  EXPECT_FALSE(std::filesystem::exists(state_ / "requests/x"));
  EXPECT_EQ(call("DELETE", "/v1/certificates/ov").status, 200);
  EXPECT_FALSE(std::filesystem::exists(state_ / "requests/ov"));
  EXPECT_TRUE(changed_.empty());  // nothing served changed
}

TEST_F(AdminApiTest, BadUploadsAreRefusedAndWriteNothing) {
  EXPECT_EQ(call("PUT", "/v1/certificates/x", "not json").status, 400);
  // Without `key`: completes the pending request x, and there is none.
  AdminResponse r = call("PUT", "/v1/certificates/x", R"({"chain": "a"})");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("no certificate request named `x` is pending"), std::string::npos)
      << r.body;
  r = call("PUT", "/v1/certificates/x", R"({"chain": "a", "key": "b", "force": true})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("unknown field `force`"), std::string::npos) << r.body;
  EXPECT_EQ(call("PUT", "/v1/certificates/x", R"({"chain": "a", "key": "b", "replace": 1})").status,
            400);
  r = call("PUT", "/v1/certificates/x", R"({"chain": "garbage", "key": "SECRET-KEY-TEXT"})");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.body.find("SECRET-KEY-TEXT"), std::string::npos) << r.body;
  r = call("PUT", "/v1/certificates/Bad%20Name", R"({"chain": "a", "key": "b"})");
  EXPECT_GE(r.status, 400);
  EXPECT_TRUE(changed_.empty());
  EXPECT_FALSE(std::filesystem::exists(state_ / "certs" / "x"));
}

TEST_F(AdminApiTest, UploadHandsTheValidatedCredentialsToTheHotSwap) {
  const std::string cert = (state_ / "in.crt").string();
  const std::string key = (state_ / "in.key").string();
  std::filesystem::create_directories(state_);
  // A name no site has: the entry is not in use, so it may be removed too.
  ASSERT_TRUE(certstore::generateSelfSigned(cert, key, {"other.example"}, 30).ok());
  auto chainPem = certstore::readFile(cert);
  auto keyPem = certstore::readFile(key);
  ASSERT_TRUE(chainPem.ok() && keyPem.ok());
  auto quoted = [](const std::string& pem) {
    std::string out;
    for (char c : pem) out += c == '\n' ? std::string("\\n") : std::string(1, c);
    return out;
  };
  AdminResponse r =
      call("PUT", "/v1/certificates/site-a",
           R"({"chain": ")" + quoted(*chainPem) + R"(", "key": ")" + quoted(*keyPem) + R"("})");
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_EQ(changed_, std::vector<std::string>{"site-a"});
  ASSERT_NE(handed_[0], nullptr);
  // The credentials handed over are those written: the same certificate as
  // a load of the entry gives, ready to serve (DER in the shared pool).
  auto loaded =
      certstore::loadCredentials("site-a", (state_ / "certs/site-a/fullchain.pem").string(),
                                 (state_ / "certs/site-a/privkey.pem").string(),
                                 certstore::sharedBufferPool(), ::time(nullptr));
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(handed_[0]->serialHex, (*loaded)->serialHex);
  EXPECT_EQ(handed_[0]->dnsNames, std::vector<std::string>{"other.example"});
  ASSERT_EQ(handed_[0]->chain.size(), 1u);
  EXPECT_EQ(handed_[0]->chain[0].get(), (*loaded)->chain[0].get());  // one pooled buffer

  EXPECT_EQ(call("DELETE", "/v1/certificates/site-a").status, 200);
  ASSERT_EQ(changed_.size(), 2u);
  EXPECT_EQ(changed_[1], "site-a");
  EXPECT_EQ(handed_[1], nullptr);  // removed
}

TEST_F(AdminApiTest, WhichNeedsAHostAndAnswersFromTheSelector) {
  EXPECT_EQ(call("GET", "/v1/which").status, 400);
  EXPECT_EQ(call("GET", "/v1/which?host=").status, 400);
  AdminResponse r = call("GET", "/v1/which?host=a.example");
  EXPECT_EQ(r.status, 404);  // the empty snapshot has nothing to serve
  EXPECT_NE(r.body.find("no certificate"), std::string::npos) << r.body;
}

// What the old flat reader's tests covered that still matters for the
// upload body, now read with nlohmann/json.
TEST(CertificateUpload, ReadsTheFieldsAndDecodesStrings) {
  auto u = parseCertificateUpload(
      R"( { "chain": "-----BEGIN\nA\u0042\t\"q\"\\\/\u00e9\ud83d\ude00", "key": "k",
            "replace": true, "chain_source": "a.pem", "key_source": "a.key" } )");
  ASSERT_TRUE(u.ok()) << u.error().message;
  EXPECT_EQ(u->chain, "-----BEGIN\nAB\t\"q\"\\/\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_EQ(u->key, "k");
  EXPECT_TRUE(u->replace);
  EXPECT_EQ(u->chainSource, "a.pem");
  EXPECT_EQ(u->keySource, "a.key");
  auto defaults = parseCertificateUpload(R"({"chain": "c", "key": "k"})");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_FALSE(defaults->replace);
  EXPECT_EQ(defaults->chainSource, "chain");
  EXPECT_EQ(defaults->keySource, "key");
}

TEST(CertificateUpload, MalformedJsonSaysWhereAndNeverQuotesTheBody) {
  for (const char* bad :
       {"", "{", "{\"chain\"}", "{\"chain\":}", "{\"chain\":\"c\",}", "{\"key\":\"k\"} x",
        "{\"key\":\"\\q\"}", "{\"key\":\"\\ud83d\"}", "{\"key\":\"x\n\"}", "{\"replace\":tru}",
        "{\"key\":\"x", "{\"key\":\"\xff\"}"}) {
    auto u = parseCertificateUpload(bad);
    ASSERT_FALSE(u.ok()) << bad;
    EXPECT_EQ(u.error().message.rfind("request body: bad JSON at byte ", 0), 0u)
        << bad << ": " << u.error().message;
    EXPECT_EQ(u.error().message.find("last read"), std::string::npos) << u.error().message;
  }
  // An unterminated string: nlohmann reads to the end, and would quote it.
  const std::string secret = "{\"chain\": \"c\", \"key\": \"SECRET-KEY-TEXT";
  auto u = parseCertificateUpload(secret);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message.find("SECRET"), std::string::npos) << u.error().message;
  EXPECT_NE(u.error().message.find("at byte " + std::to_string(secret.size() + 1) + ": "),
            std::string::npos)
      << u.error().message;
}

TEST(CertificateUpload, RefusesARepeatedField) {
  auto u = parseCertificateUpload(R"({"chain": "c", "key": "k", "chain": "d"})");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message, "request body: repeated field `chain`");
  // The same key in a nested value is not a repeat (and is refused as a type).
  u = parseCertificateUpload(R"({"chain": {"a": 1}, "key": {"a": 2}})");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().message, "request body: `chain` must be a string");
}

TEST(CertificateUpload, RefusesWrongShapesAndTypes) {
  struct Case {
    const char* body;
    const char* message;
  } cases[] = {
      {"[]", "request body: not a JSON object"},
      {"\"x\"", "request body: not a JSON object"},
      {R"({"chain": "c", "key": "k", "replace": 1})",
       "request body: `replace` must be true or false"},
      {R"({"chain": "c", "key": "k", "replace": "yes"})",
       "request body: `replace` must be true or false"},
      {R"({"chain": ["c"], "key": "k"})", "request body: `chain` must be a string"},
      {R"({"chain": "c", "key": null})", "request body: `key` must be a string"},
      {R"({"chain": "c", "key": "k", "key_source": 7})",
       "request body: `key_source` must be a string"},
      {R"({"chain": "c", "key": "k", "force": true})", "request body: unknown field `force`"},
      {R"({"key": "k"})", "request body: `chain` (PEM text) is required"},
      {"{}", "request body: `chain` (PEM text) is required"},
      {R"({"chain": "c", "replace": true})", "request body: without `key`"},
      {R"({"chain": "c", "key_source": "k"})", "request body: without `key`"},
  };
  for (const Case& c : cases) {
    auto u = parseCertificateUpload(c.body);
    ASSERT_FALSE(u.ok()) << c.body;
    EXPECT_EQ(u.error().message.rfind(c.message, 0), 0u) << c.body << ": " << u.error().message;
  }
}

TEST(PercentDecode, DecodesAndRefusesBadEscapes) {
  EXPECT_EQ(*percentDecode("a%2Eb+c%41"), "a.b cA");
  EXPECT_FALSE(percentDecode("%4").ok());
  EXPECT_FALSE(percentDecode("%g0").ok());
}

TEST_F(AdminApiTest, AcmeEndpoints) {
  EXPECT_EQ(call("GET", "/v1/acme").status, 503);  // no manager hooked up
  acme::SiteStatus shop;
  shop.site = "shop";
  shop.certificate = "acme-shop";
  shop.scheduleKnown = true;
  shop.nextRenewal = 1767225600;
  shop.nextReason = "a third of the lifetime left, minus jitter";
  shop.failures = 2;
  shop.retryDelaySeconds = 120;
  shop.lastError = "acme: boom";
  shop.lastErrorAt = 1767225600 - 60;
  std::vector<std::string> renewed;
  AdminApi::Hooks hooks{[this] { return config_; }, [this] { return selector_; },
                        [](const std::string&, certstore::CredentialsPtr) {}};
  hooks.now = [] { return time_t{1767225600 - 3600}; };
  hooks.acmeStatus = [&] { return std::vector<acme::SiteStatus>{shop}; };
  // The status of each answer comes from the error's kind alone.
  hooks.acmeRenew = [&](const std::string& site) -> Status {
    if (site == "busy") {
      return makeError("site `busy`: an order is already running", ErrorKind::kConflict);
    }
    if (site == "down") return makeError("acme: no CA client runs", ErrorKind::kUnavailable);
    if (site != "shop") return makeError("no site `" + site + "`", ErrorKind::kNotFound);
    renewed.push_back(site);
    return Ok{};
  };
  std::vector<std::optional<int>> revoked;
  hooks.acmeRevoke = [&](const std::string& site, std::optional<int> reason) -> Status {
    if (Status s = hooks.acmeRenew(site); !s.ok()) return s;
    revoked.push_back(reason);
    return Ok{};
  };
  AdminApi api(hooks);
  AdminResponse r = api.handle({"GET", "/v1/acme", "", false});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(R"("next_renewal":"2026-01-01T00:00:00Z")"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("consecutive_failures":2)"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"("last_error":"acme: boom")"), std::string::npos) << r.body;
  r = api.handle({"GET", "/v1/acme", "", true});
  EXPECT_NE(r.body.find("  next renewal: 2026-01-01T00:00:00Z (in 60 min; a third"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("  failures:     2 in a row, retry delay 120 s"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("(not issued yet)"), std::string::npos) << r.body;
  r = api.handle({"POST", "/v1/acme/shop/renew", "", false});
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(renewed, std::vector<std::string>{"shop"});
  EXPECT_EQ(api.handle({"POST", "/v1/acme/nope/renew", "", false}).status, 404);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/down/renew", "", false}).status, 503);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/busy/renew", "", false}).status, 409);
  r = api.handle({"GET", "/v1/acme/shop/renew", "", false});
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "POST");
  EXPECT_EQ(api.handle({"POST", "/v1/acme", "", false}).status, 405);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/shop", "", false}).status, 404);
  EXPECT_EQ(api.handle({"POST", "/v1/acme//renew", "", false}).status, 404);
  EXPECT_EQ(renewed.size(), 1u);
  // Revocation: an optional reason by code or name; a bad one is refused
  // before the manager is asked.
  r = api.handle({"POST", "/v1/acme/shop/revoke", "", true});
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_NE(r.body.find("serves until the new one arrives"), std::string::npos) << r.body;
  EXPECT_EQ(
      api.handle({"POST", "/v1/acme/shop/revoke", R"({"reason":"keyCompromise"})", false}).status,
      202);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/shop/revoke", R"({"reason":4})", false}).status, 202);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/shop/revoke", R"({"reason":7})", false}).status, 400);
  // 2^32 + 1 is not reason 1, nor is -4294967295.
  EXPECT_EQ(api.handle({"POST", "/v1/acme/shop/revoke", R"({"reason":4294967297})", false}).status,
            400);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/shop/revoke", R"({"reason":-4294967295})", false}).status,
            400);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/shop/revoke", R"({"reason":"bored"})", false}).status,
            400);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/shop/revoke", "[]", false}).status, 400);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/busy/revoke", "", false}).status, 409);
  EXPECT_EQ(api.handle({"POST", "/v1/acme/nope/revoke", "", false}).status, 404);
  EXPECT_EQ(api.handle({"GET", "/v1/acme/shop/revoke", "", false}).status, 405);
  EXPECT_EQ(revoked, (std::vector<std::optional<int>>{std::nullopt, 1, 4}));
}

}  // namespace
}  // namespace tlsedge::admin
