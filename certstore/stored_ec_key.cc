#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>

#include "certstore/private_key.h"

namespace tlsedge::certstore {
namespace {

// DER contents of the OIDs (RFC 5480 section 2.1.1).
constexpr uint8_t kEcPublicKey[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
constexpr uint8_t kP256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr uint8_t kP384[] = {0x2b, 0x81, 0x04, 0x00, 0x22};

template <size_t N>
bool is(const CBS& oid, const uint8_t (&want)[N]) {
  return CBS_mem_equal(&oid, want, N);
}

int curveOf(const CBS& oid) {
  if (is(oid, kP256)) return NID_X9_62_prime256v1;
  if (is(oid, kP384)) return NID_secp384r1;
  return NID_undef;
}

}  // namespace

bssl::UniquePtr<EVP_PKEY> parseStoredEcKey(const std::vector<uint8_t>& der) {
  // PrivateKeyInfo (RFC 5208) holding an ECPrivateKey (RFC 5915) that
  // carries its public key, as the store writes it; anything else is left
  // to the full parser.
  CBS in, info, algorithm, oid, curve, wrapped, ec, priv, pubField, pub;
  uint64_t version = 0;
  uint8_t unusedBits = 1;
  CBS_init(&in, der.data(), der.size());
  if (!CBS_get_asn1(&in, &info, CBS_ASN1_SEQUENCE) || CBS_len(&in) != 0 ||
      !CBS_get_asn1_uint64(&info, &version) || version != 0 ||
      !CBS_get_asn1(&info, &algorithm, CBS_ASN1_SEQUENCE) ||
      !CBS_get_asn1(&algorithm, &oid, CBS_ASN1_OBJECT) || !is(oid, kEcPublicKey) ||
      !CBS_get_asn1(&algorithm, &curve, CBS_ASN1_OBJECT) || CBS_len(&algorithm) != 0 ||
      !CBS_get_asn1(&info, &wrapped, CBS_ASN1_OCTETSTRING) || CBS_len(&info) != 0 ||
      !CBS_get_asn1(&wrapped, &ec, CBS_ASN1_SEQUENCE) || CBS_len(&wrapped) != 0 ||
      !CBS_get_asn1_uint64(&ec, &version) || version != 1 ||
      !CBS_get_asn1(&ec, &priv, CBS_ASN1_OCTETSTRING)) {
    return nullptr;
  }
  constexpr unsigned kParameters = CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0;
  constexpr unsigned kPublicKey = CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 1;
  if (CBS_peek_asn1_tag(&ec, kParameters)) {
    CBS parameters, named;
    if (!CBS_get_asn1(&ec, &parameters, kParameters) ||
        !CBS_get_asn1(&parameters, &named, CBS_ASN1_OBJECT) || CBS_len(&parameters) != 0 ||
        !CBS_mem_equal(&named, CBS_data(&curve), CBS_len(&curve))) {
      return nullptr;
    }
  }
  if (!CBS_get_asn1(&ec, &pubField, kPublicKey) || CBS_len(&ec) != 0 ||
      !CBS_get_asn1(&pubField, &pub, CBS_ASN1_BITSTRING) || CBS_len(&pubField) != 0 ||
      !CBS_get_u8(&pub, &unusedBits) || unusedBits != 0) {
    return nullptr;
  }
  const int nid = curveOf(curve);
  if (nid == NID_undef) return nullptr;
  bssl::UniquePtr<EC_GROUP> group(EC_GROUP_new_by_curve_name(nid));
  bssl::UniquePtr<EC_KEY> key(EC_KEY_new());
  bssl::UniquePtr<EC_POINT> point(group ? EC_POINT_new(group.get()) : nullptr);
  bssl::UniquePtr<BIGNUM> scalar(BN_bin2bn(CBS_data(&priv), CBS_len(&priv), nullptr));
  const bool ok = key && point && scalar && EC_KEY_set_group(key.get(), group.get()) &&
                  EC_KEY_set_private_key(key.get(), scalar.get()) &&  // checks 0 < d < order
                  EC_POINT_oct2point(group.get(), point.get(), CBS_data(&pub), CBS_len(&pub),
                                     nullptr) &&  // checks the point is on the curve
                  EC_KEY_set_public_key(key.get(), point.get());
  if (scalar) BN_clear(scalar.get());
  if (!ok) return nullptr;
  bssl::UniquePtr<EVP_PKEY> out(EVP_PKEY_new());
  if (!out || !EVP_PKEY_assign_EC_KEY(out.get(), key.release())) return nullptr;
  return out;
}

}  // namespace tlsedge::certstore
