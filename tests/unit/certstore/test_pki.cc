#include "test_pki.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/cipher.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace tlsedge::certstore::testing {
namespace {

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

std::string bioText(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio, &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

bssl::UniquePtr<EVP_PKEY> ecKey(int nid) {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(nid));
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  check(
      ec && key && EC_KEY_generate_key(ec.get()) && EVP_PKEY_assign_EC_KEY(key.get(), ec.release()),
      "EC key");
  return key;
}

bssl::UniquePtr<EVP_PKEY> rsaKey(int bits) {
  bssl::UniquePtr<RSA> rsa(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  check(rsa && e && key && BN_set_word(e.get(), RSA_F4) &&
            RSA_generate_key_ex(rsa.get(), bits, e.get(), nullptr) &&
            EVP_PKEY_assign_RSA(key.get(), rsa.release()),
        "RSA key");
  return key;
}

void addExt(X509* cert, int nid, void* value, int critical) {
  check(X509_add1_ext_i2d(cert, nid, value, critical, X509V3_ADD_DEFAULT), "extension");
}

}  // namespace

bssl::UniquePtr<EVP_PKEY> makeKey(Alg alg) {
  switch (alg) {
    case Alg::kP256:
      return ecKey(NID_X9_62_prime256v1);
    case Alg::kP384:
      return ecKey(NID_secp384r1);
    case Alg::kP521:
      return ecKey(NID_secp521r1);
    case Alg::kRsa1024:
      return rsaKey(1024);
    case Alg::kRsa2048:
      return rsaKey(2048);
    case Alg::kRsa4096:
      return rsaKey(4096);
    case Alg::kEd25519: {
      bssl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
      EVP_PKEY* raw = nullptr;
      check(ctx && EVP_PKEY_keygen_init(ctx.get()) && EVP_PKEY_keygen(ctx.get(), &raw), "Ed25519");
      return bssl::UniquePtr<EVP_PKEY>(raw);
    }
  }
  return nullptr;
}

bssl::UniquePtr<X509> makeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer,
                               EVP_PKEY* issuerKey) {
  static long serial = 1000;
  bssl::UniquePtr<X509> cert(X509_new());
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  check(cert && name && X509_set_version(cert.get(), X509_VERSION_3), "X509_new");
  if (!spec.cn.empty()) {
    check(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                     reinterpret_cast<const uint8_t*>(spec.cn.data()),
                                     static_cast<int>(spec.cn.size()), -1, 0),
          "CN");
  }
  check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial) &&
            X509_set_subject_name(cert.get(), name.get()) &&
            X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name.get()) &&
            ASN1_TIME_set(X509_getm_notBefore(cert.get()), spec.notBefore) &&
            ASN1_TIME_set(X509_getm_notAfter(cert.get()), spec.notAfter) &&
            X509_set_pubkey(cert.get(), key),
        "fields");

  bssl::UniquePtr<BASIC_CONSTRAINTS> basic(BASIC_CONSTRAINTS_new());
  check(basic != nullptr, "basicConstraints");
  basic->ca = spec.ca ? 0xFF : 0;
  addExt(cert.get(), NID_basic_constraints, basic.get(), 1);
  if (!spec.dns.empty() || !spec.ips.empty()) {
    bssl::UniquePtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
    for (const std::string& dns : spec.dns) {
      bssl::UniquePtr<GENERAL_NAME> entry(GENERAL_NAME_new());
      bssl::UniquePtr<ASN1_STRING> value(ASN1_IA5STRING_new());
      check(
          entry && value && ASN1_STRING_set(value.get(), dns.data(), static_cast<int>(dns.size())),
          "dNSName");
      GENERAL_NAME_set0_value(entry.get(), GEN_DNS, value.release());
      check(bssl::PushToStack(names.get(), std::move(entry)), "push");
    }
    for (const std::string& ip : spec.ips) {
      uint8_t bytes[16];
      int len = inet_pton(AF_INET, ip.c_str(), bytes) == 1 ? 4 : 16;
      if (len == 16) check(inet_pton(AF_INET6, ip.c_str(), bytes) == 1, "IP literal");
      bssl::UniquePtr<GENERAL_NAME> entry(GENERAL_NAME_new());
      bssl::UniquePtr<ASN1_STRING> value(ASN1_OCTET_STRING_new());
      check(entry && value && ASN1_OCTET_STRING_set(value.get(), bytes, len), "iPAddress");
      GENERAL_NAME_set0_value(entry.get(), GEN_IPADD, value.release());
      check(bssl::PushToStack(names.get(), std::move(entry)), "push");
    }
    addExt(cert.get(), NID_subject_alt_name, names.get(), 0);
  }
  EVP_PKEY* signer = issuerKey ? issuerKey : key;
  // Ed25519 signs without a separate digest.
  const EVP_MD* md = EVP_PKEY_id(signer) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  check(X509_sign(cert.get(), signer, md) > 0, "sign");
  return cert;
}

