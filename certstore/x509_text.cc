#include "certstore/x509_text.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "base/ascii.h"

namespace tlsedge::certstore {

std::string nameText(const X509_NAME* name) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

std::string shortName(const X509* cert) {
  const X509_NAME* subject = X509_get_subject_name(cert);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index >= 0) {
    const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, cn);
    if (len >= 0) {
      std::string out = "CN=" + std::string(reinterpret_cast<char*>(utf8), len);
      OPENSSL_free(utf8);
      return out;
    }
  }
  std::string all = nameText(subject);
  return all.empty() ? "no subject" : all;
}

bool asn1ToPosix(const ASN1_TIME* time, time_t* out) {
  // This BoringSSL has no ASN1_TIME_to_posix; measure the distance from the
  // epoch. Made once: ASN1_TIME_set formats it with snprintf, which cost more
  // than the rest of a date (a store start converts 4 per certificate). Only
  // read afterwards, so shared by every thread.
  static const ASN1_TIME* const epoch = ASN1_TIME_set(nullptr, 0);
  int days = 0;
  int seconds = 0;
  if (epoch == nullptr || !ASN1_TIME_diff(&days, &seconds, epoch, time)) return false;
  *out = static_cast<time_t>(days) * 86400 + seconds;
  return true;
}

namespace {

void appendHex(std::string* out, uint8_t byte) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->push_back(kHex[byte >> 4]);
  out->push_back(kHex[byte & 0xF]);
}

}  // namespace

std::string sha256Fingerprint(const uint8_t* der, size_t len) {
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(der, len, digest);
  std::string out;
  out.reserve(sizeof digest * 3);
  for (uint8_t byte : digest) {
    if (!out.empty()) out.push_back(':');
    appendHex(&out, byte);
  }
  return out;
}

std::string serialHex(const ASN1_INTEGER* serial) {
  std::string out;
  if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER) out.push_back('-');
  const uint8_t* data = ASN1_STRING_get0_data(serial);
  int len = ASN1_STRING_length(serial);
  for (int i = 0; i < len; ++i) appendHex(&out, data[i]);
  if (len == 0) out.push_back('0');
  return out;
}

void subjectAltNames(const X509* cert, std::vector<std::string>* dns,
                     std::vector<std::string>* ips) {
  bssl::UniquePtr<GENERAL_NAMES> names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return;
  for (size_t i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_IA5STRING* s = name->d.dNSName;
      std::string host(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       ASN1_STRING_length(s));
      ascii::lowerInPlace(host);
      dns->push_back(std::move(host));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN];
      int len = ASN1_STRING_length(s);
      int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
      if (family != 0 && inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text)) {
        ips->push_back(text);
      }
    }
  }
}

}  // namespace tlsedge::certstore
