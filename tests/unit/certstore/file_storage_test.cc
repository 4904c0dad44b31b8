// FileStorage: the Storage contract on a directory (values, groups, keys,
// listing, removal), and the file modes of secrets.
#include "certstore/file_storage.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certstore/files.h"
#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using Secrecy = Storage::Secrecy;

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

class FileStorageTest : public ::testing::Test {
 protected:
  testing::TempDir dir_;
  FileStorage storage_{dir_.path()};
};

TEST_F(FileStorageTest, AValueIsWrittenWholeAndASecretIsPrivate) {
  ASSERT_TRUE(storage_.store("acme/sites/shop.json", "{}\n", Secrecy::kPublic).ok());
  ASSERT_TRUE(storage_.store("acme/ca/account.key", "KEY", Secrecy::kSecret).ok());
  EXPECT_EQ(*storage_.load("acme/sites/shop.json"), "{}\n");
  EXPECT_EQ(modeOf(dir_.file("acme/sites/shop.json")), 0644u);
  EXPECT_EQ(modeOf(dir_.file("acme/ca/account.key")), 0600u);
  EXPECT_EQ(storage_.describe("acme/ca/account.key"), dir_.file("acme/ca/account.key"));
  ASSERT_TRUE(storage_.store("acme/sites/shop.json", "{\"a\":1}\n", Secrecy::kPublic).ok());
  EXPECT_EQ(*storage_.load("acme/sites/shop.json"), "{\"a\":1}\n");
}

TEST_F(FileStorageTest, WhatIsNotThereIsNotFound) {
  auto missing = storage_.load("certs/none/fullchain.pem");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(missing.error().message.find(dir_.file("certs/none/fullchain.pem")), std::string::npos);
  EXPECT_FALSE(storage_.exists("certs/none").value());
  EXPECT_EQ(storage_.remove("certs/none").error().kind, ErrorKind::kNotFound);
  EXPECT_TRUE(storage_.list("certs").ok());
  EXPECT_TRUE(storage_.list("certs")->empty());
}

TEST_F(FileStorageTest, WhatCannotBeLookedAtIsAnErrorNotAbsent) {
  ASSERT_TRUE(storage_.makeDirectory("certs").ok());
  ASSERT_EQ(symlink("loop", dir_.file("certs/loop").c_str()), 0);  // ELOOP
  auto there = storage_.exists("certs/loop");
  ASSERT_FALSE(there.ok());
  EXPECT_NE(there.error().message.find(dir_.file("certs/loop")), std::string::npos);
  EXPECT_NE(storage_.load("certs/loop").error().kind, ErrorKind::kNotFound);
  EXPECT_NE(storage_.remove("certs/loop").error().kind, ErrorKind::kNotFound);
  EXPECT_FALSE(storage_.exists("../out").ok());  // not a key
}

TEST_F(FileStorageTest, MakeDirectoryCreatesTheRootAndEachLevelPrivate) {
  FileStorage fresh(dir_.file("state"));
  ASSERT_TRUE(fresh.makeDirectory("acme/sites").ok());
  EXPECT_EQ(modeOf(dir_.file("state")), 0700u);
  EXPECT_EQ(modeOf(dir_.file("state/acme")), 0700u);
  EXPECT_EQ(modeOf(dir_.file("state/acme/sites")), 0700u);
  EXPECT_TRUE(fresh.makeDirectory("acme/sites").ok());  // again: fine
  EXPECT_FALSE(fresh.makeDirectory("../out").ok());
  ASSERT_TRUE(fresh.store("file", "x", Secrecy::kPublic).ok());
  auto blocked = fresh.makeDirectory("file/below");
  ASSERT_FALSE(blocked.ok());
  EXPECT_NE(blocked.error().message.find(dir_.file("state/file/below")), std::string::npos)
      << blocked.error().message;
}

TEST_F(FileStorageTest, KeysThatCouldEscapeOrHitATemporaryAreRefused) {
  for (const char* key : {"", "/etc", "certs/../x", "certs/.tmp-x", "certs//x", "certs/"}) {
    auto stored = storage_.store(key, "x", Secrecy::kPublic);
    ASSERT_FALSE(stored.ok()) << key;
    EXPECT_EQ(stored.error().kind, ErrorKind::kInvalid) << key;
    EXPECT_FALSE(storage_.load(key).ok()) << key;
  }
}

TEST_F(FileStorageTest, AGroupIsCreatedReplacedAndRemovedWhole) {
  const std::vector<Storage::Item> v1 = {{"privkey.pem", "K1", Secrecy::kSecret},
                                         {"fullchain.pem", "C1", Secrecy::kPublic}};
  auto created = storage_.storeGroup("certs/shop", v1, false);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_FALSE(*created);
  EXPECT_EQ(modeOf(dir_.file("certs/shop/privkey.pem")), 0600u);

  auto refused = storage_.storeGroup("certs/shop", v1, false);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kConflict);

  // The new group replaces the old one exactly: an item it lacks is gone.
  const std::vector<Storage::Item> v2 = {{"fullchain.pem", "C2", Secrecy::kPublic}};
  auto replaced = storage_.storeGroup("certs/shop", v2, true);
  ASSERT_TRUE(replaced.ok());
  EXPECT_TRUE(*replaced);
  EXPECT_EQ(*storage_.load("certs/shop/fullchain.pem"), "C2");
  EXPECT_FALSE(storage_.exists("certs/shop/privkey.pem").value());

  ASSERT_TRUE(storage_.storeGroup("certs/blog", v1, false).ok());
  EXPECT_EQ(*storage_.list("certs"), (std::vector<std::string>{"blog", "shop"}));
  ASSERT_TRUE(storage_.remove("certs/shop").ok());
  EXPECT_EQ(*storage_.list("certs"), (std::vector<std::string>{"blog"}));
}

