#include "acme/challenge_store.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "acme/tls_alpn.h"
#include "base/ascii.h"

namespace tlsedge::acme {

namespace {

std::string lowerCase(std::string_view s) { return ascii::lowered(s); }

}  // namespace

void ChallengeStore::share(ChallengeSharing::Kind kind, const std::string& id,
                           const std::string& keyAuthorization, Done shared) {
  if (!shared) shared = [](Status) {};
  if (sharing_ == nullptr) return shared(Ok{});
  sharing_->share(kind, id, keyAuthorization, std::move(shared));
}

void ChallengeStore::put(const std::string& token, const std::string& keyAuthorization,
                         Done shared) {
  live_[token] = keyAuthorization;
  publish();
  share(ChallengeSharing::Kind::kHttp01, token, keyAuthorization, std::move(shared));
}

void ChallengeStore::remove(const std::string& token) {
  live_.erase(token);
  publish();
  if (sharing_ != nullptr) sharing_->unshare(ChallengeSharing::Kind::kHttp01, token);
}

Status ChallengeStore::putTlsAlpn(const std::string& host, const std::string& keyAuthorization,
                                  Done shared) {
  auto certificate = makeTlsAlpnCertificate(host, keyAuthorization);
  if (!certificate) return certificate.error();
  alpn_[lowerCase(host)] = std::move(*certificate);
  publish();
  share(ChallengeSharing::Kind::kTlsAlpn01, lowerCase(host), keyAuthorization, std::move(shared));
  return Ok{};
}

void ChallengeStore::removeTlsAlpn(const std::string& host) {
  alpn_.erase(lowerCase(host));
  publish();
  if (sharing_ != nullptr) sharing_->unshare(ChallengeSharing::Kind::kTlsAlpn01, lowerCase(host));
}

void ChallengeStore::putShared(ChallengeSharing::Kind kind, const std::string& id,
                               const std::string& keyAuthorization) {
  if (kind == ChallengeSharing::Kind::kHttp01) {
    if (!validToken(id)) return;
    sharedTokens_[id] = keyAuthorization;
  } else {
    SharedAlpn& entry = sharedAlpn_[lowerCase(id)];
    if (entry.certificate != nullptr && entry.keyAuthorization == keyAuthorization) return;
    auto certificate = makeTlsAlpnCertificate(lowerCase(id), keyAuthorization);
    if (!certificate) {
      sharedAlpn_.erase(lowerCase(id));
      return;
    }
    entry = {keyAuthorization, std::move(*certificate)};
  }
  publish();
}

void ChallengeStore::removeShared(ChallengeSharing::Kind kind, const std::string& id) {
  if (kind == ChallengeSharing::Kind::kHttp01) {
    sharedTokens_.erase(id);
  } else {
    sharedAlpn_.erase(lowerCase(id));
  }
  publish();
}

void ChallengeStore::clearShared() {
  sharedTokens_.clear();
  sharedAlpn_.clear();
  publish();
}

void ChallengeStore::publish() {
  auto next = std::make_shared<Snapshot>();
  next->tokens = files_;
  for (const auto& [token, value] : sharedTokens_) next->tokens[token] = value;
  for (const auto& [token, value] : live_) next->tokens[token] = value;
  for (const auto& [host, entry] : sharedAlpn_) next->alpn[host] = entry.certificate;
  for (const auto& [host, certificate] : alpn_) next->alpn[host] = certificate;
  std::shared_ptr<const Snapshot> old;
  {
    std::lock_guard lock(mutex_);
    old = std::exchange(map_, std::move(next));
  }
  // `old` is freed here, outside the lock (or by the last reader holding it).
}

Status ChallengeStore::loadDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  Map next;
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    files_.clear();
    publish();
    return Ok{};
  }
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file()) continue;
    std::string token = entry.path().filename().string();
    if (!validToken(token)) continue;  // editor backups, temp files
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream content;
    content << in.rdbuf();
    std::string value = content.str();
    auto notSpace = [](char c) { return c != ' ' && c != '\n' && c != '\r' && c != '\t'; };
    while (!value.empty() && !notSpace(value.back())) value.pop_back();
    size_t start = 0;
    while (start < value.size() && !notSpace(value[start])) ++start;
    next[token] = value.substr(start);
  }
  if (ec) return makeError("challenges " + dir + ": " + ec.message());
  files_ = std::move(next);
  publish();
  return Ok{};
}

std::shared_ptr<const ChallengeStore::Snapshot> ChallengeStore::snapshot() const {
  std::lock_guard lock(mutex_);
  return map_;
}

std::optional<std::string> ChallengeStore::find(std::string_view token) const {
  auto current = snapshot();
  auto it = current->tokens.find(token);
  if (it == current->tokens.end()) return std::nullopt;
  return it->second;
}

certstore::CredentialsPtr ChallengeStore::findTlsAlpn(std::string_view host) const {
  auto current = snapshot();
  if (current->alpn.empty()) return nullptr;
  // Host names are at most 253 characters: lower-cased on the stack.
  char lower[256];
  if (host.empty() || host.size() > sizeof lower) return nullptr;
  auto it = current->alpn.find(ascii::lowerInto(host, lower));
  return it == current->alpn.end() ? nullptr : it->second;
}

bool validToken(std::string_view token) {
  if (token.empty() || token.size() > 256) return false;
  for (char c : token) {
    bool ok = ascii::isAlnum(c) || c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

}  // namespace tlsedge::acme
