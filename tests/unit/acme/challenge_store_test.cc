#include "acme/challenge_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "acme/client.h"

namespace tlsedge::acme {
namespace {

TEST(ChallengeStore, ClientEntriesSurviveAReloadOfTheFiles) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("tlsedge-challenges-" + std::to_string(getpid())))
          .string();
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/filetoken") << "file.auth\n";
  ChallengeStore store;
  store.put("live", "live.auth");
  ASSERT_TRUE(store.loadDirectory(dir).ok());
  EXPECT_EQ(store.find("filetoken"), "file.auth");
  EXPECT_EQ(store.find("live"), "live.auth");  // a SIGHUP must not drop an order's challenge
  std::filesystem::remove(dir + "/filetoken");
  ASSERT_TRUE(store.loadDirectory(dir).ok());
  EXPECT_EQ(store.find("filetoken"), std::nullopt);
  EXPECT_EQ(store.find("live"), "live.auth");
  store.remove("live");
  EXPECT_EQ(store.find("live"), std::nullopt);
  std::filesystem::remove_all(dir);
}

TEST(CaId, NamesTheDirectoryOfOneCa) {
  EXPECT_EQ(caId("https://localhost:14000/dir"), "localhost_14000_dir");
  EXPECT_EQ(caId("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org_directory");
  EXPECT_EQ(caId("https://[::1]:14000/dir/"), "___1__14000_dir");
}

}  // namespace
}  // namespace tlsedge::acme
