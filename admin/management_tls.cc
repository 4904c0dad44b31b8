#include "admin/management_tls.h"

#include "net/tls.h"

namespace tlsedge::admin {
namespace {

int selectHttp11(SSL*, const uint8_t** out, uint8_t* outLength, const uint8_t* in,
                 unsigned inLength, void*) {
  static constexpr uint8_t kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  uint8_t* selected = nullptr;
  if (SSL_select_next_proto(&selected, outLength, kHttp11, sizeof kHttp11, in, inLength) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no ALPN then, which HTTP/1.1 clients accept
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

Result<bssl::UniquePtr<SSL_CTX>> managementTlsContext(const conf::Management& management) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), management.certificateFile.c_str()) != 1) {
    return makeError("admin.tls.certificate " + management.certificateFile + ": " +
                     net::drainSslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), management.keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
    return makeError("admin.tls.key " + management.keyFile + ": " + net::drainSslErrors());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return makeError("admin.tls.key " + management.keyFile +
                     " does not match admin.tls.certificate " + management.certificateFile);
  }
  if (!management.clientCaFile.empty()) {
    const char* file = management.clientCaFile.c_str();
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(file);
    if (names == nullptr || SSL_CTX_load_verify_locations(ctx.get(), file, nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return makeError("admin.tls.client_ca " + management.clientCaFile +
                       ": no usable CA certificate: " + net::drainSslErrors());
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);  // takes ownership
    // Asked for, verified if sent, never required (tokens work without).
    // One that fails verification does not end the handshake: the request
    // gets a 401 that says so, and is counted (admin/access.h).
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), selectHttp11, nullptr);
  return ctx;
}

}  // namespace tlsedge::admin
