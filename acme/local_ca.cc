#include "acme/local_ca.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "certstore/self_signed.h"
#include "certstore/x509_text.h"
#include "net/tls.h"

namespace tlsedge::acme {
namespace {

std::string pemOf(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509(bio.get(), cert)) return {};
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

Error failure(const std::string& what) {
  std::string errors = net::takeSslErrors().text;
  return makeError("local CA: " + what + (errors.empty() ? std::string() : " (" + errors + ")"));
}

}  // namespace

std::string LocalCa::certificatePathIn(const certstore::Storage& storage) {
  return storage.describe(std::string(kLocalCaKey) + "/ca.pem");
}

Result<LocalCa> LocalCa::open(certstore::Storage& storage, bool* created) {
  using Secrecy = certstore::Storage::Secrecy;
  const std::string certKey = std::string(kLocalCaKey) + "/ca.pem";
  const std::string keyKey = std::string(kLocalCaKey) + "/ca.key";
  const std::string directory = storage.describe(kLocalCaKey);
  const std::string keyPath = storage.describe(keyKey);
  LocalCa ca;
  ca.certPath_ = certificatePathIn(storage);
  if (created != nullptr) *created = false;
  auto there = storage.exists(certKey);
  if (!there) return failure(there.error().message);  // never a new CA for one not read
  if (!*there) {
    uint8_t tag[4];
    RAND_bytes(tag, sizeof tag);
    char name[64];
    std::snprintf(name, sizeof name, "tlsedge local CA %02x%02x%02x%02x", tag[0], tag[1], tag[2],
                  tag[3]);
    auto made = certstore::makeCaCertificate(name, kRootDays);
    if (!made) return failure(made.error().message);
    auto keyPem = certstore::privateKeyPem(made->key.get());
    if (!keyPem) return failure(keyPem.error().message);
    const std::string certPem = pemOf(made->certificate.get());
    if (certPem.empty()) return failure("cannot encode the CA certificate");
    // Key and certificate together: never one without the other. A group
    // left without ca.pem (a crash before this was atomic) is replaced.
    std::vector<certstore::Storage::Item> items = {{"ca.key", std::move(*keyPem), Secrecy::kSecret},
                                                   {"ca.pem", certPem, Secrecy::kPublic}};
    auto written = storage.storeGroup(kLocalCaKey, items, /*replace=*/true);
    OPENSSL_cleanse(items[0].value.data(), items[0].value.size());
    if (!written.ok()) return failure(written.error().message);
    ca.cert_ = std::move(made->certificate);
    ca.key_ = std::move(made->key);
    if (created != nullptr) *created = true;
    return ca;
  }
  auto certText = storage.load(certKey);
  if (!certText) return failure(certText.error().message);
  auto keyText = storage.load(keyKey);
  if (!keyText && keyText.error().kind == ErrorKind::kNotFound) {
    return makeError("local CA: " + ca.certPath_ + " is there but not its key " + keyPath +
                     "; remove " + directory + " to make a new local CA");
  }
  if (!keyText) return failure(keyText.error().message);
  bssl::UniquePtr<BIO> certBio(BIO_new_mem_buf(certText->data(), certText->size()));
  bssl::UniquePtr<BIO> keyBio(BIO_new_mem_buf(keyText->data(), keyText->size()));
  ca.cert_.reset(certBio ? PEM_read_bio_X509(certBio.get(), nullptr, nullptr, nullptr) : nullptr);
  ca.key_.reset(keyBio ? PEM_read_bio_PrivateKey(keyBio.get(), nullptr, nullptr, nullptr)
                       : nullptr);
  OPENSSL_cleanse(keyText->data(), keyText->size());
  if (!ca.cert_) return failure("cannot read a certificate from " + ca.certPath_);
  if (!ca.key_) return failure("cannot read a private key from " + keyPath);
  if (!X509_check_private_key(ca.cert_.get(), ca.key_.get())) {
    return failure(keyPath + " is not the key of " + ca.certPath_);
  }
  if (X509_cmp_time(X509_get0_notAfter(ca.cert_.get()), nullptr) <= 0) {
    return makeError("local CA: " + ca.certPath_ + " has expired; remove " + directory +
                     " to make a new local CA (and trust its new ca.pem)");
  }
  return ca;
}

Result<LocalCa::Issued> LocalCa::issue(const std::vector<std::string>& names,
                                       certstore::NewKeyType keyType,
                                       int64_t lifetimeSeconds) const {
  bssl::UniquePtr<EVP_PKEY> key = certstore::generatePrivateKey(keyType);
  if (!key) return failure("cannot generate a key");
  auto cert =
      certstore::issueCertificate(names, key.get(), cert_.get(), key_.get(), lifetimeSeconds);
  if (!cert) return failure(cert.error().message);
  auto keyPem = certstore::privateKeyPem(key.get());
  if (!keyPem) return failure(keyPem.error().message);
  Issued out;
  out.chainPem = pemOf(cert->get());
  out.keyPem = std::move(*keyPem);
  if (out.chainPem.empty()) return failure("cannot encode the certificate");
  return out;
}

}  // namespace tlsedge::acme
