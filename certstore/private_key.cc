#include "certstore/private_key.h"

#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/rsa.h>

#include <string>

#include "net/tls.h"

namespace tlsedge::certstore {
namespace {

constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 4096;
constexpr const char* kAccepted = "accepted: RSA 2048..4096 bits, ECDSA P-256 or P-384";
constexpr const char* kExpected =
    "expected '-----BEGIN PRIVATE KEY-----' (PKCS#8), '-----BEGIN RSA PRIVATE KEY-----' "
    "(PKCS#1) or '-----BEGIN EC PRIVATE KEY-----' (SEC1)";

bool isKeyLabel(const std::string& label) {
  return label == "PRIVATE KEY" || label == "RSA PRIVATE KEY" || label == "EC PRIVATE KEY" ||
         label == "ENCRYPTED PRIVATE KEY" || label == "DSA PRIVATE KEY" ||
         label == "OPENSSH PRIVATE KEY";
}

std::string curveName(int nid) {
  const char* nist = EC_curve_nid2nist(nid);
  const char* sn = OBJ_nid2sn(nid);
  if (nist != nullptr && sn != nullptr) return std::string(nist) + " (" + sn + ")";
  if (sn != nullptr) return sn;
  return "an unknown curve";
}

std::string oidName(const CBS& oid) {
  int nid = OBJ_cbs2nid(&oid);
  if (nid != NID_undef) return OBJ_nid2sn(nid);
  bssl::UniquePtr<char> text(CBS_asn1_oid_to_text(&oid));
  return text ? std::string("OID ") + text.get() : "an unknown algorithm";
}

// Names the algorithm (and curve) of a PrivateKeyInfo that BoringSSL could not
// parse (RFC 5208 section 5), so the refusal says e.g. "EC on secp256k1".
std::string describePkcs8(const std::vector<uint8_t>& der) {
  CBS cbs, info, algorithm, oid;
  uint64_t version;
  CBS_init(&cbs, der.data(), der.size());
  if (!CBS_get_asn1(&cbs, &info, CBS_ASN1_SEQUENCE) || !CBS_get_asn1_uint64(&info, &version) ||
      !CBS_get_asn1(&info, &algorithm, CBS_ASN1_SEQUENCE) ||
      !CBS_get_asn1(&algorithm, &oid, CBS_ASN1_OBJECT)) {
    return "";
  }
  std::string name = oidName(oid);
  CBS curve;
  if (OBJ_cbs2nid(&oid) == NID_X9_62_id_ecPublicKey &&
      CBS_get_asn1(&algorithm, &curve, CBS_ASN1_OBJECT)) {
    name = "ECDSA on curve " + oidName(curve);
  }
  return name;
}

// Same for SEC1 ECPrivateKey (RFC 5915 section 3): the [0] parameters.
std::string describeSec1(const std::vector<uint8_t>& der) {
  CBS cbs, key, ignored, params, curve;
  uint64_t version;
  int present = 0;
  CBS_init(&cbs, der.data(), der.size());
  if (!CBS_get_asn1(&cbs, &key, CBS_ASN1_SEQUENCE) || !CBS_get_asn1_uint64(&key, &version) ||
      !CBS_get_asn1(&key, &ignored, CBS_ASN1_OCTETSTRING) ||
      !CBS_get_optional_asn1(&key, &params, &present,
                             CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED | 0) ||
      !present || !CBS_get_asn1(&params, &curve, CBS_ASN1_OBJECT)) {
    return "";
  }
  return "ECDSA on curve " + oidName(curve);
}

Result<ParsedKey> classify(bssl::UniquePtr<EVP_PKEY> key, std::string_view source) {
  ParsedKey out;
  switch (EVP_PKEY_id(key.get())) {
    case EVP_PKEY_RSA: {
      int bits = static_cast<int>(RSA_bits(EVP_PKEY_get0_RSA(key.get())));
      if (bits < kMinRsaBits || bits > kMaxRsaBits) {
        return makeError(std::string(source) + ": unsupported key type: RSA " +
                         std::to_string(bits) + " bits (" + kAccepted + ")");
      }
      out.type = KeyType::kRsa;
      break;
    }
    case EVP_PKEY_EC: {
      int nid = EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key.get())));
      if (nid == NID_X9_62_prime256v1) {
        out.type = KeyType::kEcdsaP256;
      } else if (nid == NID_secp384r1) {
        out.type = KeyType::kEcdsaP384;
      } else {
        return makeError(std::string(source) + ": unsupported key type: ECDSA on curve " +
                         curveName(nid) + " (" + kAccepted + ")");
      }
      break;
    }
    case EVP_PKEY_ED25519:
      return makeError(std::string(source) + ": unsupported key type: Ed25519 (" + kAccepted + ")");
    default: {
      const char* sn = OBJ_nid2sn(EVP_PKEY_id(key.get()));
      return makeError(std::string(source) + ": unsupported key type: " +
                       (sn != nullptr ? sn : "unknown") + " (" + kAccepted + ")");
    }
  }
  out.key = std::move(key);
  return out;
}

}  // namespace