std::string certPem(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio_X509(bio.get(), cert), "cert PEM");
  return bioText(bio.get());
}

std::string certDer(X509* cert) {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  check(len > 0, "cert DER");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string pkcs8Der(EVP_PKEY* key) {
  bssl::ScopedCBB cbb;
  uint8_t* der = nullptr;
  size_t len = 0;
  check(CBB_init(cbb.get(), 0) && EVP_marshal_private_key(cbb.get(), key) &&
            CBB_finish(cbb.get(), &der, &len),
        "PKCS#8");
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return out;
}

std::string pemBlock(const std::string& label, const std::string& der) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  check(bio && PEM_write_bio(bio.get(), label.c_str(), "",
                             reinterpret_cast<const uint8_t*>(der.data()),
                             static_cast<long>(der.size())),
        "PEM block");
  return bioText(bio.get());
}

std::string pkcs8Pem(EVP_PKEY* key) { return pemBlock("PRIVATE KEY", pkcs8Der(key)); }

std::string traditionalPem(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "BIO");
  if (EVP_PKEY_id(key) == EVP_PKEY_RSA) {
    check(PEM_write_bio_RSAPrivateKey(bio.get(), EVP_PKEY_get0_RSA(key), nullptr, nullptr, 0,
                                      nullptr, nullptr),
          "PKCS#1");
  } else {
    check(PEM_write_bio_ECPrivateKey(bio.get(), EVP_PKEY_get0_EC_KEY(key), nullptr, nullptr, 0,
                                     nullptr, nullptr),
          "SEC1");
  }
  return bioText(bio.get());
}

std::string ecParametersPem(EVP_PKEY* key) {
  bssl::ScopedCBB cbb;
  uint8_t* der = nullptr;
  size_t len = 0;
  check(CBB_init(cbb.get(), 0) &&
            EC_KEY_marshal_curve_name(cbb.get(), EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key))) &&
            CBB_finish(cbb.get(), &der, &len),
        "EC PARAMETERS");
  std::string out(reinterpret_cast<char*>(der), len);
  OPENSSL_free(der);
  return pemBlock("EC PARAMETERS", out);
}

std::string encryptedPkcs8Pem(EVP_PKEY* key) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  static const char kPassword[] = "secret";
  check(bio && PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_128_cbc(),
                                             const_cast<char*>(kPassword), 6, nullptr, nullptr),
        "encrypted PKCS#8");
  return bioText(bio.get());
}

Pki Pki::make(Alg leafAlg, std::vector<std::string> dns) {
  Pki p;
  p.rootKey = makeKey(Alg::kP256);
  p.interKey = makeKey(Alg::kP256);
  p.leafKey = makeKey(leafAlg);
  CertSpec root{"Root CA", {}, {}, kNow - 3650 * kDay, kNow + 3650 * kDay, true};
  CertSpec inter{"Intermediate", {}, {}, kNow - 365 * kDay, kNow + 365 * kDay, true};
  CertSpec leaf{dns.empty() ? "leaf" : dns[0], dns, {}};
  p.root = makeCert(root, p.rootKey.get());
  p.inter = makeCert(inter, p.interKey.get(), p.root.get(), p.rootKey.get());
  p.leaf = makeCert(leaf, p.leafKey.get(), p.inter.get(), p.interKey.get());
  return p;
}

bssl::UniquePtr<X509> Pki::sibling(const std::string& cn, EVP_PKEY* key) const {
  return makeCert(CertSpec{cn, {cn}, {}}, key, inter.get(), interKey.get());
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/tlsedge-certstore-XXXXXX";
  check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace tlsedge::certstore::testing
