#include "tls/tls_context.h"

#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/nid.h>

#include <cstring>
#include <string_view>

#include "acme/tls_alpn.h"
#include "base/log.h"

namespace tlsedge::tls {
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

// Whether the u16 list extension `type` (a u16 length, then u16 values)
// holds a value for which `match` is true.
template <class Match>
bool extensionListHas(const SSL_CLIENT_HELLO* hello, uint16_t type, Match match) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!SSL_early_callback_ctx_extension_get(hello, type, &data, &len)) return false;
  CBS ext, list;
  CBS_init(&ext, data, len);
  if (!CBS_get_u16_length_prefixed(&ext, &list)) return false;
  uint16_t value = 0;
  while (CBS_get_u16(&list, &value)) {
    if (match(value)) return true;
  }
  return false;
}

// Whether supported_versions (RFC 8446 section 4.2.1) offers TLS 1.3.
bool offersTls13(const SSL_CLIENT_HELLO* hello) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_supported_versions, &data, &len)) {
    return false;
  }
  CBS ext, list;
  CBS_init(&ext, data, len);
  if (!CBS_get_u8_length_prefixed(&ext, &list)) return false;
  uint16_t version = 0;
  while (CBS_get_u16(&list, &version)) {
    if (version == TLS1_3_VERSION) return true;
  }
  return false;
}

// Whether the client offers a TLS 1.2 cipher suite with ECDSA authentication.
bool offersEcdsaSuite(const SSL_CLIENT_HELLO* hello) {
  CBS suites;
  CBS_init(&suites, hello->cipher_suites, hello->cipher_suites_len);
  uint16_t value = 0;
  while (CBS_get_u16(&suites, &value)) {
    const SSL_CIPHER* cipher = SSL_get_cipher_by_value(value);
    if (cipher != nullptr && SSL_CIPHER_get_auth_nid(cipher) == NID_auth_ecdsa) return true;
  }
  return false;
}

// Whether the client can verify an ECDSA certificate in what it offers:
// - signature_algorithms, if sent, must list an ECDSA scheme (ecdsa_sha1 or
//   ecdsa_secp{256,384,521}r1_sha{256,384,512}); without the extension TLS
//   1.2 implies ECDSA with SHA-1 for an ECDSA suite (RFC 5246 7.4.1.4.1);
// - then TLS 1.3 (any cipher suite: they do not fix the authentication) or
//   a TLS 1.2 ECDHE_ECDSA cipher suite. The server always allows TLS 1.3.
// Allocation-free: it runs on every handshake.
bool clientAcceptsEcdsa(const SSL_CLIENT_HELLO* hello) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_signature_algorithms, &data, &len)) {
    CBS ext, list;
    CBS_init(&ext, data, len);
    if (!CBS_get_u16_length_prefixed(&ext, &list)) return false;
    bool ecdsa = false;
    uint16_t scheme = 0;
    while (!ecdsa && CBS_get_u16(&list, &scheme)) {
      ecdsa = scheme == SSL_SIGN_ECDSA_SHA1 || scheme == SSL_SIGN_ECDSA_SECP256R1_SHA256 ||
              scheme == SSL_SIGN_ECDSA_SECP384R1_SHA384 ||
              scheme == SSL_SIGN_ECDSA_SECP521R1_SHA512;
    }
    if (!ecdsa) return false;
    if (offersTls13(hello)) return true;
  }
  return offersEcdsaSuite(hello);
}

size_t sniOutcomeIndex(certstore::Selector::Outcome outcome) {
  using Outcome = certstore::Selector::Outcome;
  switch (outcome) {
    case Outcome::kExact:
      return TlsStats::kExact;
    case Outcome::kWildcard:
      return TlsStats::kWildcard;
    case Outcome::kSiteFallback:
      return TlsStats::kSiteFallback;
    case Outcome::kDefault:
      return TlsStats::kDefault;
    case Outcome::kMiss:
      break;
  }
  return TlsStats::kMiss;
}

// Whether the ALPN list `in` (RFC 7301 wire form) holds `protocol`; if so
// `out` points at it within `in`.
bool alpnListHas(const uint8_t* in, size_t inLen, std::string_view protocol,
                 const uint8_t** out = nullptr) {
  CBS list;
  CBS_init(&list, in, inLen);
  while (CBS_len(&list) > 0) {
    CBS proto;
    if (!CBS_get_u8_length_prefixed(&list, &proto)) return false;
    if (CBS_len(&proto) == protocol.size() &&
        std::memcmp(CBS_data(&proto), protocol.data(), protocol.size()) == 0) {
      if (out != nullptr) *out = CBS_data(&proto);
      return true;
    }
  }
  return false;
}

