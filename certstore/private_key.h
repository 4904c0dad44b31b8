// Private key PEM -> EVP_PKEY, restricted to the key types tlsedge serves.
// Internal to certstore.
//
// Thread: any (pure function).
#pragma once

#include <openssl/base.h>

#include <string_view>
#include <vector>

#include "base/result.h"
#include "certstore/credentials.h"
#include "certstore/pem.h"

namespace tlsedge::certstore {

struct ParsedKey {
  bssl::UniquePtr<EVP_PKEY> key;
  KeyType type = KeyType::kEcdsaP256;
};

// Finds the one private key among `blocks` (PKCS#8 "PRIVATE KEY", PKCS#1
// "RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY", the latter possibly preceded by
// "EC PARAMETERS") and accepts RSA 2048..4096 bits or ECDSA P-256/P-384.
// Refuses encrypted keys (never tries a password), several keys, and other
// types or sizes (naming them). Messages start with `source` and never
// contain key material.
// With Verify::kStored (a key the store wrote after a full check), an ECDSA
// PKCS#8 key that carries its public key is taken as it is, without the
// scalar multiplication BoringSSL's parser spends on checking that the
// private scalar gives that public key (a third of a stored load). The
// public key is still checked against the leaf by the caller, so a wrong
// key file is refused; only a file whose two halves disagree is not.
Result<ParsedKey> parsePrivateKey(const std::vector<PemBlock>& blocks, std::string_view source,
                                  Verify verify = Verify::kFull);

// The kStored fast path: null if `der` is not a P-256/P-384 PKCS#8 key with
// its public key (the caller then uses the full parser).
bssl::UniquePtr<EVP_PKEY> parseStoredEcKey(const std::vector<uint8_t>& der);

}  // namespace tlsedge::certstore
