// CertificateStore: layout, atomic add/replace/remove, refusals that change
// nothing, meta.json.
#include "certstore/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "certstore/files.h"
#include "certstore/x509_text.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using testing::Alg;
using testing::CertSpec;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kDay;
using testing::kNow;
using testing::Pki;
using testing::TempDir;

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::string contents(const std::string& path) {
  auto r = readFile(path);
  return r.ok() ? *r : "<" + r.error().message + ">";
}

std::vector<std::string> entriesOf(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  std::string chainOf(const Pki& pki) {
    return testing::certPem(pki.leaf.get()) + testing::certPem(pki.inter.get());
  }
  Result<AddResult> add(const std::string& name, const std::string& chain, const std::string& key,
                        bool replace = false) {
    return store_.add(name, chain, key, replace, CertSource::kUpload, kNow);
  }
  std::string errorOf(const Result<AddResult>& r) {
    return r.ok() ? std::string("<ok>") : r.error().message;
  }

  TempDir dir_;
  CertificateStore store_ = CertificateStore::forStateDir(dir_.path());
};

TEST_F(StoreTest, AddWritesTheLayoutWithAPrivateKey) {
  Pki pki = Pki::make(Alg::kP256, {"shop.example.com"});
  auto r = add("shop", chainOf(pki), testing::traditionalPem(pki.leafKey.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  EXPECT_FALSE(r->replaced);
  const std::string entry = dir_.path() + "/certs/shop";
  EXPECT_THAT(entriesOf(entry), ElementsAre("fullchain.pem", "meta.json", "privkey.pem"));
  EXPECT_EQ(modeOf(entry + "/privkey.pem"), 0600u);
  EXPECT_EQ(contents(entry + "/fullchain.pem"), chainOf(pki));
  // Stored as PKCS#8 whatever the upload's format.
  EXPECT_EQ(contents(entry + "/privkey.pem"), testing::pkcs8Pem(pki.leafKey.get()));
  EXPECT_EQ(contents(entry + "/meta.json"),
            "{\"source\":\"upload\",\"created\":\"2026-01-01T00:00:00Z\","
            "\"updated\":\"2026-01-01T00:00:00Z\"}\n");
  // No temporaries left behind, and the entry is listed and loads.
  EXPECT_THAT(entriesOf(dir_.path() + "/certs"), ElementsAre("shop"));
  auto names = store_.names();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("shop"));
  auto loaded = store_.load("shop", nullptr, kNow);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ((*loaded)->serialHex, serialHex(X509_get0_serialNumber(pki.leaf.get())));
}

TEST_F(StoreTest, PutsAShuffledChainInOrderAndDropsTheRoot) {
  Pki pki = Pki::make();
  auto r = add("shop",
               testing::certPem(pki.root.get()) + testing::certPem(pki.inter.get()) +
                   testing::certPem(pki.leaf.get()),
               testing::pkcs8Pem(pki.leafKey.get()));
  ASSERT_TRUE(r.ok()) << errorOf(r);
  EXPECT_EQ(contents(store_.chainPath("shop")), chainOf(pki));
  EXPECT_THAT(r->notes, ::testing::Contains(HasSubstr("dropped the self-signed root")));
}

TEST_F(StoreTest, RefusesAnExistingNameWithoutReplace) {
  Pki pki = Pki::make();
  ASSERT_TRUE(add("shop", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  EXPECT_THAT(errorOf(add("shop", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get()))),
              HasSubstr("a certificate named `shop` already exists in " + dir_.path() +
                        "/certs (use --replace to replace it)"));
}

TEST_F(StoreTest, ReplaceSwapsTheWholeEntryAndKeepsCreated) {
  Pki first = Pki::make();
  Pki second = Pki::make(Alg::kRsa2048);
  ASSERT_TRUE(add("shop", chainOf(first), testing::pkcs8Pem(first.leafKey.get())).ok());
  auto r = store_.add("shop", chainOf(second), testing::pkcs8Pem(second.leafKey.get()), true,
                      CertSource::kUpload, kNow + kDay);
  ASSERT_TRUE(r.ok()) << errorOf(r);
  EXPECT_TRUE(r->replaced);
  EXPECT_EQ(contents(store_.chainPath("shop")), chainOf(second));
  EXPECT_EQ(contents(store_.keyPath("shop")), testing::pkcs8Pem(second.leafKey.get()));
  EXPECT_EQ(modeOf(store_.keyPath("shop")), 0600u);
  auto info = store_.inspect("shop");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->meta.created, kNow);
  EXPECT_EQ(info->meta.updated, kNow + kDay);
  EXPECT_EQ(info->keyType, "RSA 2048");
  EXPECT_THAT(entriesOf(dir_.path() + "/certs"), ElementsAre("shop"));
}

// Every refusal happens before the disk is touched: the old entry stays
// byte for byte, and no temporary is left.
TEST_F(StoreTest, EveryValidationFailureLeavesTheOldEntryUntouched) {
  Pki pki = Pki::make();
  ASSERT_TRUE(add("shop", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  const std::string oldChain = contents(store_.chainPath("shop"));
  const std::string oldKey = contents(store_.keyPath("shop"));
  const std::string oldMeta = contents(dir_.path() + "/certs/shop/meta.json");

  const std::string key = testing::pkcs8Pem(pki.leafKey.get());
  std::string truncated = chainOf(pki);
  truncated.resize(truncated.rfind("-----END"));
  auto expiredKey = testing::makeKey(Alg::kP256);
  auto expired = testing::makeCert(CertSpec{"old", {"old"}, {}, kNow - 90 * kDay, kNow - kDay},
                                   expiredKey.get());
  auto futureKey = testing::makeKey(Alg::kP256);
  auto future = testing::makeCert(CertSpec{"new", {"new"}, {}, kNow + kDay, kNow + 90 * kDay},
                                  futureKey.get());
  auto smallKey = testing::makeKey(Alg::kRsa1024);
  auto small = testing::makeCert(CertSpec{"small", {"small"}, {}}, smallKey.get());
  Pki other = Pki::make();
  auto unrelated = testing::makeCert(CertSpec{"Other CA", {}, {}, kNow - kDay, kNow + kDay, true},
                                     other.interKey.get());

  struct Case {
    const char* what;
    std::string chain, key, message;
  };
  const std::vector<Case> cases = {
      {"pem syntax", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", key,
       "PEM syntax error"},
      {"der chain", testing::certDer(pki.leaf.get()), key, "looks like binary DER, not PEM"},
      {"der key", chainOf(pki), testing::pkcs8Der(pki.leafKey.get()), "looks like binary DER"},
      {"missing end", truncated, key, "missing END line"},
      {"key mismatch", chainOf(pki), testing::pkcs8Pem(other.leafKey.get()),
       "the private key does not match the leaf certificate"},
      {"no link", testing::certPem(pki.leaf.get()) + testing::certPem(unrelated.get()), key,
       "the chain does not link"},
      {"expired", testing::certPem(expired.get()), testing::pkcs8Pem(expiredKey.get()),
       "expired on"},
      {"not yet valid", testing::certPem(future.get()), testing::pkcs8Pem(futureKey.get()),
       "is not valid yet"},
      {"encrypted key", chainOf(pki), testing::encryptedPkcs8Pem(pki.leafKey.get()),
       "the private key is encrypted"},
      {"unsupported key", testing::certPem(small.get()), testing::pkcs8Pem(smallKey.get()),
       "unsupported key type: RSA 1024 bits"},
  };
  for (const Case& c : cases) {
    auto r = add("shop", c.chain, c.key, /*replace=*/true);
    EXPECT_THAT(errorOf(r), HasSubstr(c.message)) << c.what;
    EXPECT_EQ(contents(store_.chainPath("shop")), oldChain) << c.what;
    EXPECT_EQ(contents(store_.keyPath("shop")), oldKey) << c.what;
    EXPECT_EQ(contents(dir_.path() + "/certs/shop/meta.json"), oldMeta) << c.what;
    EXPECT_THAT(entriesOf(dir_.path() + "/certs"), ElementsAre("shop")) << c.what;
  }
}

TEST_F(StoreTest, RefusesNamesThatAreNotCertificateNames) {
  Pki pki = Pki::make();
  const std::string key = testing::pkcs8Pem(pki.leafKey.get());
  for (const char* name : {"", "..", ".hidden", "a/b", "sp ace"}) {
    EXPECT_THAT(errorOf(add(name, chainOf(pki), key)), HasSubstr("certificate name")) << name;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/certs/a"));
}

TEST_F(StoreTest, RemoveDeletesTheEntry) {
  Pki pki = Pki::make();
  ASSERT_TRUE(add("shop", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  ASSERT_TRUE(add("blog", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  ASSERT_TRUE(store_.remove("shop").ok());
  EXPECT_THAT(entriesOf(dir_.path() + "/certs"), ElementsAre("blog"));
  Status again = store_.remove("shop");
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(again.error().message,
              HasSubstr("no certificate named `shop` in " + dir_.path() + "/certs"));
}

TEST_F(StoreTest, ListingIgnoresTemporariesAndAMissingDirectory) {
  auto empty = store_.names();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  Pki pki = Pki::make();
  ASSERT_TRUE(add("shop", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  // What a crash mid-add leaves behind.
  ASSERT_TRUE(writeFileAtomic(dir_.path() + "/certs/.tmp-blog-1-0/fullchain.pem", "x", 0644).ok());
  auto names = store_.names();
  ASSERT_TRUE(names.ok());
  EXPECT_THAT(*names, ElementsAre("shop"));
}

TEST_F(StoreTest, AddDeletesTemporariesOfDeadProcessesOnly) {
  const std::string certs = dir_.path() + "/certs";
  // pid_max is at most 2^22: 999999999 is never a live process.
  ASSERT_TRUE(writeFileAtomic(certs + "/.tmp-my-blog-999999999-0/privkey.pem", "x", 0600).ok());
  ASSERT_TRUE(writeFileAtomic(certs + "/.rm-old-999999999-3/privkey.pem", "x", 0600).ok());
  const std::string live = "/.tmp-shop-" + std::to_string(getpid()) + "-99";
  ASSERT_TRUE(writeFileAtomic(certs + live + "/privkey.pem", "x", 0600).ok());
  Pki pki = Pki::make();
  ASSERT_TRUE(add("shop", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  EXPECT_THAT(entriesOf(certs), ElementsAre(live.substr(1), "shop"));
}

TEST_F(StoreTest, InspectShowsFieldsButNeverTheKey) {
  Pki pki = Pki::make(Alg::kP384, {"shop.example.com", "*.shop.example.com"});
  ASSERT_TRUE(add("shop", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  auto info = store_.inspect("shop");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->subject, "CN=shop.example.com");
  EXPECT_EQ(info->issuerCn, "Intermediate");
  EXPECT_THAT(info->dnsNames, ElementsAre("shop.example.com", "*.shop.example.com"));
  EXPECT_EQ(info->chainLength, 2u);
  EXPECT_EQ(info->keyType, "ECDSA P-384");
  EXPECT_EQ(info->serialHex, serialHex(X509_get0_serialNumber(pki.leaf.get())));
  EXPECT_EQ(info->meta.source, CertSource::kUpload);
}

TEST_F(StoreTest, LoadSkipsOnlyTheSignaturesAddVerified) {
  // Written behind add()'s back: a leaf whose issuer *name* is the
  // intermediate's but which another key signed.
  Pki pki = Pki::make(Alg::kP256, {"a.example"});
  Pki forger = Pki::make(Alg::kP256, {"a.example"});
  const std::string chain = testing::certPem(forger.leaf.get()) + testing::certPem(pki.inter.get());
  auto write = [&](const std::string& name, const std::string& key) {
    std::filesystem::create_directories(dir_.path() + "/certs/" + name);
    ASSERT_TRUE(writeFileAtomic(store_.chainPath(name), chain, 0644).ok());
    ASSERT_TRUE(writeFileAtomic(store_.keyPath(name), key, 0600).ok());
  };
  write("forged", testing::pkcs8Pem(forger.leafKey.get()));
  // add(), a full parse and a one-entry load refuse the link; loadAll trusts it.
  EXPECT_FALSE(add("x", chain, testing::pkcs8Pem(forger.leafKey.get())).ok());
  EXPECT_FALSE(
      loadCredentials("forged", store_.chainPath("forged"), store_.keyPath("forged"), nullptr, kNow)
          .ok());
  EXPECT_FALSE(store_.load("forged", nullptr, kNow).ok());  // one entry changing: full checks
  EXPECT_TRUE(store_.load("forged", nullptr, kNow, Verify::kStored).ok());
  auto all = store_.loadAll({"forged"}, nullptr, kNow);  // start: the signatures are skipped
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].ok());
  // Still checked on a store load: the key matches the leaf, and dates.
  write("wrongkey", testing::pkcs8Pem(pki.leafKey.get()));
  auto wrong = store_.load("wrongkey", nullptr, kNow, Verify::kStored);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.error().message, HasSubstr("does not match the leaf"));
  auto expired = store_.load("forged", nullptr, kNow + 400 * kDay, Verify::kStored);
  ASSERT_FALSE(expired.ok());
  EXPECT_THAT(expired.error().message, HasSubstr("expired"));
}

TEST_F(StoreTest, LoadAllOnThreadsGivesWhatLoadGivesInOrder) {
  Pki pki = Pki::make(Alg::kP256, {"a.example"});
  ASSERT_TRUE(add("good", chainOf(pki), testing::pkcs8Pem(pki.leafKey.get())).ok());
  // Enough entries for the parallel path: copies of one good entry, and every
  // tenth with a key that is not the leaf's.
  auto other = testing::makeKey(Alg::kP256);
  std::vector<std::string> names;
  for (int i = 0; i < 2 * static_cast<int>(CertificateStore::kParallelLoadMinimum); ++i) {
    const std::string name = "e" + std::to_string(i);
    std::filesystem::copy(dir_.path() + "/certs/good", dir_.path() + "/certs/" + name);
    if (i % 10 == 3) {
      ASSERT_TRUE(writeFileAtomic(store_.keyPath(name), testing::pkcs8Pem(other.get()), 0600).ok());
    }
    names.push_back(name);
  }
  names.push_back("absent");
  auto sequential = store_.loadAll(names, nullptr, kNow, 1);
  auto parallel = store_.loadAll(names, nullptr, kNow, 4);
  ASSERT_EQ(sequential.size(), names.size());
  ASSERT_EQ(parallel.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    auto one = store_.load(names[i], nullptr, kNow);
    ASSERT_EQ(parallel[i].ok(), one.ok()) << names[i];
    ASSERT_EQ(sequential[i].ok(), one.ok()) << names[i];
    if (one.ok()) {
      EXPECT_EQ((*parallel[i])->name, names[i]);
      EXPECT_EQ((*parallel[i])->serialHex, (*one)->serialHex);
    } else {
      EXPECT_EQ(parallel[i].error().message, one.error().message);
      EXPECT_EQ(sequential[i].error().message, one.error().message);
    }
  }
  EXPECT_FALSE(parallel[3].ok());
  EXPECT_TRUE(parallel[4].ok());
  EXPECT_FALSE(parallel.back().ok());  // "absent"
  EXPECT_TRUE(store_.loadAll({}, nullptr, kNow).empty());
}

TEST(MetaJson, RoundTripsAndRefusesGarbage) {
  CertMeta meta{CertSource::kAcme, kNow, kNow + 5, "shop \"x\""};
  auto back = metaFromJson(metaToJson(meta), "m");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->source, CertSource::kAcme);
  EXPECT_EQ(back->site, "shop \"x\"");
  EXPECT_EQ(back->created, kNow);
  EXPECT_EQ(back->updated, kNow + 5);
  EXPECT_FALSE(metaFromJson("[]", "m").ok());
  EXPECT_FALSE(metaFromJson("{\"source\":\"carrier pigeon\"}", "m").ok());
  EXPECT_FALSE(metaFromJson("{\"created\":\"yesterday\"}", "m").ok());
}

TEST(MetaJson, WritesOneLineInTheKeyOrderAndReadsEscapes) {
  EXPECT_EQ(metaToJson({CertSource::kInternal, kNow, kNow, "a\\b\n"}),
            "{\"source\":\"internal\",\"created\":\"2026-01-01T00:00:00Z\","
            "\"updated\":\"2026-01-01T00:00:00Z\",\"site\":\"a\\\\b\\n\"}\n");
  auto back = metaFromJson("{\"site\": \"caf\\u00e9\\n\", \"source\": \"upload\"}", "m");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->site, "caf\xc3\xa9\n");
  // A byte that is not UTF-8 is written as U+FFFD, never a throw.
  EXPECT_NE(metaToJson({CertSource::kAcme, kNow, kNow, "x\xffy"}).find("x\xef\xbf\xbdy"),
            std::string::npos);
}

TEST(MetaJson, IgnoresUnknownKeysAndRefusesWhatItDidNotWrite) {
  auto extra = metaFromJson("{\"source\":\"acme\",\"note\":\"x\",\"n\":1,\"o\":{\"a\":[]}}", "m");
  ASSERT_TRUE(extra.ok()) << extra.error().message;
  EXPECT_EQ(extra->source, CertSource::kAcme);
  for (const char* bad :
       {"", "{", "{\"source\":\"acme\"", "{\"source\":\"acme\"} x", "null", "\"x\"",
        "{\"source\":1}", "{\"site\":null}", "{\"created\":[]}", "{\"site\":\"\xff\"}"}) {
    auto meta = metaFromJson(bad, "/s/certs/a/meta.json");
    ASSERT_FALSE(meta.ok()) << bad;
    EXPECT_EQ(meta.error().message, "/s/certs/a/meta.json: not the meta.json tlsedge writes")
        << bad;
  }
  auto time = metaFromJson("{\"updated\":\"soon\"}", "m");
  ASSERT_FALSE(time.ok());
  EXPECT_EQ(time.error().message, "m: updated: not a time like 2026-01-31T12:00:00Z");
}

}  // namespace
}  // namespace tlsedge::certstore
