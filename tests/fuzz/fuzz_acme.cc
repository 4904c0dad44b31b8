// What an ACME CA sends back, through the product's parsers (tests/fuzz/
// README.md). The first input byte picks one; the rest is the CA's bytes:
//   0 problem document (parseProblem, then text/kind/is)
//   1 ARI renewalInfo (parseRenewalInfo, then pickInWindow)
//   2 Retry-After (parseRetryAfter, then retryDelaySeconds)
//   3 base64url (base64urlDecode: JWS/JWK fields, the EAB key)
//   4 Link headers of a certificate download (alternateChainUrls), one per line
//   5 a certificate chain PEM (topIssuerName, ariCertId)
//   6 an account key PEM (AccountKey::fromPem; an accepted key signs a JWS)
//   7 a revocation reason (parseRevocationReason)
#include <cstdint>
#include <string>
#include <string_view>

#include "acme/ari.h"
#include "acme/chain.h"
#include "acme/jose.h"
#include "acme/problem.h"
#include "acme/revocation.h"
#include "acme/schedule.h"
#include "fuzz_check.h"

namespace acme = tlsedge::acme;

namespace {

constexpr time_t kNow = 1796601600;  // 2026-12-07

void problem(const std::string& body) {
  auto p = acme::parseProblem(body);
  if (!p) return;
  (void)p->text();
  (void)p->is("badNonce");
  const std::string kind = p->kind();
  FUZZ_CHECK(!kind.empty());
}

void renewalInfo(const std::string& body) {
  auto info = acme::parseRenewalInfo(body);
  if (!info.ok()) return;
  FUZZ_CHECK(info->start < info->end);
  const time_t at = acme::pickInWindow(info->start, info->end, 0x9E3779B97F4A7C15u, kNow);
  FUZZ_CHECK(at >= kNow && (info->end <= kNow || at < info->end));
}

void retryAfter(const std::string& value) {
  auto seconds = acme::parseRetryAfter(value, kNow);
  if (!seconds) return;
  FUZZ_CHECK(*seconds >= 0);
  FUZZ_CHECK(acme::retryDelaySeconds(3, seconds, true) >= 0);
}

void base64(const std::string& text) {
  auto decoded = acme::base64urlDecode(text);
  if (!decoded.ok()) return;
  size_t chars = text.size();
  while (chars > 0 && text[chars - 1] == '=') --chars;
  FUZZ_CHECK(decoded->size() == chars * 6 / 8);
  auto again = acme::base64urlDecode(acme::base64url(*decoded));
  FUZZ_CHECK(again.ok() && *again == *decoded);
}

void links(const std::string& text) {
  tlsedge::http::HttpResponse response;
  response.status = 200;
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    response.headers.push_back({"Link", std::string(rest.substr(0, end))});
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  // Absolute paths are resolved against the base (other references are
  // returned as they are written, "" included: fetching them fails; a
  // target holding "://" counts as absolute).
  for (const std::string& url :
       acme::alternateChainUrls(response, "https://ca.example/acme/cert/1")) {
    FUZZ_CHECK(!url.starts_with("/") || url.find("://") != std::string::npos);
  }
}

void chain(const std::string& pem) {
  (void)acme::topIssuerName(pem);
  auto id = acme::ariCertId(pem);
  if (id.ok()) FUZZ_CHECK(id->find('.') != std::string::npos);
}

void accountKey(const std::string& pem) {
  auto key = acme::AccountKey::fromPem(pem, "account.pem");
  if (!key.ok()) return;
  FUZZ_CHECK(!key->jwk().empty() && !key->thumbprint().empty());
  auto jws = acme::signJws(*key, "", "nonce", "https://ca.example/new-acct", "{}");
  FUZZ_CHECK(jws.ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const std::string data(reinterpret_cast<const char*>(bytes) + 1, size - 1);
  switch (bytes[0] % 8) {
    case 0:
      problem(data);
      break;
    case 1:
      renewalInfo(data);
      break;
    case 2:
      retryAfter(data);
      break;
    case 3:
      base64(data);
      break;
    case 4:
      links(data);
      break;
    case 5:
      chain(data);
      break;
    case 6:
      accountKey(data);
      break;
    default:
      (void)acme::parseRevocationReason(data);
      break;
  }
  return 0;
}
