// writeFileAtomic / readFile.
#include "certstore/files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "test_pki.h"

namespace tlsedge::certstore {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::TempDir;

unsigned modeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    out.push_back(e.path().filename().string());
  }
  return out;
}

TEST(WriteFileAtomic, WritesContentWithModeAndNoTempFile) {
  TempDir dir;
  const std::string path = dir.file("privkey.pem");
  ASSERT_TRUE(writeFileAtomic(path, "secret\n", 0600).ok());
  EXPECT_EQ(modeOf(path), 0600u);
  auto read = readFile(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, "secret\n");
  EXPECT_THAT(entries(dir.path()), ::testing::ElementsAre("privkey.pem"));
}

TEST(WriteFileAtomic, ReplacesAndAppliesTheModeDespiteUmask) {
  TempDir dir;
  const std::string path = dir.file("fullchain.pem");
  ASSERT_TRUE(writeFileAtomic(path, "old", 0600).ok());
  mode_t old = umask(077);
  Status written = writeFileAtomic(path, std::string(100000, 'x'), 0644);
  umask(old);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(modeOf(path), 0644u);
  EXPECT_EQ(readFile(path)->size(), 100000u);
  EXPECT_EQ(entries(dir.path()).size(), 1u);
}

TEST(WriteFileAtomic, CreatesParentDirectoriesPrivately) {
  TempDir dir;
  const std::string path = dir.file("certs/shop/privkey.pem");
  ASSERT_TRUE(writeFileAtomic(path, "k", 0600).ok());
  EXPECT_EQ(modeOf(dir.file("certs")), 0700u);
  EXPECT_EQ(modeOf(dir.file("certs/shop")), 0700u);
  EXPECT_EQ(*readFile(path), "k");
}

TEST(WriteFileAtomic, FailureNamesThePathAndLeavesNothing) {
  TempDir dir;
  ASSERT_TRUE(writeFileAtomic(dir.file("file"), "x", 0644).ok());
  Status s = writeFileAtomic(dir.file("file/child.pem"), "x", 0600);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, AllOf(HasSubstr(dir.file("file")), HasSubstr("Not a directory")));

  // Rename onto a directory fails after the temp file was written: it is removed.
  ASSERT_EQ(mkdir(dir.file("adir").c_str(), 0700), 0);
  s = writeFileAtomic(dir.file("adir"), "x", 0600);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error().message, HasSubstr(dir.file("adir")));
  EXPECT_EQ(entries(dir.path()).size(), 2u);  // "file" and "adir" only
}

TEST(ReadFile, ErrorNamesPathAndErrno) {
  TempDir dir;
  auto r = readFile(dir.file("nope.pem"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "cannot open " + dir.file("nope.pem") + ": No such file or directory");
  auto d = readFile(dir.path());
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(d.error().message, HasSubstr("Is a directory"));
}

}  // namespace
}  // namespace tlsedge::certstore