// Whether the ClientHello's ALPN extension offers `acme-tls/1`.
bool offersAcmeTls(const SSL_CLIENT_HELLO* hello) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  if (!SSL_early_callback_ctx_extension_get(
          hello, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len)) {
    return false;
  }
  CBS ext, list;
  CBS_init(&ext, data, len);
  if (!CBS_get_u16_length_prefixed(&ext, &list)) return false;
  return alpnListHas(CBS_data(&list), CBS_len(&list), acme::kAcmeTlsAlpn);
}

enum ssl_select_cert_result_t selectCertificate(const SSL_CLIENT_HELLO* hello) noexcept {
  auto* state = static_cast<HandshakeState*>(SSL_get_app_data(hello->ssl));
  if (state == nullptr || state->selector == nullptr) return ssl_select_cert_error;
  if (state->challenges != nullptr && offersAcmeTls(hello)) {
    // RFC 8737 section 3: the validation handshake gets the challenge
    // certificate; one for a name without a pending challenge is an
    // ordinary handshake.
    if (auto challenge = state->challenges->findTlsAlpn(sniFromClientHello(hello))) {
      if (!certstore::installCredentials(hello->ssl, *challenge)) return ssl_select_cert_error;
      SSL_set_options(hello->ssl, SSL_OP_NO_TICKET);  // nothing to resume: the session ends here
      state->acmeTlsAlpn = true;
      return ssl_select_cert_success;
    }
  }
  auto choice = state->selector->select(sniFromClientHello(hello), clientAcceptsEcdsa(hello));
  if (state->stats != nullptr) ++state->stats->sniLookups[sniOutcomeIndex(choice.outcome)];
  if (choice.credentials == nullptr) {
    // Let the servername callback refuse with unrecognized_name (RFC 6066
    // section 3), which is what clients report best.
    state->refuse = true;
    return ssl_select_cert_success;
  }
  if (!certstore::installCredentials(hello->ssl, *choice.credentials)) {
    return ssl_select_cert_error;
  }
  // A shared reference count taken on the handshake path (rule 6, an
  // exception docs/principles.md lists): the SSL sheds its configuration
  // once the handshake is done, and HTTP/2's 421 check asks later which
  // names the certificate covers. BoringSSL takes one on each buffer it
  // installs anyway.
  state->served = choice.credentials->shared_from_this();
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

// RFC 9113 9.2.2: over TLS 1.2, HTTP/2 needs an ephemeral key exchange and
// an AEAD cipher (a client may refuse others with INADEQUATE_SECURITY).
bool http2CipherOk(const SSL* ssl) {
  if (SSL_version(ssl) >= TLS1_3_VERSION) return true;
  const SSL_CIPHER* cipher = SSL_get_pending_cipher(ssl);
  return cipher != nullptr && SSL_CIPHER_is_aead(cipher) &&
         SSL_CIPHER_get_kx_nid(cipher) == NID_kx_ecdhe;
}

int selectAlpn(SSL* ssl, const uint8_t** out, uint8_t* outLen, const uint8_t* in, unsigned inLen,
               void*) noexcept {
  static constexpr std::string_view kHttp11 = "http/1.1";
  static constexpr std::string_view kHttp2 = "h2";
  auto* state = static_cast<HandshakeState*>(SSL_get_app_data(ssl));
  auto choose = [&](std::string_view protocol) {
    if (!alpnListHas(in, inLen, protocol, out)) return false;
    *outLen = static_cast<uint8_t>(protocol.size());
    return true;
  };
  // A challenge handshake negotiates acme-tls/1 (RFC 8737 section 3).
  if (state != nullptr && state->acmeTlsAlpn) {
    if (choose(acme::kAcmeTlsAlpn)) return SSL_TLSEXT_ERR_OK;
    return SSL_TLSEXT_ERR_NOACK;
  }
  // The server's preference: h2, then http/1.1.
  if (state != nullptr && state->http2 && http2CipherOk(ssl) && choose(kHttp2)) {
    return SSL_TLSEXT_ERR_OK;
  }
  if (choose(kHttp11)) return SSL_TLSEXT_ERR_OK;
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
  // One TLS 1.3 ticket per handshake, not BoringSSL's default two: each is
  // sealed on the handshake's path (~7% of its instructions), and a client
  // resumes with one (the server accepts a ticket more than once).
  SSL_CTX_set_num_tickets(ctx.get(), 1);
  // Buffers are released between records: most edge connections are idle.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

SSL* newServerSsl(SSL_CTX* ctx, HandshakeState* state) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  SSL_set_app_data(ssl, state);
  // Its configuration (certificate chain and key, cipher and ALPN lists)
  // is freed once the handshake is done: ~0.6 KB less per connection.
  // What is asked of it later comes from the handshake (version, cipher,
  // ALPN, SNI) or from HandshakeState::served.
  SSL_set_shed_handshake_config(ssl, 1);
  return ssl;
}

}  // namespace tlsedge::tls
