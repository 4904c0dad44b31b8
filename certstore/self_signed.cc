#include "certstore/self_signed.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "certstore/files.h"
#include "certstore/key_material.h"
#include "certstore/x509_text.h"
#include "net/tls.h"

namespace tlsedge::certstore {
namespace {

// RFC 5280 appendix A.1: ub-common-name is 64 characters.
constexpr size_t kMaxCommonName = 64;

std::string bioText(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

Error failure(const std::string& what) {
  std::string errors = net::takeSslErrors().text;
  return makeError("self-signed certificate: " + what +
                   (errors.empty() ? std::string() : " (" + errors + ")"));
}

// Serial: 16 random bytes, top bit clear so the INTEGER is positive
// (RFC 5280 section 4.1.2.2: positive, at most 20 octets, unpredictable).
bool setSerial(X509* cert) {
  uint8_t bytes[16];
  RAND_bytes(bytes, sizeof bytes);
  bytes[0] &= 0x7F;
  bytes[0] |= 0x01;  // never zero, never shorter than 16 bytes in practice
  bssl::UniquePtr<BIGNUM> bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
  bssl::UniquePtr<ASN1_INTEGER> serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  return serial && X509_set_serialNumber(cert, serial.get());
}

// subjectKeyIdentifier: SHA-1 of the certificate's subjectPublicKeyInfo
// (RFC 7093 section 2 allows any such hash).
bool addSubjectKeyId(X509* cert) {
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  bssl::UniquePtr<ASN1_OCTET_STRING> id(ASN1_OCTET_STRING_new());
  return id && X509_pubkey_digest(cert, EVP_sha1(), digest, &len) &&
         ASN1_OCTET_STRING_set(id.get(), digest, static_cast<int>(len)) &&
         X509_add1_ext_i2d(cert, NID_subject_key_identifier, id.get(), 0, X509V3_ADD_DEFAULT);
}

// authorityKeyIdentifier: the issuer's subjectKeyIdentifier (verifiers and
// ARI's certId use it to find the issuer).
bool addAuthorityKeyId(X509* cert, X509* issuer) {
  const ASN1_OCTET_STRING* issuerId = X509_get0_subject_key_id(issuer);
  if (issuerId == nullptr) return true;  // an issuer without one: nothing to point at
  bssl::UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
  if (!akid || !(akid->keyid = ASN1_OCTET_STRING_dup(issuerId))) return false;
  return X509_add1_ext_i2d(cert, NID_authority_key_identifier, akid.get(), 0, X509V3_ADD_DEFAULT);
}

// A server certificate's extensions: SAN, CA:FALSE, digitalSignature, serverAuth.
bool addServerExtensions(X509* cert, const std::vector<std::string>& names, bool critSan) {
  bssl::UniquePtr<GENERAL_NAMES> san = subjectAltNames(names);
  bssl::UniquePtr<BASIC_CONSTRAINTS> basic(BASIC_CONSTRAINTS_new());
  bssl::UniquePtr<ASN1_BIT_STRING> usage(ASN1_BIT_STRING_new());
  bssl::UniquePtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
  if (!san || !basic || !usage || !eku) return false;
  basic->ca = 0;
  return ASN1_BIT_STRING_set_bit(usage.get(), 0, 1) &&  // digitalSignature
         sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth)) &&
         // RFC 5280 section 4.2.1.6: critical when the subject is empty.
         X509_add1_ext_i2d(cert, NID_subject_alt_name, san.get(), critSan, X509V3_ADD_DEFAULT) &&
         X509_add1_ext_i2d(cert, NID_basic_constraints, basic.get(), 1, X509V3_ADD_DEFAULT) &&
         X509_add1_ext_i2d(cert, NID_key_usage, usage.get(), 1, X509V3_ADD_DEFAULT) &&
         X509_add1_ext_i2d(cert, NID_ext_key_usage, eku.get(), 0, X509V3_ADD_DEFAULT);
}

// A CA certificate's extensions: CA:TRUE with path length 0 (it signs
// server certificates only), keyCertSign and cRLSign.
bool addCaExtensions(X509* cert) {
  bssl::UniquePtr<BASIC_CONSTRAINTS> basic(BASIC_CONSTRAINTS_new());
  bssl::UniquePtr<ASN1_BIT_STRING> usage(ASN1_BIT_STRING_new());
  if (!basic || !usage) return false;
  basic->ca = 0xFF;
  basic->pathlen = ASN1_INTEGER_new();
  return basic->pathlen && ASN1_INTEGER_set(basic->pathlen, 0) &&
         ASN1_BIT_STRING_set_bit(usage.get(), 5, 1) &&  // keyCertSign
         ASN1_BIT_STRING_set_bit(usage.get(), 6, 1) &&  // cRLSign
         X509_add1_ext_i2d(cert, NID_basic_constraints, basic.get(), 1, X509V3_ADD_DEFAULT) &&
         X509_add1_ext_i2d(cert, NID_key_usage, usage.get(), 1, X509V3_ADD_DEFAULT);
}

bool addRawExtension(X509* cert, const RawExtension& raw) {
  bssl::UniquePtr<ASN1_OBJECT> oid(OBJ_txt2obj(raw.oid.c_str(), /*dont_search_names=*/1));
  bssl::UniquePtr<ASN1_OCTET_STRING> value(ASN1_OCTET_STRING_new());
  if (!oid || !value ||
      !ASN1_OCTET_STRING_set(value.get(), reinterpret_cast<const uint8_t*>(raw.der.data()),
                             static_cast<int>(raw.der.size()))) {
    return false;
  }
  bssl::UniquePtr<X509_EXTENSION> ext(
      X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), raw.critical ? 1 : 0, value.get()));
  return ext && X509_add_ext(cert, ext.get(), -1);
}

