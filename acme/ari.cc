#include "acme/ari.h"

#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <nlohmann/json.hpp>

#include "acme/jose.h"
#include "acme/schedule.h"
#include "base/time.h"

namespace tlsedge::acme {

Result<std::string> ariCertId(const std::string& chainPem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(chainPem.data(), static_cast<int>(chainPem.size())));
  bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return makeError("ARI: the certificate does not parse");
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(cert.get());
  if (aki == nullptr) return makeError("ARI: the certificate has no authority key identifier");
  uint8_t* der = nullptr;
  const int len = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert.get()), &der);
  if (len < 2) return makeError("ARI: the certificate's serial does not encode");
  bssl::UniquePtr<uint8_t> owned(der);
  // Skip the INTEGER's tag and length: the content octets are the id.
  const size_t header = der[1] < 0x80 ? 2 : 2 + (der[1] & 0x7f);
  if (header >= static_cast<size_t>(len)) return makeError("ARI: bad serial encoding");
  const std::string keyId(reinterpret_cast<const char*>(ASN1_STRING_get0_data(aki)),
                          static_cast<size_t>(ASN1_STRING_length(aki)));
  const std::string serial(reinterpret_cast<const char*>(der) + header, len - header);
  return base64url(keyId) + "." + base64url(serial);
}

Result<RenewalInfo> parseRenewalInfo(const std::string& body) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object() || !json.contains("suggestedWindow") ||
      !json["suggestedWindow"].is_object()) {
    return makeError("renewalInfo: no suggestedWindow object");
  }
  const auto& window = json["suggestedWindow"];
  auto timeOf = [&](const char* key) -> std::optional<time_t> {
    auto it = window.find(key);
    if (it == window.end() || !it->is_string()) return std::nullopt;
    return utc::parse(it->get<std::string>());
  };
  auto start = timeOf("start");
  auto end = timeOf("end");
  if (!start || !end) return makeError("renewalInfo: suggestedWindow start/end unreadable");
  if (*end <= *start) return makeError("renewalInfo: suggestedWindow ends before it starts");
  RenewalInfo info;
  info.start = *start;
  info.end = *end;
  if (auto it = json.find("explanationURL"); it != json.end() && it->is_string()) {
    info.explanationUrl = it->get<std::string>();
  }
  return info;
}

Result<std::unique_ptr<RenewalInfoClient>> RenewalInfoClient::create(
    uv_loop_t* loop, std::string directoryUrl,
    std::vector<std::pair<std::string, std::string>> roots) {
  std::unique_ptr<RenewalInfoClient> client(new RenewalInfoClient(std::move(directoryUrl)));
  http::HttpClientOptions options;
  options.roots = std::move(roots);
  options.timeout = std::chrono::seconds(30);
  options.userAgent = "tlsedge-acme";
  auto http = http::HttpClient::create(loop, std::move(options));
  if (!http) return makeError("acme: " + http.error().message);
  client->http_ = std::move(*http);
  return client;
}

void RenewalInfoClient::fetch(const std::string& certId, Done done) {
  if (directoryRead_) return fetchInfo(certId, std::move(done));
  http_->send({"GET", directoryUrl_, {}, {}}, [this, certId, done = std::move(done)](
                                                  Result<http::HttpResponse> r) mutable {
    if (!r) return done(r.error());
    auto dir = nlohmann::json::parse(r->body, nullptr, false);
    if (r->status != 200 || !dir.is_object()) {
      return done(makeError("directory " + directoryUrl_ + ": HTTP " + std::to_string(r->status)));
    }
    directoryRead_ = true;
    if (auto it = dir.find("renewalInfo"); it != dir.end() && it->is_string()) {
      renewalInfoUrl_ = it->get<std::string>();
    }
    fetchInfo(certId, std::move(done));
  });
}

void RenewalInfoClient::fetchInfo(const std::string& certId, Done done) {
  if (renewalInfoUrl_.empty()) return done(Answer{});
  std::string url = renewalInfoUrl_;
  if (url.back() != '/') url += '/';
  url += certId;
  http_->send({"GET", url, {}, {}},
              [url, done = std::move(done)](Result<http::HttpResponse> r) mutable {
                if (!r) return done(r.error());
                if (r->status != 200) {
                  return done(makeError("GET " + url + ": HTTP " + std::to_string(r->status)));
                }
                auto info = parseRenewalInfo(r->body);
                if (!info) return done(makeError("GET " + url + ": " + info.error().message));
                if (const std::string* after = r->find("Retry-After")) {
                  info->retryAfterSeconds = parseRetryAfter(*after, ::time(nullptr));
                }
                return done(Answer{true, std::move(*info)});
              });
}

}  // namespace tlsedge::acme
