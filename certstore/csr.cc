#include "certstore/csr.h"

#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace tlsedge::certstore {

namespace {

// "/C=DE/O=Example GmbH/CN=shop.example" (as `openssl req -subj` takes it)
// as an X509_NAME; an error naming the part that is wrong.
Result<bssl::UniquePtr<X509_NAME>> parseSubject(const std::string& subject) {
  auto bad = [&](const std::string& why) {
    return makeError("subject `" + subject + "`: " + why +
                         " (expected /KEY=VALUE/..., e.g. /C=DE/O=Example GmbH/CN=shop.example)",
                     ErrorKind::kInvalid);
  };
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (!name) return makeError("CSR: out of memory");
  if (subject.empty() || subject[0] != '/') return bad("does not start with '/'");
  size_t start = 1;
  while (start <= subject.size()) {
    size_t end = subject.find('/', start);
    if (end == std::string::npos) end = subject.size();
    const std::string part = subject.substr(start, end - start);
    const size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == part.size()) {
      return bad("`" + part + "` is not KEY=VALUE");
    }
    const std::string key = part.substr(0, eq);
    const std::string value = part.substr(eq + 1);
    if (!X509_NAME_add_entry_by_txt(name.get(), key.c_str(), MBSTRING_UTF8,
                                    reinterpret_cast<const uint8_t*>(value.data()),
                                    static_cast<int>(value.size()), -1, 0)) {
      ERR_clear_error();
      return bad("`" + part + "`: unknown attribute or value too long");
    }
    start = end + 1;
  }
  return name;
}

}  // namespace

Result<Csr> makeCsr(const std::vector<std::string>& names, NewKeyType keyType,
                    const std::string& subject) {
  if (names.empty()) return makeError("CSR: no names");
  bssl::UniquePtr<X509_NAME> subjectName;
  if (!subject.empty()) {
    auto parsed = parseSubject(subject);
    if (!parsed.ok()) return parsed.error();
    subjectName = std::move(*parsed);
  }
  bssl::UniquePtr<EVP_PKEY> key = generatePrivateKey(keyType);
  if (!key) return makeError("CSR: cannot generate the certificate key");
  bssl::UniquePtr<X509_REQ> req(X509_REQ_new());
  bssl::UniquePtr<GENERAL_NAMES> san = subjectAltNames(names);
  bssl::UniquePtr<STACK_OF(X509_EXTENSION)> extensions(sk_X509_EXTENSION_new_null());
  if (!req || !san || !extensions) return makeError("CSR: out of memory");
  // Critical when the subject is empty (RFC 5280 section 4.2.1.6).
  bssl::UniquePtr<X509_EXTENSION> sanExtension(
      X509V3_EXT_i2d(NID_subject_alt_name, /*crit=*/subjectName ? 0 : 1, san.get()));
  if (!sanExtension || !bssl::PushToStack(extensions.get(), std::move(sanExtension)) ||
      !X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) ||
      (subjectName && !X509_REQ_set_subject_name(req.get(), subjectName.get())) ||
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
