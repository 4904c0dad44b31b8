// Certificate signing requests for ACME finalize (RFC 8555 section 7.4): a
// fresh key per certificate (ECDSA P-256 by default; P-384, RSA 2048, 3072
// or 4096 as `acme.key_type` says). The request itself is
// certstore::makeCsr (certstore/csr.h), shared with `tlsedge cert request`.
//
// Thread: any (pure functions).
#pragma once

#include "certstore/csr.h"
#include "certstore/key_material.h"
#include "conf/config.h"

namespace tlsedge::acme {

using certstore::Csr;
using certstore::makeCsr;

// `acme.key_type` as the key generator's type.
certstore::NewKeyType csrKeyType(conf::AcmeKeyType type);

}  // namespace tlsedge::acme
