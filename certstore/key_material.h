// Building blocks for making certificates and requests: fresh private keys,
// their PKCS#8 PEM text, subjectAltName lists. Used by the self-signed
// development certificate and by the ACME client's CSRs.
//
// Thread: any (pure functions).
#pragma once

#include <openssl/base.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "base/result.h"

namespace tlsedge::certstore {

enum class NewKeyType { kEcdsaP256, kEcdsaP384, kRsa2048, kRsa3072, kRsa4096 };

// The names `acme.key_type` and `cert request --key-type` use: "ecdsa-p256",
// "ecdsa-p384", "rsa2048", "rsa3072", "rsa4096".
const char* newKeyTypeName(NewKeyType type);
// The type of such a name; an error (kInvalid) naming the accepted ones.
Result<NewKeyType> newKeyTypeFromName(const std::string& name);

// A fresh key; null (BoringSSL's error queue says why) on failure.
bssl::UniquePtr<EVP_PKEY> generatePrivateKey(NewKeyType type);

// PKCS#8 PEM ("BEGIN PRIVATE KEY"), the format every TLS server reads.
// Intermediate DER copies are wiped. Errors never contain key material.
Result<std::string> privateKeyPem(EVP_PKEY* key);

// subjectAltName entries: IP literals as iPAddress, anything else as dNSName.
bssl::UniquePtr<GENERAL_NAMES> subjectAltNames(const std::vector<std::string>& names);

}  // namespace tlsedge::certstore
