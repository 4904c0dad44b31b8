// What a generation knows about each upstream besides its conf::Upstream:
// the TLS client context for origins behind `tls`, and the key under which a
// worker files its pool and health state for it.
//
// Thread: built on the control loop by loadGeneration (reading the CA files
// there: a worker never touches the disk), then immutable and shared by every
// worker. Workers only call newSsl(), which takes a reference on the SSL_CTX
// (BoringSSL makes that thread-safe).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "base/result.h"
#include "conf/config.h"

namespace tlsedge::proxy {

// Receives the TLS sessions an origin hands out (for resumption on the next
// connection). Set as the SSL's app data by whoever owns the connection;
// called on that connection's loop.
class TlsSessionSink {
 public:
  virtual ~TlsSessionSink() = default;
  virtual void onNewSession(bssl::UniquePtr<SSL_SESSION> session) = 0;
};

// The client side of TLS to one upstream's servers.
class UpstreamTlsContext {
 public:
  // `systemRoots` is used when the upstream names no `ca` (shared between
  // upstreams of one generation; may be null when every upstream has `ca` or
  // `verify: false`).
  static Result<std::shared_ptr<const UpstreamTlsContext>> build(const conf::Upstream& upstream,
                                                                 X509_STORE* systemRoots);

  // A client SSL for a connection to `server`: SNI and the name to verify
  // (`server_name`) or, without it, the server's IP address to verify; ALPN
  // http/1.1; `session` (may be null) offered for resumption. New sessions
  // go to `sink` (may be null).
  SSL* newSsl(const conf::SocketAddress& server, SSL_SESSION* session, TlsSessionSink* sink) const;

  // Identifies what was verified: the CA file and a hash of its contents, the
  // server name, verify on/off. Connections and sessions made with one
  // identity are never used for another.
  const std::string& identity() const { return identity_; }

 private:
  UpstreamTlsContext() = default;

  bssl::UniquePtr<SSL_CTX> ctx_;
  std::string serverName_;
  bool verify_ = true;
  std::string identity_;
};

// Everything per upstream that the workers need, by upstream name.
struct UpstreamSetup {
  const conf::Upstream* config = nullptr;  // points into the generation's Config
  // Per-worker pools, balancing cursor and passive health are filed under
  // this key: the name, the servers and the TLS identity. A reload that
  // keeps all three keeps a worker's pooled connections and health state;
  // changing any of them starts afresh.
  std::string stateKey;
  std::shared_ptr<const UpstreamTlsContext> tls;  // null: plain HTTP
};

using UpstreamSetups = std::unordered_map<std::string, UpstreamSetup>;

// Builds the setup of every upstream of `config` (which must outlive the
// result). A CA file that cannot be read or holds no parsable certificate is
// an error naming the upstream and the file; so is an unreadable system
// bundle when an upstream relies on it. `verify: false` is logged as a
// warning.
Result<UpstreamSetups> buildUpstreamSetups(const conf::Config& config);

}  // namespace tlsedge::proxy
