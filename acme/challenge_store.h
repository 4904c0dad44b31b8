// ChallengeStore: HTTP-01 key authorizations by token (RFC 8555 section 8.3).
//
// Written on the control loop (ACME client; for now tests and files in
// <state>/acme/challenges/), read by workers answering
// /.well-known/acme-challenge/<token>. Readers take an immutable snapshot with
// one atomic shared_ptr load: only challenge requests pay it, never the
// ordinary request path.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace tlsedge::acme {

class ChallengeStore {
 public:
  using Map = std::map<std::string, std::string, std::less<>>;

  // Control loop.
  void put(const std::string& token, const std::string& keyAuthorization);
  void remove(const std::string& token);
  // Loads every regular file in `dir` as token (file name) -> content with
  // surrounding whitespace trimmed, replacing what was loaded before. A
  // missing directory is empty, not an error.
  Status loadDirectory(const std::string& dir);

  // Any thread.
  std::optional<std::string> find(std::string_view token) const;

 private:
  std::atomic<std::shared_ptr<const Map>> map_{std::make_shared<const Map>()};
};

// True if `token` is a syntactically valid ACME token (base64url alphabet,
// 1..256 characters): anything else is answered 404 without a lookup.
bool validToken(std::string_view token);

}  // namespace tlsedge::acme
