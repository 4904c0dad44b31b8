// API tokens of the HTTPS management API (`admin.listen`): named secrets
// with scopes, kept in the state directory as SHA-256 hashes only.
//
// A token is "tle_" + 43 base64url characters (32 random bytes); it is
// shown once, when it is made (`tlsedge token add`), and never stored: the
// file holds its SHA-256, so a copy of the state directory lets nobody in.
// A token's 256 random bits make a fast hash safe (there is nothing to
// guess from it); a request's token is found by its hash, so no comparison
// runs over secret bytes.
//
// The file, STATE_DIR/admin-tokens.json (0600, written whole by
// writeFileAtomic): {"tokens": [{"name", "scopes": [...], "sha256",
// "created"}]}. The daemon re-reads it when it changes (TokenFile::current,
// one stat per authenticated request), so the CLI manages tokens on the
// state directory, with or without a running daemon, and a removed token
// stops working at its next request.
//
// Thread: any; a TokenFile is used by one thread (the control loop, or the CLI).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "conf/scopes.h"

namespace tlsedge::admin {

using conf::kAllScopes;
using conf::kScopeAcme;
using conf::kScopeCertificates;
using conf::kScopeRead;
using conf::kScopeSites;
using conf::parseScopes;
using conf::scopeNames;
using conf::Scopes;

struct Token {
  std::string name;
  Scopes scopes = 0;
  std::string sha256;  // hex, of the whole token text
  time_t created = 0;
};

// The file's tokens, by hash; a malformed file is an Error naming it.
using Tokens = std::map<std::string, Token, std::less<>>;  // sha256 -> token
Result<Tokens> readTokens(const std::string& path);

// SHA-256 of `text`, lower-case hex.
std::string sha256Hex(std::string_view text);

// Adds a token NAME (refused if the name is taken or not [A-Za-z0-9._-]{1,64})
// and returns its secret text, the only time it exists.
Result<std::string> addToken(const std::string& path, const std::string& name, Scopes scopes,
                             time_t now);
// Removes NAME (ErrorKind::kNotFound if there is none).
Status removeToken(const std::string& path, const std::string& name);

// The tokens file of a state directory.
std::string tokensPath(const std::string& stateDir);

// The file as last read, re-read when its inode, size or mtime changes; a
// file that cannot be read (missing: no tokens) keeps no token valid.
class TokenFile {
 public:
  explicit TokenFile(std::string path) : path_(std::move(path)) {}
  std::shared_ptr<const Tokens> current();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::shared_ptr<const Tokens> tokens_ = std::make_shared<Tokens>();
  ino_t inode_ = 0;
  off_t size_ = -1;
  struct timespec mtime_ {};
};

}  // namespace tlsedge::admin
