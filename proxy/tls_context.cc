#include "proxy/tls_context.h"

#include <openssl/bytestring.h>
#include <openssl/err.h>

#include <cstring>
#include <string_view>

#include "base/log.h"

namespace tlsedge::proxy {
namespace {

// The host_name of the server_name extension (RFC 6066 section 3), or empty.
std::string_view sniFromClientHello(const SSL_CLIENT_HELLO* hello) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_server_name, &data, &len)) {
    return {};
  }
  CBS ext, list;
  CBS_init(&ext, data, len);
  if (!CBS_get_u16_length_prefixed(&ext, &list)) return {};
  while (CBS_len(&list) > 0) {
    uint8_t type = 0;
    CBS name;
    if (!CBS_get_u8(&list, &type) || !CBS_get_u16_length_prefixed(&list, &name)) return {};
    if (type == TLSEXT_NAMETYPE_host_name) {
      return {reinterpret_cast<const char*>(CBS_data(&name)), CBS_len(&name)};
    }
  }
  return {};
}

enum ssl_select_cert_result_t selectCertificate(const SSL_CLIENT_HELLO* hello) noexcept {
  auto* state = static_cast<HandshakeState*>(SSL_get_app_data(hello->ssl));
  if (state == nullptr || state->selector == nullptr) return ssl_select_cert_error;
  auto choice = state->selector->select(sniFromClientHello(hello));
  if (choice.credentials == nullptr) {
    // Let the servername callback refuse with unrecognized_name (RFC 6066
    // section 3), which is what clients report best.
    state->refuse = true;
    return ssl_select_cert_success;
  }
  if (!certstore::installCredentials(hello->ssl, *choice.credentials)) {
    return ssl_select_cert_error;
  }
  return ssl_select_cert_success;
}

int serverName(SSL* ssl, int* alert, void*) noexcept {
  auto* state = static_cast<HandshakeState*>(SSL_get_app_data(ssl));
  if (state != nullptr && state->refuse) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

int selectAlpn(SSL*, const uint8_t** out, uint8_t* outLen, const uint8_t* in, unsigned inLen,
               void*) noexcept {
  static constexpr std::string_view kHttp11 = "http/1.1";
  CBS list;
  CBS_init(&list, in, inLen);
  while (CBS_len(&list) > 0) {
    CBS proto;
    if (!CBS_get_u8_length_prefixed(&list, &proto)) break;
    if (CBS_len(&proto) == kHttp11.size() &&
        std::memcmp(CBS_data(&proto), kHttp11.data(), kHttp11.size()) == 0) {
      *out = CBS_data(&proto);
      *outLen = static_cast<uint8_t>(CBS_len(&proto));
      return SSL_TLSEXT_ERR_OK;
    }
  }
  // No protocol we speak: carry on without ALPN rather than fail (RFC 7301
  // allows either; curl and browsers then fall back to HTTP/1.1).
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

bssl::UniquePtr<SSL_CTX> makeServerContext(const conf::Tls& tls, TicketKeyRingPtr ticketKeys) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  SSL_CTX_set_min_proto_version(
      ctx.get(), tls.minVersion == conf::TlsVersion::k1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_select_certificate_cb(ctx.get(), &selectCertificate);
  SSL_CTX_set_tlsext_servername_callback(ctx.get(), &serverName);
  SSL_CTX_set_alpn_select_cb(ctx.get(), &selectAlpn, nullptr);
  installTicketKeys(ctx.get(), std::move(ticketKeys));
  // Resumption is by ticket only: a per-worker session cache would resume
  // on one worker out of N and hold memory per session.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  // Buffers are released between records: most edge connections are idle.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

SSL* newServerSsl(SSL_CTX* ctx, HandshakeState* state) {
  SSL* ssl = SSL_new(ctx);
  if (ssl != nullptr) SSL_set_app_data(ssl, state);
  return ssl;
}

}  // namespace tlsedge::proxy
