#include "net/tls_roots.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "net/tls.h"

namespace tlsedge::net {

Result<std::vector<bssl::UniquePtr<X509>>> parseCertificates(const std::string& pem,
                                                             const std::string& source) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  std::vector<bssl::UniquePtr<X509>> certs;
  for (;;) {
    ERR_clear_error();
    bssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      uint32_t code = ERR_peek_last_error();
      if (ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE) {
        ERR_clear_error();  // the end of the input
        break;
      }
      return makeError(source + ": certificate " + std::to_string(certs.size() + 1) +
                       " cannot be parsed: " + drainSslErrors());
    }
    certs.push_back(std::move(cert));
  }
  if (certs.empty()) {
    return makeError(source +
                     ": no certificate found (expected PEM '-----BEGIN CERTIFICATE-----')");
  }
  return certs;
}

Status addCertificates(X509_STORE* store, const std::string& pem, const std::string& source) {
  auto certs = parseCertificates(pem, source);
  if (!certs) return certs.error();
  for (size_t i = 0; i < certs->size(); ++i) {
    ERR_clear_error();
    if (!X509_STORE_add_cert(store, (*certs)[i].get())) {
      return makeError(source + ": certificate " + std::to_string(i + 1) +
                       " cannot be added: " + drainSslErrors());
    }
  }
  return Ok{};
}

}  // namespace tlsedge::net
