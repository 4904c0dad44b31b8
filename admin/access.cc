#include "admin/access.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/time.h"
#include "certstore/json.h"

namespace tlsedge::admin {
namespace {

bool isRead(std::string_view method) { return method == "GET" || method == "HEAD"; }

bool under(std::string_view path, std::string_view prefix) {
  return path == prefix || (path.starts_with(prefix) && path[prefix.size()] == '/');
}

std::string_view pathOf(std::string_view target) { return target.substr(0, target.find('?')); }

}  // namespace

Scopes requiredScopes(std::string_view method, std::string_view target) {
  const std::string_view path = pathOf(target);
  if (isRead(method) && (under(path, "/console") || path == "/")) return 0;
  if (isRead(method)) return kScopeRead;
  if (under(path, "/v1/certificates")) return kScopeCertificates;
  if (under(path, "/v1/sites")) return kScopeSites;
  if (under(path, "/v1/acme")) return kScopeAcme;
  return kNoScope;
}

Access::Allowance& Access::allowance(const std::string& peer, uint64_t nowMs) {
  if (failures_.size() >= kMaxAddresses && failures_.find(peer) == failures_.end()) {
    // Forget whole allowances first (they say nothing a new entry would
    // not), then any: forgetting only ever allows more attempts.
    std::erase_if(failures_, [&](const auto& entry) {
      const double refill = double(nowMs - entry.second.atMs) / 1000 * kFailuresPerSecond;
      return entry.second.left + refill >= kFailureBurst;
    });
    while (failures_.size() >= kMaxAddresses) failures_.erase(failures_.begin());
  }
  auto [at, added] = failures_.try_emplace(peer);
  Allowance& a = at->second;
  if (added) a.atMs = nowMs;
  a.left = std::min(kFailureBurst, a.left + double(nowMs - a.atMs) / 1000 * kFailuresPerSecond);
  a.atMs = nowMs;
  return a;
}

AdminResponse Access::fail(const std::string& peer, uint64_t nowMs, AdminResponse answer) {
  allowance(peer, nowMs).left -= 1;
  (answer.status == 401 ? counters_.unauthenticated : counters_.forbidden)++;
  return answer;
}

std::optional<AdminResponse> Access::check(const AdminRequest& request, uint64_t nowMs,
                                           std::string* who) {
  const Scopes needed = requiredScopes(request.method, request.target);
  if (needed == 0) {
    *who = "anyone";
    return std::nullopt;
  }
  if (auto known = failures_.find(request.peer); known != failures_.end()) {
    Allowance& a = allowance(request.peer, nowMs);
    if (a.left < 1) {
      ++counters_.rateLimited;
      AdminResponse answer =
          adminError(429, "too many failed attempts from " + request.peer + "; try again later");
      answer.retryAfter = static_cast<int>(std::ceil((1 - a.left) / kFailuresPerSecond));
      return answer;
    }
  }
  Scopes scopes = 0;
  constexpr std::string_view kBearer = "Bearer ";
  if (!request.authorization.empty()) {
    const std::string& header = request.authorization;
    const bool bearer =
        header.size() > kBearer.size() &&
        std::equal(kBearer.begin(), kBearer.end(), header.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); });
    const auto tokens = tokens_.current();
    const auto found =
        bearer ? tokens->find(sha256Hex(std::string_view(header).substr(kBearer.size())))
               : tokens->end();
    if (found == tokens->end()) {
      AdminResponse answer = adminError(
          401, bearer ? "unknown or removed API token" : "Authorization must be \"Bearer TOKEN\"");
      answer.authenticate = "Bearer";
      return fail(request.peer, nowMs, std::move(answer));
    }
    *who = "token:" + found->second.name;
    scopes = found->second.scopes;
  } else if (!request.clientCertificate.empty()) {
    const auto found = clients_.find(request.clientCertificate);
    if (found == clients_.end()) {
      AdminResponse answer = adminError(
          401, "client certificate " + request.clientCertificate + " is not in admin.clients");
      answer.authenticate = "Bearer";
      return fail(request.peer, nowMs, std::move(answer));
    }
    *who = "certificate:" + found->first;
    scopes = found->second;
  } else {
    AdminResponse answer = adminError(
        401,
        "authentication required: an API token (Authorization: Bearer TOKEN) or a client "
        "certificate");
    answer.authenticate = "Bearer";
    return fail(request.peer, nowMs, std::move(answer));
  }
  if ((scopes & needed) == needed && needed != kNoScope) return std::nullopt;
  const std::vector<std::string> names = scopeNames(needed);
  return fail(request.peer, nowMs,
              adminError(403, needed == kNoScope || names.empty()
                                  ? request.method + " " + std::string(pathOf(request.target)) +
                                        " is not available on the management listener"
                                  : *who + " lacks the scope \"" + names.front() + "\" that " +
                                        request.method + " " + std::string(pathOf(request.target)) +
                                        " needs"));
}

void AuditLog::record(const std::string& who, const AdminRequest& request, int status,
                      time_t now) const {
  if (path_.empty() || isRead(request.method)) return;
  const nlohmann::json line = {{"time", utc::format(now)},
                               {"who", who},
                               {"from", request.peer.empty() ? "unix" : request.peer},
                               {"method", request.method},
                               {"target", request.target},
                               {"status", status}};
  // jsonText: a target's bytes that are not UTF-8 become U+FFFD, never an exception.
  const std::string text = certstore::jsonText(line) + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  // One write(2) with O_APPEND: lines never interleave.
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    log::warning("audit log " + path_ + ": cannot append: " + std::strerror(errno) + "; " + text);
  }
  if (fd >= 0) ::close(fd);
}

AdminServer::Handler guardedHandler(Access* access, AdminApi* api, const AuditLog* audit,
                                    std::function<uint64_t()> nowMs) {
  return [=](const AdminRequest& request, AdminServer::Reply reply) {
    std::string who = access == nullptr ? "admin-socket" : "";
    if (access != nullptr) {
      if (auto refused = access->check(request, nowMs(), &who)) {
        audit->record(who.empty() ? "unauthenticated" : who, request, refused->status,
                      ::time(nullptr));
        reply(std::move(*refused));
        return;
      }
    }
    api->handle(
        request,
        [audit, who,
         request = AdminRequest{request.method, request.target, {}, false, {}, request.peer, {}},
         reply = std::move(reply)](AdminResponse response) {
          audit->record(who, request, response.status, ::time(nullptr));
          reply(std::move(response));
        });
  };
}

}  // namespace tlsedge::admin