TEST_F(FileStorageTest, TemporariesAreNeverListedAndTheStaleOnesGo) {
  ASSERT_TRUE(writeFileAtomic(dir_.file("certs/.tmp-a-999999999-0/x"), "x", 0644).ok());
  const std::string live = "certs/.tmp-b-" + std::to_string(getpid()) + "-0/x";
  ASSERT_TRUE(writeFileAtomic(dir_.file(live), "x", 0644).ok());
  EXPECT_TRUE(storage_.list("certs")->empty());
  EXPECT_EQ(storage_.removeStaleTemporaries("certs"), 1u);
  struct stat st {};
  EXPECT_EQ(stat(dir_.file(live).c_str(), &st), 0);  // its process runs: kept
}

TEST_F(FileStorageTest, AnItemNameWithASlashIsRefusedAndNothingIsLeft) {
  auto bad = storage_.storeGroup("certs/x", {{"a/b", "v", Secrecy::kPublic}}, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalid);
  EXPECT_FALSE(storage_.exists("certs/x").value());
  auto names = storage_.list("certs");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST_F(FileStorageTest, ABatchWritesEveryGroupWholeAndSaysWhichReplaced) {
  ASSERT_TRUE(
      storage_
          .storeGroup(
              "certs/shop",
              {{"fullchain.pem", "old", Secrecy::kPublic}, {"extra", "x", Secrecy::kPublic}}, false)
          .ok());
  const std::vector<Storage::Item> items = {{"privkey.pem", "K", Secrecy::kSecret},
                                            {"fullchain.pem", "C", Secrecy::kPublic}};
  const std::vector<FileStorage::GroupWrite> groups = {{"certs/blog", items},
                                                       {"certs/shop", items}};
  auto written = storage_.storeGroups(groups);
  ASSERT_TRUE(written.status.ok()) << written.status.error().message;
  EXPECT_EQ(written.groups, 2u);
  EXPECT_EQ(written.replaced, (std::vector<bool>{false, true}));
  for (const char* name : {"blog", "shop"}) {
    const std::string group = std::string("certs/") + name;
    EXPECT_EQ(*storage_.list(group), (std::vector<std::string>{"fullchain.pem", "privkey.pem"}));
    EXPECT_EQ(*storage_.load(group + "/fullchain.pem"), "C");
    EXPECT_EQ(modeOf(dir_.file(group + "/privkey.pem")), 0600u);
    EXPECT_EQ(modeOf(dir_.file(group)), 0700u);
  }
}

// 20 groups: over the size from which the batch is made durable with one
// syncfs instead of an fsync per file; the same result.
TEST_F(FileStorageTest, ALargeBatchIsWrittenTheSameWay) {
  std::vector<FileStorage::GroupWrite> groups;
  for (int i = 0; i < 20; ++i) {
    groups.push_back({"certs/c" + std::to_string(i),
                      {{"privkey.pem", "K" + std::to_string(i), Secrecy::kSecret}}});
  }
  auto written = storage_.storeGroups(groups);
  ASSERT_TRUE(written.status.ok()) << written.status.error().message;
  EXPECT_EQ(written.groups, 20u);
  EXPECT_EQ(storage_.list("certs")->size(), 20u);
  EXPECT_EQ(*storage_.load("certs/c7/privkey.pem"), "K7");
  EXPECT_EQ(modeOf(dir_.file("certs/c7/privkey.pem")), 0600u);
}

TEST_F(FileStorageTest, ABatchStopsAtABadGroupWritingNoneOfItAndLeavesNoTemporary) {
  const std::vector<Storage::Item> good = {{"fullchain.pem", "C", Secrecy::kPublic}};
  const std::vector<FileStorage::GroupWrite> groups = {
      {"certs/a", good}, {"certs/b", {{".hidden", "v", Secrecy::kPublic}}}, {"certs/c", good}};
  auto written = storage_.storeGroups(groups);
  ASSERT_FALSE(written.status.ok());
  EXPECT_EQ(written.status.error().kind, ErrorKind::kInvalid);
  EXPECT_NE(written.status.error().message.find("certs/b"), std::string::npos);
  EXPECT_EQ(written.groups, 0u);  // checked and written aside before any rename
  EXPECT_TRUE(storage_.list("certs")->empty());
  DIR* dir = opendir(dir_.file("certs").c_str());
  ASSERT_NE(dir, nullptr);
  size_t entries = 0;
  while (readdir(dir) != nullptr) ++entries;
  closedir(dir);
  EXPECT_EQ(entries, 2u);  // "." and "..": no temporary left
}

}  // namespace
}  // namespace tlsedge::certstore
