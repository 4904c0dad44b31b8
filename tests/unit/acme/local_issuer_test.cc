// The internal issuer: the local CA's files (made once, 0600 key, atomic,
// reused across restarts, refused when damaged) and the certificates it
// issues (names, key type, validity, chaining to the local root), then
// LocalIssuer writing the store entry on a real uv loop.
#include "acme/local_issuer.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "acme/local_ca.h"
#include "certstore/file_storage.h"
#include "certstore/files.h"
#include "certstore/store.h"

namespace tlsedge::acme {
namespace {

class TempState {
 public:
  TempState() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tlsedge_localca_XXXXXX");
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempState() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::vector<std::string> filesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bssl::UniquePtr<X509> readCert(const std::string& pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  return bssl::UniquePtr<X509>(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

bssl::UniquePtr<EVP_PKEY> readKey(const std::string& pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), pem.size()));
  return bssl::UniquePtr<EVP_PKEY>(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// X509_verify_cert against `root` alone, as a TLS client would for `host`.
int verify(X509* leaf, X509* root, const std::string& host) {
  bssl::UniquePtr<X509_STORE> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), root);
  bssl::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx.get()), host.data(), host.size());
  if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
  return X509_STORE_CTX_get_error(ctx.get());
}

// The local CA of the state directory `stateDir`, and opening it there.
std::string caDir(const std::string& stateDir) { return stateDir + "/acme/local-ca"; }
Result<LocalCa> openCa(const std::string& dir, bool* created = nullptr) {
  certstore::FileStorage storage(dir.substr(0, dir.size() - std::string("/acme/local-ca").size()));
  return LocalCa::open(storage, created);
}

int ecCurve(EVP_PKEY* key) {
  return EC_GROUP_get_curve_name(EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key)));
}

TEST(LocalCa, CreatedOnceWithA0600KeyAndReused) {
  TempState state;
  const std::string dir = caDir(state.path());
  EXPECT_EQ(dir, state.path() + "/acme/local-ca");
  bool created = false;
  auto first = openCa(dir, &created);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_TRUE(created);
  EXPECT_EQ(first->certificatePath(), dir + "/ca.pem");
  // Only the two files: the atomic writes left no temporaries behind.
  EXPECT_EQ(filesIn(dir), (std::vector<std::string>{"ca.key", "ca.pem"}));
  EXPECT_EQ(modeOf(dir + "/ca.key"), 0600u);
  EXPECT_EQ(modeOf(dir + "/ca.pem"), 0644u);
  EXPECT_EQ(modeOf(dir), 0700u);

  auto pem = certstore::readFile(dir + "/ca.pem");
  ASSERT_TRUE(pem.ok());
  auto root = readCert(*pem);
  ASSERT_TRUE(root);
  EXPECT_EQ(X509_check_ca(root.get()), 1);
  bssl::UniquePtr<EVP_PKEY> rootKey(X509_get_pubkey(root.get()));
  ASSERT_TRUE(rootKey);
  EXPECT_EQ(X509_verify(root.get(), rootKey.get()), 1);  // self-signed
  EXPECT_EQ(ecCurve(rootKey.get()), NID_X9_62_prime256v1);
  EXPECT_NE(X509_get0_subject_key_id(root.get()), nullptr);
  auto key = certstore::readFile(dir + "/ca.key");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);

  // A restart: the same CA (files untouched), so trust set up once holds.
  created = true;
  auto again = openCa(dir, &created);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_FALSE(created);
  EXPECT_EQ(X509_cmp(again->certificate(), root.get()), 0);
  EXPECT_EQ(*certstore::readFile(dir + "/ca.pem"), *pem);
  EXPECT_EQ(*certstore::readFile(dir + "/ca.key"), *key);
}

