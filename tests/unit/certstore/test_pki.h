// Test helper: builds keys and certificates in memory with BoringSSL, so no
// fixture file is committed and every test states the PKI it needs.
#pragma once

#include <openssl/base.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <ctime>
#include <string>
#include <vector>

namespace tlsedge::certstore::testing {

// 2026-01-01T00:00:00Z: the fixed "now" of the validation tests.
inline constexpr time_t kNow = 1767225600;
inline constexpr time_t kDay = 86400;

enum class Alg { kP256, kP384, kP521, kRsa1024, kRsa2048, kRsa4096, kEd25519 };

bssl::UniquePtr<EVP_PKEY> makeKey(Alg alg);

struct CertSpec {
  std::string cn;                // empty: no subject CN
  std::vector<std::string> dns;  // subjectAltName dNSName
  std::vector<std::string> ips;  // subjectAltName iPAddress (text)
  time_t notBefore = kNow - 30 * kDay;
  time_t notAfter = kNow + 60 * kDay;
  bool ca = false;
};

// Signs with `issuerKey` under `issuer`'s subject; both null: self-signed.
bssl::UniquePtr<X509> makeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer = nullptr,
                               EVP_PKEY* issuerKey = nullptr);

std::string certPem(X509* cert);
std::string certDer(X509* cert);
std::string pkcs8Pem(EVP_PKEY* key);  // BEGIN PRIVATE KEY
std::string pkcs8Der(EVP_PKEY* key);
std::string traditionalPem(EVP_PKEY* key);     // BEGIN RSA PRIVATE KEY / BEGIN EC PRIVATE KEY
std::string ecParametersPem(EVP_PKEY* key);    // BEGIN EC PARAMETERS
std::string encryptedPkcs8Pem(EVP_PKEY* key);  // BEGIN ENCRYPTED PRIVATE KEY
std::string pemBlock(const std::string& label, const std::string& der);

// A root CA, an intermediate it signs, and a leaf the intermediate signs.
struct Pki {
  bssl::UniquePtr<EVP_PKEY> rootKey, interKey, leafKey;
  bssl::UniquePtr<X509> root, inter, leaf;

  static Pki make(Alg leafAlg = Alg::kP256, std::vector<std::string> dns = {"leaf.example.com"});
  // Another leaf under the same intermediate.
  bssl::UniquePtr<X509> sibling(const std::string& cn, EVP_PKEY* key) const;
};

// A unique empty directory under $TMPDIR, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace tlsedge::certstore::testing
