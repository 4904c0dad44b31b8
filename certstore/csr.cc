#include "certstore/csr.h"

#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace tlsedge::certstore {

Result<Csr> makeCsr(const std::vector<std::string>& names, NewKeyType keyType) {
  if (names.empty()) return makeError("CSR: no names");
  bssl::UniquePtr<EVP_PKEY> key = generatePrivateKey(keyType);
  if (!key) return makeError("CSR: cannot generate the certificate key");
  bssl::UniquePtr<X509_REQ> req(X509_REQ_new());
  bssl::UniquePtr<GENERAL_NAMES> san = subjectAltNames(names);
  bssl::UniquePtr<STACK_OF(X509_EXTENSION)> extensions(sk_X509_EXTENSION_new_null());
  if (!req || !san || !extensions) return makeError("CSR: out of memory");
  bssl::UniquePtr<X509_EXTENSION> sanExtension(
      X509V3_EXT_i2d(NID_subject_alt_name, /*crit=*/1, san.get()));  // critical: empty subject
  if (!sanExtension || !bssl::PushToStack(extensions.get(), std::move(sanExtension)) ||
      !X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) ||
      !X509_REQ_add_extensions(req.get(), extensions.get()) ||
      !X509_REQ_set_pubkey(req.get(), key.get()) ||
      !X509_REQ_sign(req.get(), key.get(), EVP_sha256())) {
    return makeError("CSR: cannot build the request");
  }
  uint8_t* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  if (len <= 0) return makeError("CSR: cannot encode the request");
  bssl::UniquePtr<uint8_t> owner(der);
  auto keyPem = privateKeyPem(key.get());
  if (!keyPem) return makeError("CSR: " + keyPem.error().message);
  return Csr{std::string(reinterpret_cast<const char*>(der), static_cast<size_t>(len)),
             std::move(*keyPem)};
}

}  // namespace tlsedge::certstore
