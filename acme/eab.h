// External Account Binding (RFC 8555 section 7.3.4): the inner JWS a
// newAccount request carries when the CA binds accounts to accounts it
// knows (`acme.eab`): HS256 (HMAC-SHA-256 with the CA's MAC key) over the
// account's JWK, protected header {"alg":"HS256","kid":<eab kid>,"url":<newAccount URL>}.
//
// Thread: any (pure function).
#pragma once

#include <string>

#include "base/result.h"
#include "conf/config.h"

namespace tlsedge::acme {

// The flattened JWS as JSON text, for newAccount's `externalAccountBinding`.
// Errors (a MAC key that does not decode) name `acme.eab.hmac_key`, never
// its value.
Result<std::string> externalAccountBinding(const conf::AcmeEab& eab, const std::string& accountJwk,
                                           const std::string& newAccountUrl);

}  // namespace tlsedge::acme
