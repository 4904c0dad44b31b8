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
#include "certstore/x509_text.h"

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
  std::string errors = sslErrors();
  return makeError("self-signed certificate: " + what +
                   (errors.empty() ? std::string() : " (" + errors + ")"));
}

bssl::UniquePtr<GENERAL_NAMES> altNames(const std::vector<std::string>& names) {
  bssl::UniquePtr<GENERAL_NAMES> out(sk_GENERAL_NAME_new_null());
  if (!out) return nullptr;
  for (const std::string& name : names) {
    bssl::UniquePtr<GENERAL_NAME> entry(GENERAL_NAME_new());
    if (!entry) return nullptr;
    uint8_t ip[16];
    int ipLen = inet_pton(AF_INET, name.c_str(), ip) == 1    ? 4
                : inet_pton(AF_INET6, name.c_str(), ip) == 1 ? 16
                                                             : 0;
    if (ipLen != 0) {
      bssl::UniquePtr<ASN1_OCTET_STRING> value(ASN1_OCTET_STRING_new());
      if (!value || !ASN1_OCTET_STRING_set(value.get(), ip, ipLen)) return nullptr;
      GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, value.release());
    } else {
      bssl::UniquePtr<ASN1_IA5STRING> value(ASN1_IA5STRING_new());
      if (!value || !ASN1_STRING_set(value.get(), name.data(), static_cast<int>(name.size()))) {
        return nullptr;
      }
      GENERAL_NAME_set0_value(entry.get(), GEN_DNS, value.release());
    }
    if (!bssl::PushToStack(out.get(), std::move(entry))) return nullptr;
  }
  return out;
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

bool addExtensions(X509* cert, const std::vector<std::string>& names, bool critSan) {
  bssl::UniquePtr<GENERAL_NAMES> san = altNames(names);
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

}  // namespace

Status generateSelfSigned(const std::string& certPath, const std::string& keyPath,
                          const std::vector<std::string>& names, int days) {
  if (names.empty()) return makeError("self-signed certificate: no names given");
  if (days <= 0) return makeError("self-signed certificate: validity must be at least one day");
  ERR_clear_error();

  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!ec || !key || !EC_KEY_generate_key(ec.get()) ||
      !EVP_PKEY_assign_EC_KEY(key.get(), ec.release())) {
    return failure("cannot generate an ECDSA P-256 key");
  }

  bssl::UniquePtr<X509> cert(X509_new());
  bssl::UniquePtr<X509_NAME> subject(X509_NAME_new());
  if (!cert || !subject) return failure("out of memory");
  // A name over 64 characters cannot be a CN; the SAN alone carries it.
  const bool hasCn = names[0].size() <= kMaxCommonName;
  if (hasCn && !X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                           reinterpret_cast<const uint8_t*>(names[0].data()),
                                           static_cast<int>(names[0].size()), -1, 0)) {
    return failure("cannot set the subject");
  }
  const time_t now = time(nullptr);
  if (!X509_set_version(cert.get(), X509_VERSION_3) || !setSerial(cert.get()) ||
      !X509_set_subject_name(cert.get(), subject.get()) ||
      !X509_set_issuer_name(cert.get(), subject.get()) ||
      // Backdated an hour: tolerates clients whose clocks run slightly behind.
      !ASN1_TIME_adj(X509_getm_notBefore(cert.get()), now, 0, -3600) ||
      !ASN1_TIME_adj(X509_getm_notAfter(cert.get()), now, days, 0) ||
      !X509_set_pubkey(cert.get(), key.get()) || !addExtensions(cert.get(), names, !hasCn) ||
      !X509_sign(cert.get(), key.get(), EVP_sha256())) {
    return failure("cannot build the certificate");
  }

  bssl::UniquePtr<BIO> certPem(BIO_new(BIO_s_mem()));
  if (!certPem || !PEM_write_bio_X509(certPem.get(), cert.get())) {
    return failure("cannot encode the certificate");
  }
  // PKCS#8 ("BEGIN PRIVATE KEY"), the format every TLS server reads.
  bssl::ScopedCBB cbb;
  uint8_t* der = nullptr;
  size_t derLen = 0;
  if (!CBB_init(cbb.get(), 0) || !EVP_marshal_private_key(cbb.get(), key.get()) ||
      !CBB_finish(cbb.get(), &der, &derLen)) {
    return failure("cannot encode the private key");
  }
  bssl::UniquePtr<uint8_t> derOwner(der);
  bssl::UniquePtr<BIO> keyPem(BIO_new(BIO_s_mem()));
  if (!keyPem || !PEM_write_bio(keyPem.get(), "PRIVATE KEY", "", der, static_cast<long>(derLen))) {
    return failure("cannot encode the private key");
  }
  OPENSSL_cleanse(der, derLen);

  std::string keyText = bioText(keyPem.get());
  Status written = writeFileAtomic(keyPath, keyText, 0600);
  OPENSSL_cleanse(keyText.data(), keyText.size());
  if (!written.ok()) return written;
  return writeFileAtomic(certPath, bioText(certPem.get()), 0644);
}

}  // namespace tlsedge::certstore
