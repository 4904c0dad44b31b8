#include "admin/tokens.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "acme/jose.h"
#include "base/log.h"
#include "certstore/files.h"
#include "certstore/json.h"

namespace tlsedge::admin {
namespace {

bool validName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status writeTokens(const std::string& path, const Tokens& tokens) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [hash, token] : tokens) {
    list.push_back({{"name", token.name},
                    {"scopes", scopeNames(token.scopes)},
                    {"sha256", hash},
                    {"created", static_cast<int64_t>(token.created)}});
  }
  nlohmann::json file = {{"tokens", list}};
  return certstore::writeFileAtomic(path, certstore::jsonText(file, 2) + "\n", 0600);
}

}  // namespace

std::string sha256Hex(std::string_view text) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string tokensPath(const std::string& stateDir) { return stateDir + "/admin-tokens.json"; }

Result<Tokens> readTokens(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Tokens{};
    return makeError("tokens file " + path + ": " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json file = nlohmann::json::parse(text.str(), nullptr, false);
  const std::string bad = "tokens file " + path + ": ";
  if (!file.is_object() || !file.contains("tokens") || !file["tokens"].is_array()) {
    return makeError(bad + "not a {\"tokens\": [...]} JSON object");
  }
  Tokens tokens;
  for (const nlohmann::json& entry : file["tokens"]) {
    if (!entry.is_object() || !entry.value("name", nlohmann::json()).is_string() ||
        !entry.value("sha256", nlohmann::json()).is_string() ||
        !entry.value("scopes", nlohmann::json()).is_array()) {
      return makeError(bad + "an entry lacks a string name, sha256 or a scopes list");
    }
    Token token;
    token.name = entry["name"];
    token.sha256 = entry["sha256"];
    std::vector<std::string> names;
    for (const nlohmann::json& scope : entry["scopes"]) {
      if (scope.is_string()) names.push_back(scope);
    }
    auto scopes = parseScopes(names);
    if (!scopes) return makeError(bad + "token " + token.name + ": " + scopes.error().message);
    token.scopes = *scopes;
    if (entry.contains("created") && entry["created"].is_number_integer()) {
      token.created = static_cast<time_t>(entry["created"].get<int64_t>());
    }
    std::string hash = token.sha256;
    tokens.emplace(std::move(hash), std::move(token));
  }
  return tokens;
}

Result<std::string> addToken(const std::string& path, const std::string& name, Scopes scopes,
                             time_t now) {
  if (!validName(name)) {
    return makeError("token name \"" + name + "\": 1 to 64 of A-Z a-z 0-9 . _ -",
                     ErrorKind::kInvalid);
  }
  auto tokens = readTokens(path);
  if (!tokens) return tokens.error();
  for (const auto& [hash, token] : *tokens) {
    if (token.name == name) {
      return makeError("token " + name + " exists; remove it first", ErrorKind::kConflict);
    }
  }
  uint8_t random[32];
  RAND_bytes(random, sizeof random);
  std::string secret =
      "tle_" + acme::base64url(std::string_view(reinterpret_cast<const char*>(random), 32));
  std::string hash = sha256Hex(secret);
  tokens->emplace(hash, Token{name, scopes, hash, now});
  if (Status written = writeTokens(path, *tokens); !written) return written.error();
  return secret;
}

Status removeToken(const std::string& path, const std::string& name) {
  auto tokens = readTokens(path);
  if (!tokens) return tokens.error();
  const size_t before = tokens->size();
  std::erase_if(*tokens, [&](const auto& entry) { return entry.second.name == name; });
  if (tokens->size() == before) return makeError("no token " + name, ErrorKind::kNotFound);
  return writeTokens(path, *tokens);
}

std::shared_ptr<const Tokens> TokenFile::current() {
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    if (size_ != -1) tokens_ = std::make_shared<Tokens>();
    size_ = -1;
    return tokens_;
  }
  if (st.st_ino == inode_ && st.st_size == size_ && st.st_mtim.tv_sec == mtime_.tv_sec &&
      st.st_mtim.tv_nsec == mtime_.tv_nsec) {
    return tokens_;
  }
  auto tokens = readTokens(path_);
  if (!tokens)
    log::warning(tokens.error().message + "; no API token is accepted until it is fixed");
  tokens_ = tokens ? std::make_shared<Tokens>(std::move(*tokens)) : std::make_shared<Tokens>();
  inode_ = st.st_ino;
  size_ = st.st_size;
  mtime_ = st.st_mtim;
  return tokens_;
}

}  // namespace tlsedge::admin
