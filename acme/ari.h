// ARI (RFC 9773, ACME Renewal Information): the certificate identifier, the
// renewalInfo answer, and a small fetcher for it.
//
// certId = base64url(AuthorityKeyIdentifier.keyIdentifier) "."
//          base64url(the serial's DER content octets), both unpadded; it is
// the path segment under the directory's `renewalInfo` URL and the value of
// `replaces` in newOrder.
//
// RenewalInfoClient reads the directory once (a CA without `renewalInfo`
// answers `supported = false` from then on) and GETs renewalInfo/<certId>
// (unauthenticated). Its own http::HttpClient, so that it never waits behind
// an order.
//
// Thread: certId/parseRenewalInfo any (pure); RenewalInfoClient the control
// loop (destroying it drops pending callbacks unrun).
#pragma once

#include <uv.h>

#include <ctime>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "http/http_client.h"

namespace tlsedge::acme {

// The ARI identifier of the first certificate of `chainPem`; an Error when
// it has no authority key identifier (or does not parse).
Result<std::string> ariCertId(const std::string& chainPem);

struct RenewalInfo {
  time_t start = 0;  // suggestedWindow
  time_t end = 0;
  std::optional<int64_t> retryAfterSeconds;  // when to ask again
  std::string explanationUrl;
};

// A renewalInfo body: {"suggestedWindow": {"start": RFC3339, "end": ...}}.
Result<RenewalInfo> parseRenewalInfo(const std::string& body);

class RenewalInfoClient {
 public:
  struct Answer {
    bool supported = false;  // the directory has renewalInfo
    RenewalInfo info;        // when supported
  };
  using Done = std::function<void(Result<Answer>)>;

  static Result<std::unique_ptr<RenewalInfoClient>> create(
      uv_loop_t* loop, std::string directoryUrl,
      std::vector<std::pair<std::string, std::string>> roots);

  // One renewalInfo request for `certId`; `done` runs later on the loop.
  void fetch(const std::string& certId, Done done);

 private:
  explicit RenewalInfoClient(std::string directoryUrl) : directoryUrl_(std::move(directoryUrl)) {}
  void fetchInfo(const std::string& certId, Done done);

  std::string directoryUrl_;
  std::unique_ptr<http::HttpClient> http_;
  bool directoryRead_ = false;
  std::string renewalInfoUrl_;  // empty: the CA has no ARI
};

}  // namespace tlsedge::acme
