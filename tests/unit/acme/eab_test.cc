#include "acme/eab.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tlsedge::acme {
namespace {

// Expected values computed with Python's hmac/hashlib and base64 (not this
// code): key = bytes 0..31, header {"alg":"HS256","kid":"kid-1","url":...}.
constexpr const char* kJwk =
    R"({"crv":"P-256","kty":"EC","x":"r21MPCOZQKkoU6MdSucjSbl4UspMiLDYHoKJNkOf__M",)"
    R"("y":"XsX9JzlUuPSxZo8IA5w_m_YBJtYlnKewQ1Q5sNtncbU"})";
constexpr const char* kKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
constexpr const char* kProtected =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6ImtpZC0xIiwidXJsIjoiaHR0cHM6Ly9jYS5leGFtcGxlL25ldy1hY2N0In0";
constexpr const char* kPayload =
    "eyJjcnYiOiJQLTI1NiIsImt0eSI6IkVDIiwieCI6InIyMU1QQ09aUUtrb1U2TWRTdWNqU2JsNFVzcE1p"
    "TERZSG9LSk5rT2ZfX00iLCJ5IjoiWHNYOUp6bFV1UFN4Wm84SUE1d19tX1lCSnRZbG5LZXdRMVE1c050bmNiVSJ9";
constexpr const char* kSignature = "0dFmH0kMDN9W0c4LpR5CDhbrvWqHFJ3EuYtPho6aapI";

TEST(ExternalAccountBinding, Hs256OverTheAccountJwk) {
  auto jws = externalAccountBinding({"kid-1", kKey}, kJwk, "https://ca.example/new-acct");
  ASSERT_TRUE(jws.ok()) << jws.error().message;
  auto j = nlohmann::json::parse(*jws);
  EXPECT_EQ(j["protected"], kProtected);
  EXPECT_EQ(j["payload"], kPayload);
  EXPECT_EQ(j["signature"], kSignature);
  EXPECT_EQ(j.size(), 3u);
}

TEST(ExternalAccountBinding, AnotherKeyAnotherSignature) {
  auto jws = externalAccountBinding({"kid-1", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh4"}, kJwk,
                                    "https://ca.example/new-acct");
  ASSERT_TRUE(jws.ok());
  EXPECT_NE(nlohmann::json::parse(*jws)["signature"], kSignature);
}

TEST(ExternalAccountBinding, BadKeyIsNamedNotShown) {
  auto jws = externalAccountBinding({"kid-1", "not base64!"}, kJwk, "https://ca.example/new-acct");
  ASSERT_FALSE(jws.ok());
  EXPECT_NE(jws.error().message.find("acme.eab.hmac_key"), std::string::npos);
  EXPECT_EQ(jws.error().message.find("not base64!"), std::string::npos);
}

}  // namespace
}  // namespace tlsedge::acme
