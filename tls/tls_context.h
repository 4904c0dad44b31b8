// The server SSL_CTX of a worker: versions, ALPN, session tickets, and the
// select-certificate callback that installs per-handshake credentials chosen
// by SNI (no SSL_CTX per certificate).
//
// Thread: one SSL_CTX per worker, created on the control loop before the
// worker starts, then used only by that worker (no shared refcount traffic
// per connection). Ticket keys are the same for every worker, so a client
// resumes whichever worker it lands on.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>

#include "acme/challenge_store.h"
#include "certstore/selector.h"
#include "conf/config.h"
#include "tls/ticket_keys.h"
#include "tls/tls_stats.h"

namespace tlsedge::tls {

// Per-handshake state the callbacks reach through SSL_get_app_data. Owned by
// the connection; must outlive the handshake.
struct HandshakeState {
  const certstore::Selector* selector = nullptr;
  bool refuse = false;        // no certificate for this SNI and tls.unknown_sni is reject
  TlsStats* stats = nullptr;  // the worker's: counts the selection's outcome
  // TLS-ALPN-01 (RFC 8737): where pending challenge certificates are looked
  // up, only for a ClientHello offering `acme-tls/1`.
  const acme::ChallengeStore* challenges = nullptr;
  // The challenge certificate was installed: `acme-tls/1` is negotiated and
  // the connection closes after the handshake.
  bool acmeTlsAlpn = false;
  // ALPN may select `h2` (tls.http2 of the connection's generation).
  bool http2 = false;
  // The certificate the handshake served (null: none, or a challenge's).
  // Kept because the SSL sheds its configuration, and with it its
  // certificate, once the handshake is done.
  certstore::CredentialsPtr served;
};

// min_version comes from the config at creation: a reload that changes it
// applies to new workers' contexts (today: at restart). `ticketKeys` is the
// first ring; the worker replaces it on rotation (setTicketKeys).
bssl::UniquePtr<SSL_CTX> makeServerContext(const conf::Tls& tls, TicketKeyRingPtr ticketKeys);

// Creates the SSL for one accepted connection with `state` attached.
SSL* newServerSsl(SSL_CTX* ctx, HandshakeState* state);

}  // namespace tlsedge::tls
