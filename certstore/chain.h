// Chain ordering and link checking. Internal to certstore.
//
// Thread: any (pure function).
#pragma once

#include <openssl/base.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tlsedge::certstore {

struct ChainCert {
  bssl::UniquePtr<CRYPTO_BUFFER> der;
  bssl::UniquePtr<X509> x509;  // parsed from `der`
  int position = 0;            // 1-based place in the file as given
};

// Upper bound on certificates in one chain file; real chains have 2 to 4.
inline constexpr size_t kMaxChainCertificates = 16;

// Puts `certs` (given in any order) into serving order leaf -> intermediates.
// The leaf is the certificate that issues no other in the set and whose
// public key matches `key`. A link is the issuer name matching the next
// certificate's subject plus a signature that verifies with its key. A
// self-signed root at the end is dropped, duplicates are dropped, and a
// reordering is reported; all three as lines in `notes`. Refuses (naming the
// certificate, "chain: certificate 2 of 3 (CN=...)") a key that matches no
// leaf and a chain with a certificate whose issuer is missing while others
// are left over. `certs` has at least one entry.
// With `checkSignatures` false a link is the name match alone (material that
// CertificateStore::add verified; see Verify in credentials.h).
Status orderChain(std::vector<ChainCert>* certs, EVP_PKEY* key, std::string_view chainSource,
                  std::string_view keySource, std::vector<std::string>* notes,
                  bool checkSignatures = true);

// "chain: certificate 2 of 3 (CN=Intermediate)"; without the "chain: " prefix
// when `source` is empty.
std::string certLabel(std::string_view source, const ChainCert& cert, size_t total);

}  // namespace tlsedge::certstore