Result<ParsedKey> parsePrivateKey(const std::vector<PemBlock>& blocks, std::string_view source,
                                  Verify verify) {
  const std::string src(source);
  const PemBlock* found = nullptr;
  const PemBlock* params = nullptr;
  std::string labels;
  for (const PemBlock& block : blocks) {
    if (!labels.empty()) labels += ", ";
    labels += block.label;
    if (block.label == "EC PARAMETERS") params = &block;
    if (!isKeyLabel(block.label)) continue;
    if (found != nullptr) {
      return makeError(src + ": contains more than one private key (lines " +
                       std::to_string(found->line) + " and " + std::to_string(block.line) +
                       "); give exactly one");
    }
    found = &block;
  }
  if (found == nullptr) {
    return makeError(
        src + ": no private key found" +
        (labels.empty() ? std::string(" (no PEM block at all)") : " (found only: " + labels + ")") +
        "; " + kExpected);
  }
  const std::string at = src + ":" + std::to_string(found->line) + ": ";
  if (found->label == "ENCRYPTED PRIVATE KEY" || found->encrypted) {
    return makeError(at +
                     "the private key is encrypted; decrypt it first "
                     "(openssl pkey -in key.pem -out plain.pem)");
  }
  if (found->label == "DSA PRIVATE KEY") {
    return makeError(at + "unsupported key type: DSA (" + kAccepted + ")");
  }
  if (found->label == "OPENSSH PRIVATE KEY") {
    return makeError(at + "this is an OpenSSH key, not a PEM TLS key; " + kExpected);
  }

  ERR_clear_error();
  CBS cbs;
  CBS_init(&cbs, found->der.data(), found->der.size());
  bssl::UniquePtr<EVP_PKEY> key;
  std::string described;
  if (found->label == "PRIVATE KEY" && verify == Verify::kStored &&
      (key = parseStoredEcKey(found->der))) {
    CBS_skip(&cbs, CBS_len(&cbs));  // all of it: parseStoredEcKey allows no trailing data
  } else if (found->label == "PRIVATE KEY") {
    key.reset(EVP_parse_private_key(&cbs));
    if (!key) described = describePkcs8(found->der);
  } else if (found->label == "RSA PRIVATE KEY") {
    bssl::UniquePtr<RSA> rsa(RSA_parse_private_key(&cbs));
    if (rsa) {
      key.reset(EVP_PKEY_new());
      if (!key || !EVP_PKEY_assign_RSA(key.get(), rsa.release())) key.reset();
    }
  } else {  // EC PRIVATE KEY
    bssl::UniquePtr<EC_GROUP> group;
    if (params != nullptr) {
      CBS paramsCbs;
      CBS_init(&paramsCbs, params->der.data(), params->der.size());
      group.reset(EC_KEY_parse_parameters(&paramsCbs));
      if (!group) {
        ERR_clear_error();
        CBS oid;
        CBS_init(&paramsCbs, params->der.data(), params->der.size());
        std::string curve = CBS_get_asn1(&paramsCbs, &oid, CBS_ASN1_OBJECT)
                                ? oidName(oid)
                                : std::string("explicit or damaged parameters");
        return makeError(src + ":" + std::to_string(params->line) +
                         ": unsupported key type: ECDSA on curve " + curve + " (" + kAccepted +
                         ")");
      }
    }
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_parse_private_key(&cbs, group.get()));
    if (ec) {
      key.reset(EVP_PKEY_new());
      if (!key || !EVP_PKEY_assign_EC_KEY(key.get(), ec.release())) key.reset();
    } else {
      described = describeSec1(found->der);
    }
  }
  if (key && CBS_len(&cbs) != 0) {
    return makeError(at + "the '" + found->label + "' block has trailing data after the key");
  }
  if (!key) {
    // Only an algorithm or curve BoringSSL does not implement is "unsupported";
    // anything else is a damaged key and gets the library's reason.
    const net::SslErrors taken = net::takeSslErrors();
    const bool unsupported = taken.has(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM) ||
                             taken.has(ERR_LIB_EC, EC_R_UNKNOWN_GROUP);
    const std::string& errors = taken.text;
    if (unsupported && !described.empty()) {
      return makeError(at + "unsupported key type: " + described + " (" + kAccepted + ")");
    }
    return makeError(at + "the '" + found->label + "' block is not a valid private key" +
                     (errors.empty() ? std::string() : " (" + errors + ")"));
  }
  return classify(std::move(key), std::string_view(at.data(), at.size() - 2));
}

}  // namespace tlsedge::certstore
