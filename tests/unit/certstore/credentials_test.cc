// parseCredentials: accepted formats, every refusal's message, and the
// fields of a good result.
#include "certstore/credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/pool.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstring>

#include "certstore/private_key.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using testing::Alg;
using ::testing::AllOf;
using testing::CertSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kDay;
using testing::kNow;
using ::testing::Not;
using testing::Pki;

Result<CredentialsPtr> parse(const std::string& chain, const std::string& key, time_t now = kNow) {
  return parseCredentials("test", chain, key, sharedBufferPool(), now);
}

std::string errorOf(const Result<CredentialsPtr>& r) {
  return r.ok() ? std::string("<ok>") : r.error().message;
}

std::string bufferBytes(const CRYPTO_BUFFER* b) {
  return std::string(reinterpret_cast<const char*>(CRYPTO_BUFFER_data(b)), CRYPTO_BUFFER_len(b));
}

TEST(ParseCredentials, FillsEveryField) {
  Pki pki = Pki::make(Alg::kP256, {});
  CertSpec spec{
      "Leaf.Example.com", {"Leaf.Example.com", "*.Example.com"}, {"192.0.2.1", "2001:db8::1"}};
  spec.notBefore = kNow - 10 * kDay;
  spec.notAfter = kNow + 80 * kDay;
  auto leaf = testing::makeCert(spec, pki.leafKey.get(), pki.inter.get(), pki.interKey.get());

  auto r = parse(testing::certPem(leaf.get()) + testing::certPem(pki.inter.get()),
                 testing::pkcs8Pem(pki.leafKey.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  const Credentials& c = **r;
  EXPECT_EQ(c.name, "test");
  ASSERT_EQ(c.chain.size(), 2u);
  EXPECT_EQ(bufferBytes(c.chain[0].get()), testing::certDer(leaf.get()));
  EXPECT_EQ(bufferBytes(c.chain[1].get()), testing::certDer(pki.inter.get()));
  EXPECT_EQ(c.keyType, KeyType::kEcdsaP256);
  ASSERT_TRUE(c.key);
  EXPECT_THAT(c.dnsNames, ElementsAre("leaf.example.com", "*.example.com"));
  EXPECT_THAT(c.ipAddresses, ElementsAre("192.0.2.1", "2001:db8::1"));
  EXPECT_EQ(c.notBefore, kNow - 10 * kDay);
  EXPECT_EQ(c.notAfter, kNow + 80 * kDay);
  EXPECT_EQ(c.subject, "CN=Leaf.Example.com");
  EXPECT_EQ(c.issuer, "CN=Intermediate");
  EXPECT_TRUE(c.notes.empty());

  // Serial: upper-case hex of the INTEGER's bytes, as `openssl x509 -serial` prints it.
  long serial = ASN1_INTEGER_get(X509_get0_serialNumber(leaf.get()));
  char hex[32];
  std::snprintf(hex, sizeof hex, "%lX", serial);
  EXPECT_EQ(c.serialHex, (std::strlen(hex) % 2 ? "0" : "") + std::string(hex));

  std::string der = testing::certDer(leaf.get());
  uint8_t digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const uint8_t*>(der.data()), der.size(), digest);
  char first[4];
  std::snprintf(first, sizeof first, "%02X:", digest[0]);
  EXPECT_EQ(c.sha256Fingerprint.size(), 32u * 3 - 1);
  EXPECT_EQ(c.sha256Fingerprint.substr(0, 3), first);
  EXPECT_THAT(c.sha256Fingerprint, Not(HasSubstr("a")));  // upper-case
}

struct KeyFormatCase {
  const char* name;
  Alg alg;
  bool pkcs8;
  KeyType expected;
};

class AcceptedKeys : public ::testing::TestWithParam<KeyFormatCase> {};

TEST_P(AcceptedKeys, Parse) {
  const KeyFormatCase& param = GetParam();
  Pki pki = Pki::make(param.alg);
  std::string key = param.pkcs8 ? testing::pkcs8Pem(pki.leafKey.get())
                                : testing::traditionalPem(pki.leafKey.get());
  auto r = parse(testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get()), key);
  ASSERT_TRUE(r.ok()) << errorOf(r);
  EXPECT_EQ((*r)->keyType, param.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, AcceptedKeys,
    ::testing::Values(KeyFormatCase{"P256Pkcs8", Alg::kP256, true, KeyType::kEcdsaP256},
                      KeyFormatCase{"P256Sec1", Alg::kP256, false, KeyType::kEcdsaP256},
                      KeyFormatCase{"P384Pkcs8", Alg::kP384, true, KeyType::kEcdsaP384},
                      KeyFormatCase{"P384Sec1", Alg::kP384, false, KeyType::kEcdsaP384},
                      KeyFormatCase{"Rsa2048Pkcs1", Alg::kRsa2048, false, KeyType::kRsa},
                      KeyFormatCase{"Rsa2048Pkcs8", Alg::kRsa2048, true, KeyType::kRsa},
                      KeyFormatCase{"Rsa4096Pkcs1", Alg::kRsa4096, false, KeyType::kRsa}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(ParseCredentials, AcceptsSec1PrecededByEcParameters) {
  Pki pki = Pki::make(Alg::kP384);
  auto r = parse(testing::certPem(pki.leaf.get()), testing::ecParametersPem(pki.leafKey.get()) +
                                                       testing::traditionalPem(pki.leafKey.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  EXPECT_EQ((*r)->keyType, KeyType::kEcdsaP384);
}

TEST(ParseCredentials, RefusesUnsupportedKeyTypes) {
  for (auto [alg, expected] :
       {std::pair{Alg::kRsa1024, "RSA 1024 bits"}, std::pair{Alg::kP521, "ECDSA on curve P-521"},
        std::pair{Alg::kEd25519, "Ed25519"}}) {
    auto key = testing::makeKey(alg);
    auto leaf = testing::makeCert(CertSpec{"leaf", {"leaf"}, {}}, key.get());
    auto r = parse(testing::certPem(leaf.get()), testing::pkcs8Pem(key.get()));
    EXPECT_THAT(errorOf(r), AllOf(HasSubstr("key:1: unsupported key type: "), HasSubstr(expected),
                                  HasSubstr("accepted: RSA 2048..4096")));
  }
}

TEST(ParseCredentials, NamesACurveBoringSslDoesNotKnow) {
  // PrivateKeyInfo for id-ecPublicKey on secp256k1 (RFC 5208 / RFC 5480).
  static const uint8_t kDer[] = {0x30, 0x1a, 0x02, 0x01, 0x00, 0x30, 0x10, 0x06, 0x07, 0x2a,
                                 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81,
                                 0x04, 0x00, 0x0a, 0x04, 0x03, 0x30, 0x01, 0x00};
  Pki pki = Pki::make();
  auto r = parse(testing::certPem(pki.leaf.get()),
                 testing::pemBlock("PRIVATE KEY",
                                   std::string(reinterpret_cast<const char*>(kDer), sizeof kDer)));
  EXPECT_THAT(errorOf(r), HasSubstr("unsupported key type: ECDSA on curve secp256k1"));
}

TEST(ParseCredentials, RefusesEncryptedKeysWithoutTryingToDecrypt) {
  Pki pki = Pki::make();
  const std::string chain = testing::certPem(pki.leaf.get());
  const char* kAdvice =
      "the private key is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)";
  EXPECT_THAT(errorOf(parse(chain, testing::encryptedPkcs8Pem(pki.leafKey.get()))),
              HasSubstr(kAdvice));
  // Legacy OpenSSL encryption (RFC 1421 headers).
  const std::string legacy =
      "-----BEGIN EC PRIVATE KEY-----\n"
      "Proc-Type: 4,ENCRYPTED\n"
      "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n"
      "\n"
      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
      "-----END EC PRIVATE KEY-----\n";
  EXPECT_THAT(errorOf(parse(chain, legacy)), HasSubstr(kAdvice));
}

TEST(ParseCredentials, DetectsDerWherePemIsExpected) {
  Pki pki = Pki::make();
  EXPECT_THAT(
      errorOf(parse(testing::certDer(pki.leaf.get()), testing::pkcs8Pem(pki.leafKey.get()))),
      AllOf(HasSubstr("chain: looks like binary DER, not PEM (first byte 0x30)"),
            HasSubstr("openssl x509 -inform der")));
  EXPECT_THAT(
      errorOf(parse(testing::certPem(pki.leaf.get()), testing::pkcs8Der(pki.leafKey.get()))),
      AllOf(HasSubstr("key: looks like binary DER"), HasSubstr("openssl pkey -inform der")));
}

TEST(ParseCredentials, ReportsAMissingEndLine) {
  Pki pki = Pki::make();
  std::string chain = testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get());
  chain.resize(chain.rfind("-----END"));  // truncated paste
  int beginLine = 1;
  for (char c : chain.substr(0, chain.rfind("-----BEGIN"))) beginLine += c == '\n';
  EXPECT_THAT(errorOf(parse(chain, testing::pkcs8Pem(pki.leafKey.get()))),
              AllOf(HasSubstr("chain:" + std::to_string(beginLine) + ": PEM syntax error"),
                    HasSubstr("missing END line")));
}

TEST(ParseCredentials, ReportsPemSyntaxErrors) {
  Pki pki = Pki::make();
  const std::string key = testing::pkcs8Pem(pki.leafKey.get());
  std::string damaged = testing::certPem(pki.leaf.get());
  damaged[40] = '!';
  EXPECT_THAT(errorOf(parse(damaged, key)),
              AllOf(HasSubstr("chain:1: PEM syntax error"), HasSubstr("damaged")));

  std::string mismatched = testing::certPem(pki.leaf.get());
  mismatched.replace(mismatched.find("END CERTIFICATE"), 15, "END PRIVATE KEY");
  EXPECT_THAT(errorOf(parse(mismatched, key)),
              AllOf(HasSubstr("PEM syntax error"), HasSubstr("does not close")));

  EXPECT_THAT(errorOf(parse("-----END CERTIFICATE-----\n", key)),
              HasSubstr("without a matching BEGIN line"));
}

TEST(ParseCredentials, ReportsNoCertificateAndNoKey) {
  Pki pki = Pki::make();
  const std::string key = testing::pkcs8Pem(pki.leafKey.get());
  const std::string chain = testing::certPem(pki.leaf.get());
  EXPECT_THAT(errorOf(parse("", key)), HasSubstr("chain: no certificate found"));
  EXPECT_THAT(errorOf(parse(key, key)),
              AllOf(HasSubstr("chain: no certificate found"), HasSubstr("found only PRIVATE KEY")));
  EXPECT_THAT(errorOf(parse(chain, chain)),
              AllOf(HasSubstr("key: no private key found"), HasSubstr("found only: CERTIFICATE")));
  EXPECT_THAT(errorOf(parse(chain, key + key)), HasSubstr("more than one private key"));
}

TEST(ParseCredentials, ReportsChainAndKeyProblemsTogether) {
  std::string message = errorOf(parse("garbage", "garbage"));
  EXPECT_THAT(message,
              AllOf(HasSubstr("chain: no certificate"), HasSubstr("\nkey: no private key")));
}

TEST(ParseCredentials, RefusesAKeyThatDoesNotMatchTheLeaf) {
  Pki pki = Pki::make();
  auto other = testing::makeKey(Alg::kP256);
  const std::string chain = testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get());
  const std::string key = testing::pkcs8Pem(other.get());
  std::string message = errorOf(parse(chain, key));
  EXPECT_THAT(message, AllOf(HasSubstr("key: the private key does not match the leaf certificate"),
                             HasSubstr("chain: certificate 1 of 2 (CN=leaf.example.com)")));
  // Never any key material in a message.
  std::string body = key.substr(key.find('\n') + 1, 40);
  EXPECT_THAT(message, Not(HasSubstr(body)));

  EXPECT_THAT(errorOf(parse(chain, testing::pkcs8Pem(pki.interKey.get()))),
              HasSubstr("belongs to chain: certificate 2 of 2 (CN=Intermediate)"));
}

TEST(ParseCredentials, OrdersAShuffledChainAndDropsTheRoot) {
  Pki pki = Pki::make();
  // Given: intermediate, root, leaf.
  auto r = parse(testing::certPem(pki.inter.get()) + testing::certPem(pki.root.get()) +
                     testing::certPem(pki.leaf.get()),
                 testing::pkcs8Pem(pki.leafKey.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  const Credentials& c = **r;
  ASSERT_EQ(c.chain.size(), 2u);
  EXPECT_EQ(bufferBytes(c.chain[0].get()), testing::certDer(pki.leaf.get()));
  EXPECT_EQ(bufferBytes(c.chain[1].get()), testing::certDer(pki.inter.get()));
  EXPECT_EQ(c.subject, "CN=leaf.example.com");
  EXPECT_THAT(c.notes,
              ElementsAre("chain: dropped the self-signed root certificate 2 of 3 "
                          "(CN=Root CA): clients have it in their trust store",
                          "chain: reordered to leaf -> intermediates (certificates 3, 1)"));
}

TEST(ParseCredentials, OrdersAFourCertificateChain) {
  Pki pki = Pki::make();
  auto key2 = testing::makeKey(Alg::kP256);
  // leaf <- inter <- inter2 <- root
  auto inter2 =
      testing::makeCert(CertSpec{"Intermediate 2", {}, {}, kNow - kDay, kNow + kDay, true},
                        key2.get(), pki.root.get(), pki.rootKey.get());
  auto inter = testing::makeCert(CertSpec{"Intermediate", {}, {}, kNow - kDay, kNow + kDay, true},
                                 pki.interKey.get(), inter2.get(), key2.get());
  auto r = parse(testing::certPem(inter2.get()) + testing::certPem(pki.leaf.get()) +
                     testing::certPem(pki.root.get()) + testing::certPem(inter.get()),
                 testing::pkcs8Pem(pki.leafKey.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  ASSERT_EQ((*r)->chain.size(), 3u);
  EXPECT_EQ(bufferBytes((*r)->chain[0].get()), testing::certDer(pki.leaf.get()));
  EXPECT_EQ(bufferBytes((*r)->chain[1].get()), testing::certDer(inter.get()));
  EXPECT_EQ(bufferBytes((*r)->chain[2].get()), testing::certDer(inter2.get()));
}

TEST(ParseCredentials, KeepsAnInOrderChainWithoutNotes) {
  Pki pki = Pki::make();
  auto r = parse(testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get()),
                 testing::pkcs8Pem(pki.leafKey.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  EXPECT_TRUE((*r)->notes.empty());
}

TEST(ParseCredentials, SaysWhichIssuerIsMissing) {
  Pki pki = Pki::make();
  Pki other = Pki::make();
  auto unrelated = testing::makeCert(CertSpec{"Other CA", {}, {}, kNow - kDay, kNow + kDay, true},
                                     other.interKey.get());
  std::string message =
      errorOf(parse(testing::certPem(pki.leaf.get()) + testing::certPem(unrelated.get()),
                    testing::pkcs8Pem(pki.leafKey.get())));
  EXPECT_THAT(message,
              AllOf(HasSubstr("chain: the chain does not link: the issuer of certificate 1 of 2 "
                              "(CN=leaf.example.com), 'CN=Intermediate', is missing"),
                    HasSubstr("left over: certificate 2 of 2 (CN=Other CA)")));

  // Same name, wrong key: the signature check catches an impostor.
  message = errorOf(parse(testing::certPem(pki.leaf.get()) + testing::certPem(other.inter.get()),
                          testing::pkcs8Pem(pki.leafKey.get())));
  EXPECT_THAT(message, HasSubstr("(certificate 2 of 2 (CN=Intermediate) has that name, but its "
                                 "key did not sign it)"));
}

TEST(ParseCredentials, RefusesExpiredAndNotYetValidCertificates) {
  Pki pki = Pki::make();
  const std::string chain = testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get());
  const std::string key = testing::pkcs8Pem(pki.leafKey.get());
  // The leaf runs 2025-12-02 .. 2026-03-02; the intermediate 2025-01-01 .. 2027-01-01.
  EXPECT_THAT(errorOf(parse(chain, key, kNow + 100 * kDay)),
              AllOf(HasSubstr("chain: certificate 1 of 2 (CN=leaf.example.com) expired on "
                              "2026-03-02T00:00:00Z"),
                    HasSubstr("valid from 2025-12-02T00:00:00Z to 2026-03-02T00:00:00Z; now "
                              "2026-04-11T00:00:00Z")));
  EXPECT_THAT(errorOf(parse(chain, key, kNow - 100 * kDay)),
              HasSubstr("chain: certificate 1 of 2 (CN=leaf.example.com) is not valid yet (valid "
                        "from 2025-12-02T00:00:00Z"));
  // An expired intermediate breaks clients too.
  std::string both = errorOf(parse(chain, key, kNow + 400 * kDay));
  EXPECT_THAT(both,
              HasSubstr("certificate 2 of 2 (CN=Intermediate) expired on 2027-01-01T00:00:00Z"));
}

TEST(ParseCredentials, SharesPooledIntermediates) {
  Pki pki = Pki::make();
  auto key2 = testing::makeKey(Alg::kP256);
  auto leaf2 = pki.sibling("other.example.com", key2.get());
  const std::string inter = testing::certPem(pki.inter.get());
  auto a = parse(testing::certPem(pki.leaf.get()) + inter, testing::pkcs8Pem(pki.leafKey.get()));
  auto b = parse(testing::certPem(leaf2.get()) + inter, testing::pkcs8Pem(key2.get()));
  ASSERT_TRUE(a.ok() && b.ok()) << errorOf(a) << errorOf(b);
  EXPECT_EQ((*a)->chain[1].get(), (*b)->chain[1].get());
  EXPECT_NE((*a)->chain[0].get(), (*b)->chain[0].get());
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

// Signs with `key` and verifies with `leaf`'s public key.
bool signsForLeaf(EVP_PKEY* key, X509* leaf) {
  const uint8_t digest[32] = {1, 2, 3};
  uint8_t sig[256];
  size_t len = sizeof sig;
  bssl::UniquePtr<EVP_PKEY_CTX> sign(EVP_PKEY_CTX_new(key, nullptr));
  bssl::UniquePtr<EVP_PKEY> pub(X509_get_pubkey(leaf));
  bssl::UniquePtr<EVP_PKEY_CTX> verify(EVP_PKEY_CTX_new(pub.get(), nullptr));
  return EVP_PKEY_sign_init(sign.get()) && EVP_PKEY_sign(sign.get(), sig, &len, digest, 32) &&
         EVP_PKEY_verify_init(verify.get()) &&
         EVP_PKEY_verify(verify.get(), sig, len, digest, 32) == 1;
}

TEST(StoredKey, EcKeysSkipOnlyTheScalarCheck) {
  for (Alg alg : {Alg::kP256, Alg::kP384}) {
    Pki pki = Pki::make(alg);
    const std::string chain = testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get());
    // The fast path takes the store's PKCS#8 (public key included) and the
    // key works: it signs what the leaf's public key verifies.
    auto fast = parseStoredEcKey(bytes(testing::pkcs8Der(pki.leafKey.get())));
    ASSERT_TRUE(fast);
    EXPECT_EQ(EVP_PKEY_cmp(fast.get(), pki.leafKey.get()), 1);
    EXPECT_TRUE(signsForLeaf(fast.get(), pki.leaf.get()));
    auto stored = parseCredentials("s", chain, testing::pkcs8Pem(pki.leafKey.get()),
                                   sharedBufferPool(), kNow, "chain", "key", Verify::kStored);
    ASSERT_TRUE(stored.ok()) << errorOf(stored);
    EXPECT_TRUE(signsForLeaf((*stored)->key.get(), pki.leaf.get()));
  }
  // Not the store's form: left to the full parser.
  Pki rsa = Pki::make(Alg::kRsa2048);
  EXPECT_FALSE(parseStoredEcKey(bytes(testing::pkcs8Der(rsa.leafKey.get()))));
  Pki ec = Pki::make(Alg::kP256);
  EC_KEY_set_enc_flags(EVP_PKEY_get0_EC_KEY(ec.leafKey.get()), EC_PKEY_NO_PUBKEY);
  const std::string noPublic = testing::pkcs8Der(ec.leafKey.get());
  EXPECT_FALSE(parseStoredEcKey(bytes(noPublic)));
  EXPECT_FALSE(parseStoredEcKey(bytes(noPublic + std::string(1, '\0'))));
  EC_KEY_set_enc_flags(EVP_PKEY_get0_EC_KEY(ec.leafKey.get()), 0);
  EXPECT_FALSE(parseStoredEcKey(bytes(testing::pkcs8Der(ec.leafKey.get()) + "x")));
  auto viaFull =
      parseCredentials("s", testing::certPem(ec.leaf.get()) + testing::certPem(ec.inter.get()),
                       testing::pemBlock("PRIVATE KEY", noPublic), sharedBufferPool(), kNow,
                       "chain", "key", Verify::kStored);
  EXPECT_TRUE(viaFull.ok()) << errorOf(viaFull);
}

TEST(StoredKey, AStoredKeyOfAnotherPairIsStillRefused) {
  // Key pair B's file beside leaf A: the public key B carries is not A's.
  Pki a = Pki::make(Alg::kP256);
  Pki b = Pki::make(Alg::kP256);
  auto r = parseCredentials("s", testing::certPem(a.leaf.get()) + testing::certPem(a.inter.get()),
                            testing::pkcs8Pem(b.leafKey.get()), sharedBufferPool(), kNow, "chain",
                            "key", Verify::kStored);
  EXPECT_THAT(errorOf(r), HasSubstr("does not match the leaf"));
}

TEST(ParseCredentials, DropsDuplicatesAndNotesMissingSan) {
  auto key = testing::makeKey(Alg::kP256);
  auto leaf = testing::makeCert(CertSpec{"no-san", {}, {}}, key.get());
  std::string pem = testing::certPem(leaf.get());
  auto r = parse(pem + pem, testing::pkcs8Pem(key.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  EXPECT_EQ((*r)->chain.size(), 1u);
  EXPECT_THAT((*r)->notes, ElementsAre("chain: dropped certificate 2 of 2 (CN=no-san), a "
                                       "duplicate of certificate 1",
                                       HasSubstr("no subjectAltName")));
}

TEST(Covers, ExactAndOneLabelWildcard) {
  Credentials c;
  c.dnsNames = {"a.com", "*.wild.com"};
  c.ipAddresses = {"192.0.2.7"};
  EXPECT_TRUE(c.covers("a.com"));
  EXPECT_TRUE(c.covers("A.COM"));
  EXPECT_TRUE(c.covers("a.com."));
  EXPECT_FALSE(c.covers("b.a.com"));
  EXPECT_TRUE(c.covers("x.wild.com"));
  EXPECT_TRUE(c.covers("X.Wild.Com"));
  EXPECT_FALSE(c.covers("wild.com"));
  EXPECT_FALSE(c.covers("y.x.wild.com"));
  EXPECT_FALSE(c.covers(".wild.com"));
  EXPECT_TRUE(c.covers("192.0.2.7"));
  EXPECT_FALSE(c.covers(""));
}

// Found by tests/fuzz (fuzz_credentials): a leaf whose subjectAltName holds
// trailing bytes parses as X.509 here but not in the TLS stack
// (CANNOT_PARSE_LEAF_CERT): it was accepted, then failed every handshake.
TEST(Credentials, LeafTheTlsStackCannotParseIsRefused) {
  const std::string chain =
      "-----BEGIN CERTIFICATE-----\n"
      "MIIBzzCCAXWgAwIBAgIBATAKBggqhkjOPQQDAjA6MSIwIAYDVQQKDBl0bHNlZGdl\n"
      "IGludGVncmF0aW9uIHRlc3RzMRQwEgYDVQQDDAtvd24uZXhhbXBsZTAeFw0yNjEy\n"
      "MDcxNDUzNTFaFw0yNjEyMTAxNDUzNTFaMDoxIjAgBgNVBAoMGXRsc2VkZ2UgaW50\n"
      "ZWdyYXRpb24gdGVzdHMxFDASBgNVBAMMC293bi5leGFtcGxlMFkwEwYHKoZIzj0C\n"
      "AQYIKoZIzj0DAQcDQgAE/r73z+IIsIJY5dT52zEZIfZmFHz1dDdcOG999UyFO3bn\n"
      "mMFMnS0q+Hswr/caPw3k5tMdwq19kTt5S8EauBHXPaNsMGowDAYDVR0TAQH/BAIw\n"
      "ADAOBgNVHQ8BAf8EBAMCB5AwEwYDVR0lBAwwCgYIKwYBBQUHAwEwFgYDVR0RBA8w\n"
      "DYIHb3duLmV4YW0wbGUwHQYDVR0OBBYEFPFjNkwQBY2A2jI+9YwXwowPGZzbMAoG\n"
      "CCqGSM49BAMCA0gAMEUCIEg64ImSzbgOScHkhfOrHNSPIDyuADz83r67VUeo8D+5\n"
      "AiEA5Iq+YQ7QHUmz5Oa+0ASMxlPRki+/K9RVKCAHYZZkJgs=\n"
      "-----END CERTIFICATE-----\n";
  const std::string key =
      "-----BEGIN PRIVATE KEY-----\n"
      "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggWZA9bgMczgTAi/b\n"
      "7fUzWfIlVLiKVkTSlvn+JbXpUFShRANCAAT+vvfP4giwgljl1PnbMRkh9mYUfPV0\n"
      "N1w4b331TIU7dueYwUydLSr4ezCv9xo/DeTm0x3CrX2RO3lLwRq4Edc9\n"
      "-----END PRIVATE KEY-----\n";
  const auto r = parse(chain, key, 1796655231);
  EXPECT_THAT(errorOf(r), HasSubstr("chain: the leaf certificate cannot be served"));
}

}  // namespace
}  // namespace tlsedge::certstore
