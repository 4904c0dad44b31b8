// ACME problem documents (RFC 8555 section 6.7, RFC 7807): the CA's account
// of what went wrong, kept for logs and retry decisions.
//
// Thread: any (pure functions).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsedge::acme {

struct Problem {
  std::string type;  // "urn:ietf:params:acme:error:badNonce", ...
  std::string detail;
  int status = 0;
  std::string identifier;  // subproblems: the name they concern
  std::vector<Problem> subproblems;

  // `shortType` without the "urn:ietf:params:acme:error:" prefix.
  bool is(std::string_view shortType) const;
  // One line for logs: "badNonce: JWS has an invalid anti-replay nonce (400)
  // [a.example: dns: ...]".
  std::string text() const;
  // For metrics (a bounded label): the short type when it is one of RFC
  // 8555 section 6.7's, else "other".
  std::string kind() const;
};

// The problem in a response body (`application/problem+json`, or any JSON
// object with a `type`); nullopt when the body is not one.
std::optional<Problem> parseProblem(std::string_view body);

}  // namespace tlsedge::acme
