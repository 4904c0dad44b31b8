#include "proxy/upstream/upstream_tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "base/log.h"
#include "certstore/files.h"
#include "net/tls.h"
#include "net/tls_roots.h"

namespace tlsedge::proxy {
namespace {

constexpr uint8_t kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

std::string sha256Hex(const std::string& data) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * sizeof(digest));
  for (uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// Reads `path` into a new store; `*contents` (optional) gets the file's text.
Result<bssl::UniquePtr<X509_STORE>> loadStore(const std::string& path, const std::string& what,
                                              std::string* contents = nullptr) {
  auto text = certstore::readFile(path);
  if (!text) return makeError(what + ": " + text.error().message);
  bssl::UniquePtr<X509_STORE> store(X509_STORE_new());
  auto added = net::addCertificates(store.get(), *text, what + ": " + path);
  if (!added) return added.error();
  if (contents != nullptr) *contents = std::move(*text);
  return store;
}

// Runs on the worker that owns the connection, from inside SSL_read.
int onNewSession(SSL* ssl, SSL_SESSION* session) noexcept {
  auto* sink = static_cast<TlsSessionSink*>(SSL_get_app_data(ssl));
  if (sink == nullptr || !SSL_SESSION_is_resumable(session)) return 0;
  sink->onNewSession(bssl::UniquePtr<SSL_SESSION>(session));
  return 1;  // we took the reference
}

}  // namespace

Result<std::shared_ptr<const UpstreamTlsContext>> UpstreamTlsContext::build(
    const conf::Upstream& upstream, X509_STORE* systemRoots) {
  const conf::UpstreamTls& tls = *upstream.tls;
  std::shared_ptr<UpstreamTlsContext> out(new UpstreamTlsContext);
  out->serverName_ = tls.serverName;
  out->verify_ = tls.verify;
  out->identity_ =
      std::string("tls verify=") + (tls.verify ? "1" : "0") + " server_name=" + tls.serverName;

  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return makeError("upstream " + upstream.name + ": " + net::drainSslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpnHttp11, sizeof(kAlpnHttp11));  // 0 on success
  // Sessions are kept by the worker per server (see TlsSessionSink), not in
  // the context's locked cache shared by all workers.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(ctx.get(), &onNewSession);

  if (!tls.verify) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    log::warning("upstream " + upstream.name +
                 ": tls.verify is false: origin certificates are not checked (the traffic is "
                 "encrypted, but anyone on the path can answer)");
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (!tls.caFile.empty()) {
      std::string text;
      auto store = loadStore(tls.caFile, "upstream " + upstream.name + ": tls.ca", &text);
      if (!store) return store.error();
      SSL_CTX_set_cert_store(ctx.get(), store->release());
      // The contents, not only the path: a reload after the file changed
      // must not reuse connections verified against the old roots.
      out->identity_ += " ca=" + tls.caFile + "#" + sha256Hex(text);
    } else {
      if (systemRoots == nullptr) {
        return makeError("upstream " + upstream.name + ": no system roots loaded");
      }
      X509_STORE_up_ref(systemRoots);
      SSL_CTX_set_cert_store(ctx.get(), systemRoots);
      out->identity_ += std::string(" ca=system:") + net::kSystemRootsFile;
    }
  }
  out->ctx_ = std::move(ctx);
  return std::shared_ptr<const UpstreamTlsContext>(std::move(out));
}

SSL* UpstreamTlsContext::newSsl(const conf::SocketAddress& server, SSL_SESSION* session,
                                TlsSessionSink* sink) const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctx_.get()));
  if (!ssl) return nullptr;
  SSL_set_app_data(ssl.get(), sink);
  if (!serverName_.empty() && !SSL_set_tlsext_host_name(ssl.get(), serverName_.c_str())) {
    return nullptr;
  }
  if (verify_) {
    if (!serverName_.empty()) {
      if (!SSL_set1_host(ssl.get(), serverName_.c_str())) return nullptr;
    } else if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), server.host.c_str())) {
      return nullptr;
    }
  }
  if (session != nullptr) SSL_set_session(ssl.get(), session);
  return ssl.release();
}

Result<UpstreamSetups> buildUpstreamSetups(const conf::Config& config) {
  UpstreamSetups out;
  bssl::UniquePtr<X509_STORE> systemRoots;
  for (const conf::Upstream& upstream : config.upstreams) {
    UpstreamSetup setup;
    setup.config = &upstream;
    setup.stateKey = upstream.name + "\n";
    for (const auto& server : upstream.servers) setup.stateKey += server.text + " ";
    // Connections that opened with a PROXY header are never pooled with others.
    if (upstream.sendProxyProtocol) setup.stateKey += "\nproxy-protocol";
    if (upstream.tls) {
      if (upstream.tls->verify && upstream.tls->caFile.empty() && !systemRoots) {
        auto loaded =
            loadStore(net::kSystemRootsFile,
                      "upstream " + upstream.name + ": tls without `ca` uses the system roots");
        if (!loaded) return loaded.error();
        systemRoots = std::move(*loaded);
      }
      auto tls = UpstreamTlsContext::build(upstream, systemRoots.get());
      if (!tls) return tls.error();
      setup.tls = std::move(*tls);
      setup.stateKey += "\n" + setup.tls->identity();
    }
    out.emplace(upstream.name, std::move(setup));
  }
  return out;
}

}  // namespace tlsedge::proxy
