#include "acme/revocation.h"

#include <openssl/bio.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <strings.h>

#include <cstdlib>

namespace tlsedge::acme {
namespace {

struct Reason {
  const char* name;
  int code;
};
// RFC 5280 section 5.3.1; the CA may refuse the others from a subscriber.
constexpr Reason kReasons[] = {{"unspecified", 0},
                               {"keyCompromise", 1},
                               {"affiliationChanged", 3},
                               {"superseded", 4},
                               {"cessationOfOperation", 5}};

}  // namespace

Result<std::string> firstCertificateDer(const std::string& chainPem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(chainPem.data(), static_cast<int>(chainPem.size())));
  bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return makeError("the stored certificate does not parse");
  uint8_t* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return makeError("the stored certificate does not encode");
  bssl::UniquePtr<uint8_t> owned(der);
  return std::string(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
}

Result<int> parseRevocationReason(const std::string& text) {
  std::string names;
  for (const Reason& r : kReasons) {
    if (strcasecmp(text.c_str(), r.name) == 0) return r.code;
    names +=
        (names.empty() ? "" : ", ") + std::string(r.name) + " (" + std::to_string(r.code) + ")";
  }
  char* end = nullptr;
  const long code = std::strtol(text.c_str(), &end, 10);
  if (!text.empty() && *end == '\0' && code >= 0 && code <= 10 && code != 7) {
    return static_cast<int>(code);
  }
  return makeError("revocation reason `" + text + "`: must be 0..10 except 7, or one of " + names);
}

}  // namespace tlsedge::acme
