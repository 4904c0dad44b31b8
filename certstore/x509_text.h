// Certificate fields as text for Credentials and for messages. Internal to
// certstore.
//
// Thread: any (pure functions).
#pragma once

#include <openssl/base.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

namespace tlsedge::certstore {

// RFC 2253 one-line form ("CN=leaf,O=Example"); "" for an empty name.
std::string nameText(const X509_NAME* name);

// Short label for messages: "CN=..." if the subject has a common name, else
// the whole subject, else "no subject".
std::string shortName(const X509* cert);

// ASN1_TIME (UTCTime or GeneralizedTime) -> seconds since the epoch.
bool asn1ToPosix(const ASN1_TIME* time, time_t* out);

// SHA-256 of `der`, upper-case hex pairs joined by ':'.
std::string sha256Fingerprint(const uint8_t* der, size_t len);

// Upper-case hex without separators ("-" prefixed if negative).
std::string serialHex(const ASN1_INTEGER* serial);

// subjectAltName dNSName entries (lower-cased) and iPAddress entries (text).
void subjectAltNames(const X509* cert, std::vector<std::string>* dns,
                     std::vector<std::string>* ips);

}  // namespace tlsedge::certstore
