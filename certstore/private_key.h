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
Result<ParsedKey> parsePrivateKey(const std::vector<PemBlock>& blocks, std::string_view source);

}  // namespace tlsedge::certstore
