#include "certstore/key_material.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <utility>

namespace tlsedge::certstore {

namespace {
constexpr std::pair<const char*, NewKeyType> kKeyTypeNames[] = {
    {"ecdsa-p256", NewKeyType::kEcdsaP256},
    {"ecdsa-p384", NewKeyType::kEcdsaP384},
    {"rsa2048", NewKeyType::kRsa2048},
    {"rsa3072", NewKeyType::kRsa3072},
    {"rsa4096", NewKeyType::kRsa4096}};
}  // namespace

const char* newKeyTypeName(NewKeyType type) {
  for (const auto& [name, value] : kKeyTypeNames) {
    if (value == type) return name;
  }
  return "ecdsa-p256";
}

Result<NewKeyType> newKeyTypeFromName(const std::string& name) {
  for (const auto& [text, value] : kKeyTypeNames) {
    if (name == text) return value;
  }
  return makeError(
      "key type `" + name + "`: must be ecdsa-p256, ecdsa-p384, rsa2048, rsa3072 or rsa4096",
      ErrorKind::kInvalid);
}

bssl::UniquePtr<EVP_PKEY> generatePrivateKey(NewKeyType type) {
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!key) return nullptr;
  if (type == NewKeyType::kEcdsaP256 || type == NewKeyType::kEcdsaP384) {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(
        type == NewKeyType::kEcdsaP256 ? NID_X9_62_prime256v1 : NID_secp384r1));
    if (!ec || !EC_KEY_generate_key(ec.get()) || !EVP_PKEY_assign_EC_KEY(key.get(), ec.release())) {
      return nullptr;
    }
    return key;
  }
  const int bits = type == NewKeyType::kRsa4096 ? 4096 : type == NewKeyType::kRsa3072 ? 3072 : 2048;
  bssl::UniquePtr<RSA> rsa(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  if (!rsa || !e || !BN_set_word(e.get(), RSA_F4) ||
      !RSA_generate_key_ex(rsa.get(), bits, e.get(), nullptr) ||
      !EVP_PKEY_assign_RSA(key.get(), rsa.release())) {
    return nullptr;
  }
  return key;
}

Result<std::string> privateKeyPem(EVP_PKEY* key) {
  bssl::ScopedCBB cbb;
  uint8_t* der = nullptr;
  size_t derLen = 0;
  if (!CBB_init(cbb.get(), 0) || !EVP_marshal_private_key(cbb.get(), key) ||
      !CBB_finish(cbb.get(), &der, &derLen)) {
    return makeError("cannot encode the private key");
  }
  bssl::UniquePtr<uint8_t> derOwner(der);
  bssl::UniquePtr<BIO> pem(BIO_new(BIO_s_mem()));
  bool written =
      pem && PEM_write_bio(pem.get(), "PRIVATE KEY", "", der, static_cast<long>(derLen)) > 0;
  OPENSSL_cleanse(der, derLen);
  if (!written) return makeError("cannot encode the private key");
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(pem.get(), &data, &len);
  std::string text(reinterpret_cast<const char*>(data), len);
  OPENSSL_cleanse(const_cast<uint8_t*>(data), len);
  return text;
}

bssl::UniquePtr<GENERAL_NAMES> subjectAltNames(const std::vector<std::string>& names) {
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

}  // namespace tlsedge::certstore