// A subject of CN = `name`, or an empty one for a name over 64 characters
// (the SAN alone carries it). Null on failure.
bssl::UniquePtr<X509_NAME> subjectName(const std::string& name) {
  bssl::UniquePtr<X509_NAME> subject(X509_NAME_new());
  if (subject && name.size() <= kMaxCommonName &&
      !X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const uint8_t*>(name.data()),
                                  static_cast<int>(name.size()), -1, 0)) {
    return nullptr;
  }
  return subject;
}

// What every certificate made here shares: version 3, a random serial,
// valid from an hour ago (clients whose clocks run slightly behind) for
// `lifetimeSeconds`, the subject's public key and subjectKeyIdentifier.
// `issuer` null: self-signed (issuer name = subject).
bssl::UniquePtr<X509> startCertificate(X509_NAME* subject, EVP_PKEY* publicKey, X509* issuer,
                                       int64_t lifetimeSeconds) {
  bssl::UniquePtr<X509> cert(X509_new());
  const time_t now = time(nullptr);
  const long days = static_cast<long>(lifetimeSeconds / 86400);
  const long seconds = static_cast<long>(lifetimeSeconds % 86400);
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3) || !setSerial(cert.get()) ||
      !X509_set_subject_name(cert.get(), subject) ||
      !X509_set_issuer_name(cert.get(),
                            issuer != nullptr ? X509_get_subject_name(issuer) : subject) ||
      !ASN1_TIME_adj(X509_getm_notBefore(cert.get()), now, 0, -3600) ||
      !ASN1_TIME_adj(X509_getm_notAfter(cert.get()), now, static_cast<int>(days), seconds) ||
      !X509_set_pubkey(cert.get(), publicKey) || !addSubjectKeyId(cert.get())) {
    return nullptr;
  }
  return cert;
}

}  // namespace