TEST(LocalCa, IssuesCertificatesChainingToTheRoot) {
  TempState state;
  auto ca = openCa(caDir(state.path()));
  ASSERT_TRUE(ca.ok()) << ca.error().message;
  const std::string longName = std::string(70, 'a') + ".example";  // over the 64-char CN limit
  auto issued = ca->issue({"shop.test", "www.shop.test", "127.0.0.1", longName},
                          certstore::NewKeyType::kEcdsaP256, LocalIssuer::kLifetimeSeconds);
  ASSERT_TRUE(issued.ok()) << issued.error().message;
  auto leaf = readCert(issued->chainPem);
  auto key = readKey(issued->keyPem);
  ASSERT_TRUE(leaf && key);
  // One certificate: the root is the trust anchor, not sent.
  EXPECT_EQ(issued->chainPem.find("BEGIN CERTIFICATE", 30), std::string::npos);
  EXPECT_EQ(X509_check_private_key(leaf.get(), key.get()), 1);
  EXPECT_EQ(ecCurve(key.get()), NID_X9_62_prime256v1);
  EXPECT_EQ(X509_check_ca(leaf.get()), 0);
  EXPECT_EQ(X509_NAME_entry_count(X509_get_subject_name(leaf.get())), 0);  // names in SAN only
  for (const std::string host : {"shop.test", "www.shop.test", longName.c_str()}) {
    EXPECT_EQ(verify(leaf.get(), ca->certificate(), host), X509_V_OK) << host;
  }
  EXPECT_EQ(X509_check_ip_asc(leaf.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(verify(leaf.get(), ca->certificate(), "other.test"), X509_V_ERR_HOSTNAME_MISMATCH);
  // Seven days from now (backdated an hour for slow client clocks).
  int days = 0, seconds = 0;
  ASSERT_TRUE(ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(leaf.get())));
  const int64_t left = int64_t{days} * 86400 + seconds;
  EXPECT_GE(left, LocalIssuer::kLifetimeSeconds - 60);
  EXPECT_LE(left, LocalIssuer::kLifetimeSeconds + 60);
  EXPECT_LT(X509_cmp_time(X509_get0_notBefore(leaf.get()), nullptr), 0);

  // Another CA does not vouch for it.
  TempState other;
  auto stranger = openCa(caDir(other.path()));
  ASSERT_TRUE(stranger.ok());
  EXPECT_NE(verify(leaf.get(), stranger->certificate(), "shop.test"), X509_V_OK);

  // RSA 2048 when asked; serials differ per certificate.
  auto rsa = ca->issue({"shop.test"}, certstore::NewKeyType::kRsa2048, 3600);
  ASSERT_TRUE(rsa.ok()) << rsa.error().message;
  auto rsaKey = readKey(rsa->keyPem);
  ASSERT_TRUE(rsaKey);
  EXPECT_EQ(EVP_PKEY_id(rsaKey.get()), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_bits(rsaKey.get()), 2048);
  auto rsaLeaf = readCert(rsa->chainPem);
  EXPECT_NE(
      ASN1_INTEGER_cmp(X509_get0_serialNumber(rsaLeaf.get()), X509_get0_serialNumber(leaf.get())),
      0);
  EXPECT_FALSE(ca->issue({}, certstore::NewKeyType::kEcdsaP256, 3600).ok());
}

TEST(LocalCa, RefusesACertificateWithoutItsKey) {
  TempState state;
  const std::string dir = caDir(state.path());
  ASSERT_TRUE(openCa(dir).ok());
  const std::string pem = *certstore::readFile(dir + "/ca.pem");
  ASSERT_EQ(::unlink((dir + "/ca.key").c_str()), 0);
  auto missing = openCa(dir);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("is there but not its key " + dir + "/ca.key"),
            std::string::npos)
      << missing.error().message;
  EXPECT_EQ(*certstore::readFile(dir + "/ca.pem"), pem);  // nothing overwritten

  // Another CA's key beside it: refused, not used.
  TempState other;
  ASSERT_TRUE(openCa(caDir(other.path())).ok());
  ASSERT_TRUE(certstore::writeFileAtomic(
                  dir + "/ca.key", *certstore::readFile(caDir(other.path()) + "/ca.key"), 0600)
                  .ok());
  auto mismatch = openCa(dir);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.error().message.find("is not the key of"), std::string::npos)
      << mismatch.error().message;
  // The key never appears in messages.
  EXPECT_EQ(mismatch.error().message.find("PRIVATE KEY"), std::string::npos);
}

TEST(LocalCa, AKeyLeftWithoutItsCertificateIsReplaced) {
  // A crash between the two writes leaves ca.key alone: nobody trusts it yet.
  TempState state;
  const std::string dir = caDir(state.path());
  ASSERT_TRUE(certstore::writeFileAtomic(dir + "/ca.key", "stale", 0600).ok());
  bool created = false;
  auto ca = openCa(dir, &created);
  ASSERT_TRUE(ca.ok()) << ca.error().message;
  EXPECT_TRUE(created);
  EXPECT_NE(*certstore::readFile(dir + "/ca.key"), "stale");
  EXPECT_EQ(modeOf(dir + "/ca.key"), 0600u);
}

TEST(LocalCa, OneThatCannotBeLookedAtIsNeverReplaced) {
  // ca.pem a symlink to itself: stat fails with ELOOP, neither there nor
  // absent. A new CA here would void every certificate the old one issued.
  TempState state;
  const std::string dir = caDir(state.path());
  ASSERT_TRUE(certstore::writeFileAtomic(dir + "/ca.key", "kept", 0600).ok());
  ASSERT_EQ(symlink("ca.pem", (dir + "/ca.pem").c_str()), 0);
  auto ca = openCa(dir);
  ASSERT_FALSE(ca.ok());
  EXPECT_NE(ca.error().message.find(dir + "/ca.pem"), std::string::npos) << ca.error().message;
  EXPECT_EQ(*certstore::readFile(dir + "/ca.key"), "kept");
}

