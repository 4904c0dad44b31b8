// Access: who may do what through the HTTPS management listener
// (`admin.listen`), and the audit log of changes on every admin transport.
//
// A request is authenticated by an API token (`Authorization: Bearer
// TOKEN`, admin/tokens.h) or by a client certificate verified against
// `admin.tls.client_ca` whose subject CN is listed in `admin.clients` with
// its scopes; a token, when sent, decides. Then:
//   - no credentials, or a token or certificate nobody knows: 401 (with
//     `WWW-Authenticate: Bearer`);
//   - known, but the request needs a scope it lacks: 403 naming the scope;
//   - an address with kFailureBurst failures (401 or 403) recently: 429
//     with Retry-After, before its credentials are even looked at; one more
//     attempt is allowed every 1 / kFailuresPerSecond seconds. The table of
//     addresses holds at most kMaxAddresses (those whose allowance is whole
//     again are forgotten first), so a flood of addresses bounds its memory.
// Each refusal is counted (counters(), exported as
// tlsedge_admin_refused_total{reason}).
//
// The scope a request needs (requiredScopes): GET and HEAD read; a change
// to /v1/certificates* needs certificates, to /v1/sites* sites, to
// /v1/acme* acme. /console (the web console's page) needs none. There is
// no token endpoint: tokens are managed on the state directory
// (`tlsedge token`), by whoever owns it.
//
// AuditLog: one JSON line per change (any method but GET and HEAD), on the
// Unix socket as over HTTPS, refused ones included: {"time", "who", "from",
// "method", "target", "status"}. `who` is "token:NAME",
// "certificate:CN", "admin-socket" (the Unix socket: the state directory's
// owner), or "unauthenticated". Bodies are never logged (an upload holds a
// private key).
//
// Thread: control loop.
#pragma once

#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "admin/admin_api.h"
#include "admin/admin_server.h"
#include "admin/tokens.h"

namespace tlsedge::admin {

// 0: public; kNoScope: granted to no credential.
inline constexpr Scopes kNoScope = 0x80;
Scopes requiredScopes(std::string_view method, std::string_view target);

class Access {
 public:
  static constexpr double kFailureBurst = 10;
  static constexpr double kFailuresPerSecond = 1.0 / 6;
  static constexpr size_t kMaxAddresses = 4096;

  struct Counters {
    uint64_t unauthenticated = 0;  // 401
    uint64_t forbidden = 0;        // 403
    uint64_t rateLimited = 0;      // 429
  };

  // `clients`: client certificate CN -> scopes.
  Access(std::string tokensPath, std::map<std::string, Scopes> clients)
      : tokens_(std::move(tokensPath)), clients_(std::move(clients)) {}

  // The refusal for `request`, or nullopt with `who` set to its credential.
  std::optional<AdminResponse> check(const AdminRequest& request, uint64_t nowMs, std::string* who);
  const Counters& counters() const { return counters_; }
  size_t trackedAddresses() const { return failures_.size(); }

 private:
  struct Allowance {
    double left = kFailureBurst;
    uint64_t atMs = 0;
  };
  // The address's allowance, refilled to `nowMs`.
  Allowance& allowance(const std::string& peer, uint64_t nowMs);
  AdminResponse fail(const std::string& peer, uint64_t nowMs, AdminResponse answer);

  TokenFile tokens_;
  std::map<std::string, Scopes> clients_;
  std::unordered_map<std::string, Allowance> failures_;  // by address
  Counters counters_;
};

class AuditLog {
 public:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  // Appends one line if `request` is a change; "" path: nothing.
  void record(const std::string& who, const AdminRequest& request, int status, time_t now) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The handler of an admin transport: `access` (null on the Unix socket,
// whose callers are "admin-socket") decides, `api` answers, `audit` records
// each change with its result. All must outlive the server.
AdminServer::Handler guardedHandler(Access* access, AdminApi* api, const AuditLog* audit,
                                    std::function<uint64_t()> nowMs);

}  // namespace tlsedge::admin
