// The server TLS context of the HTTPS management listener (`admin.tls`):
// TLS 1.2 and 1.3, ALPN http/1.1, the certificate chain and key from files,
// and with `client_ca` a request for a client certificate, verified against
// those roots when one is sent (not required: a token may authenticate
// instead; admin/access.h).
//
// Thread: any (built at start, before the control loop runs).
#pragma once

#include <openssl/ssl.h>

#include "base/result.h"
#include "conf/config.h"

namespace tlsedge::admin {

// Errors name the file and what is wrong with it.
Result<bssl::UniquePtr<SSL_CTX>> managementTlsContext(const conf::Management& management);

}  // namespace tlsedge::admin