TEST(LocalIssuer, OrdersEndInTheStoreOnTheLoop) {
  TempState state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    auto issuer = LocalIssuer::create(&loop, certstore::FileStorage::open(state.path()), 3600);
    std::vector<Status> results;
    OrderRequest request;
    request.site = "shop";
    request.certificateName = "acme-shop";
    request.hosts = {"shop.test", "www.shop.test"};
    issuer->order(request, [&](Status s) { results.push_back(std::move(s)); });
    request.site = "bad";
    request.certificateName = "acme-bad";
    request.hosts = {};
    issuer->order(request, [&](Status s) { results.push_back(std::move(s)); });
    EXPECT_TRUE(results.empty());  // never inside order()
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_TRUE(results[0].ok()) << results[0].error().message;
    ASSERT_FALSE(results[1].ok());
    EXPECT_NE(results[1].error().message.find("certificate `acme-bad` for site `bad`"),
              std::string::npos)
        << results[1].error().message;
    EXPECT_FALSE(issuer->lastFailure().retryAfterSeconds.has_value());

    auto store = certstore::CertificateStore::forStateDir(state.path());
    auto info = store.inspect("acme-shop");
    ASSERT_TRUE(info.ok()) << info.error().message;
    EXPECT_EQ(info->dnsNames, (std::vector<std::string>{"shop.test", "www.shop.test"}));
    EXPECT_EQ(info->keyType, "ECDSA P-256");
    EXPECT_EQ(info->meta.site, "shop");
    EXPECT_EQ(info->meta.source, certstore::CertSource::kAcme);
    EXPECT_NEAR(static_cast<double>(info->notAfter - ::time(nullptr)), 3600.0, 60.0);
    EXPECT_EQ(modeOf(store.keyPath("acme-shop")), 0600u);
    EXPECT_FALSE(store.inspect("acme-bad").ok());
    auto leaf = readCert(*certstore::readFile(store.chainPath("acme-shop")));
    auto root = readCert(*certstore::readFile(issuer->caCertificatePath()));
    EXPECT_EQ(verify(leaf.get(), root.get(), "www.shop.test"), X509_V_OK);

    // Destroyed with an order pending: it never runs.
    bool ran = false;
    issuer->order(request, [&](Status) { ran = true; });
    issuer.reset();
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_FALSE(ran);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

TEST(LocalIssuer, ACaThatCannotBeOpenedFailsEachOrderUntilItOpens) {
  TempState state;
  const std::string dir = caDir(state.path());
  std::filesystem::create_directories(dir);
  ASSERT_EQ(symlink("ca.pem", (dir + "/ca.pem").c_str()), 0);  // ELOOP: cannot tell
  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    auto issuer = LocalIssuer::create(&loop, certstore::FileStorage::open(state.path()), 3600);
    EXPECT_EQ(issuer->caCertificatePath(), dir + "/ca.pem");  // known before it opens
    OrderRequest request;
    request.site = "shop";
    request.certificateName = "acme-shop";
    request.hosts = {"shop.test"};
    std::vector<Status> results;
    issuer->order(request, [&](Status s) { results.push_back(std::move(s)); });
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(results.size(), 1u);
    ASSERT_FALSE(results[0].ok());
    const std::string& why = results[0].error().message;
    EXPECT_NE(why.find("site `shop`: local CA: "), std::string::npos) << why;
    EXPECT_NE(why.find(dir + "/ca.pem"), std::string::npos) << why;
    EXPECT_FALSE(std::filesystem::exists(dir + "/ca.key"));  // nothing made over it

    // Repaired: the next order opens (makes) it and is issued.
    ASSERT_EQ(::unlink((dir + "/ca.pem").c_str()), 0);
    issuer->order(request, [&](Status s) { results.push_back(std::move(s)); });
    uv_run(&loop, UV_RUN_DEFAULT);
    ASSERT_EQ(results.size(), 2u);
    EXPECT_TRUE(results[1].ok()) << results[1].error().message;
    auto store = certstore::CertificateStore::forStateDir(state.path());
    EXPECT_TRUE(store.inspect("acme-shop").ok());
    EXPECT_EQ(modeOf(dir + "/ca.key"), 0600u);
  }
  EXPECT_EQ(uv_loop_close(&loop), 0);
}

}  // namespace
}  // namespace tlsedge::acme