Result<SelfSigned> makeSelfSigned(const std::vector<std::string>& names, int days,
                                  const std::vector<RawExtension>& extra) {
  if (names.empty()) return makeError("self-signed certificate: no names given");
  if (days <= 0) return makeError("self-signed certificate: validity must be at least one day");
  ERR_clear_error();

  bssl::UniquePtr<EVP_PKEY> key = generatePrivateKey(NewKeyType::kEcdsaP256);
  if (!key) return failure("cannot generate an ECDSA P-256 key");
  bssl::UniquePtr<X509_NAME> subject = subjectName(names[0]);
  if (!subject) return failure("cannot set the subject");
  const bool hasCn = X509_NAME_entry_count(subject.get()) > 0;
  bssl::UniquePtr<X509> cert =
      startCertificate(subject.get(), key.get(), nullptr, int64_t{days} * 86400);
  if (!cert || !addServerExtensions(cert.get(), names, !hasCn)) {
    return failure("cannot build the certificate");
  }
  for (const RawExtension& raw : extra) {
    if (!addRawExtension(cert.get(), raw)) return failure("cannot add extension " + raw.oid);
  }
  if (!X509_sign(cert.get(), key.get(), EVP_sha256()))
    return failure("cannot sign the certificate");
  return SelfSigned{std::move(cert), std::move(key)};
}

Result<SelfSigned> makeCaCertificate(const std::string& commonName, int days) {
  if (days <= 0) return makeError("CA certificate: validity must be at least one day");
  ERR_clear_error();
  bssl::UniquePtr<EVP_PKEY> key = generatePrivateKey(NewKeyType::kEcdsaP256);
  if (!key) return failure("cannot generate an ECDSA P-256 key");
  bssl::UniquePtr<X509_NAME> subject = subjectName(commonName);
  if (!subject) return failure("cannot set the subject");
  bssl::UniquePtr<X509> cert =
      startCertificate(subject.get(), key.get(), nullptr, int64_t{days} * 86400);
  if (!cert || !addCaExtensions(cert.get()) || !X509_sign(cert.get(), key.get(), EVP_sha256())) {
    return failure("cannot build the CA certificate");
  }
  return SelfSigned{std::move(cert), std::move(key)};
}

Result<bssl::UniquePtr<X509>> issueCertificate(const std::vector<std::string>& names,
                                               EVP_PKEY* subjectKey, X509* caCert, EVP_PKEY* caKey,
                                               int64_t lifetimeSeconds) {
  if (names.empty()) return makeError("issuing a certificate: no names given");
  if (lifetimeSeconds <= 0) return makeError("issuing a certificate: lifetime must be positive");
  ERR_clear_error();
  // Names in the SAN only, as an ACME CA does: no 64-character limit.
  bssl::UniquePtr<X509_NAME> empty(X509_NAME_new());
  bssl::UniquePtr<X509> cert =
      empty ? startCertificate(empty.get(), subjectKey, caCert, lifetimeSeconds) : nullptr;
  if (!cert || !addServerExtensions(cert.get(), names, /*critSan=*/true) ||
      !addAuthorityKeyId(cert.get(), caCert) || !X509_sign(cert.get(), caKey, EVP_sha256())) {
    return failure("cannot issue the certificate");
  }
  return cert;
}

Status generateSelfSigned(const std::string& certPath, const std::string& keyPath,
                          const std::vector<std::string>& names, int days) {
  auto made = makeSelfSigned(names, days);
  if (!made) return made.error();
  X509* cert = made->certificate.get();
  EVP_PKEY* key = made->key.get();
  bssl::UniquePtr<BIO> certPem(BIO_new(BIO_s_mem()));
  if (!certPem || !PEM_write_bio_X509(certPem.get(), cert)) {
    return failure("cannot encode the certificate");
  }
  auto keyPem = privateKeyPem(key);
  if (!keyPem) return failure(keyPem.error().message);
  std::string keyText = std::move(*keyPem);
  Status written = writeFileAtomic(keyPath, keyText, 0600);
  OPENSSL_cleanse(keyText.data(), keyText.size());
  if (!written.ok()) return written;
  return writeFileAtomic(certPath, bioText(certPem.get()), 0644);
}

}  // namespace tlsedge::certstore
