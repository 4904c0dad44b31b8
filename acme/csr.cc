#include "acme/csr.h"

namespace tlsedge::acme {

certstore::NewKeyType csrKeyType(conf::AcmeKeyType type) {
  switch (type) {
    case conf::AcmeKeyType::kEcdsaP256:
      return certstore::NewKeyType::kEcdsaP256;
    case conf::AcmeKeyType::kEcdsaP384:
      return certstore::NewKeyType::kEcdsaP384;
    case conf::AcmeKeyType::kRsa2048:
      return certstore::NewKeyType::kRsa2048;
    case conf::AcmeKeyType::kRsa3072:
      return certstore::NewKeyType::kRsa3072;
    case conf::AcmeKeyType::kRsa4096:
      return certstore::NewKeyType::kRsa4096;
  }
  return certstore::NewKeyType::kEcdsaP256;
}

}  // namespace tlsedge::acme
