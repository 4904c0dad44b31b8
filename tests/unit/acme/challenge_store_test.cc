#include "acme/challenge_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

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

// What a fleet's sharing saw, answering each share at once with `answer`.
class RecordingSharing : public ChallengeSharing {
 public:
  void share(Kind kind, const std::string& id, const std::string& keyAuthorization,
             Done done) override {
    shared.push_back(std::string(kind == Kind::kHttp01 ? "http " : "alpn ") + id + "=" +
                     keyAuthorization);
    done(answer);
  }
  void unshare(Kind kind, const std::string& id) override {
    unshared.push_back(std::string(kind == Kind::kHttp01 ? "http " : "alpn ") + id);
  }
  Status answer = Ok{};
  std::vector<std::string> shared, unshared;
};

TEST(ChallengeStore, AnswersAreSharedAndTheSharingsOutcomeReported) {
  ChallengeStore store;
  RecordingSharing sharing;
  store.setSharing(&sharing);
  std::optional<Status> outcome;
  store.put("tok", "tok.thumb", [&](Status s) { outcome = s; });
  ASSERT_TRUE(outcome && outcome->ok());
  EXPECT_EQ(store.find("tok"), "tok.thumb");  // this node answers at once
  sharing.answer = makeError("fleet storage unreachable: x", ErrorKind::kUnavailable);
  ASSERT_TRUE(store.putTlsAlpn("Shop.Test", "a.b", [&](Status s) { outcome = s; }).ok());
  ASSERT_TRUE(outcome && !outcome->ok());
  EXPECT_EQ(outcome->error().message, "fleet storage unreachable: x");
  store.remove("tok");
  store.removeTlsAlpn("Shop.Test");
  EXPECT_EQ(sharing.shared, (std::vector<std::string>{"http tok=tok.thumb", "alpn shop.test=a.b"}));
  EXPECT_EQ(sharing.unshared, (std::vector<std::string>{"http tok", "alpn shop.test"}));
}

TEST(ChallengeStore, PeersAnswersAreServedBelowThisNodesOwn) {
  ChallengeStore store;
  store.putShared(ChallengeSharing::Kind::kHttp01, "peer", "peer.auth");
  store.putShared(ChallengeSharing::Kind::kHttp01, "both", "peer.auth");
  store.putShared(ChallengeSharing::Kind::kHttp01, "bad token!", "x");  // never served
  store.put("both", "own.auth");
  EXPECT_EQ(store.find("peer"), "peer.auth");
  EXPECT_EQ(store.find("both"), "own.auth");
  EXPECT_EQ(store.find("bad token!"), std::nullopt);
  // A peer's TLS-ALPN-01 answer: this node makes the certificate itself.
  store.putShared(ChallengeSharing::Kind::kTlsAlpn01, "Shop.Test", "t.thumb");
  auto first = store.findTlsAlpn("shop.test");
  ASSERT_NE(first, nullptr);
  store.putShared(ChallengeSharing::Kind::kTlsAlpn01, "shop.test", "t.thumb");
  EXPECT_EQ(store.findTlsAlpn("shop.test"), first);  // the same answer: not made again
  store.removeShared(ChallengeSharing::Kind::kHttp01, "peer");
  EXPECT_EQ(store.find("peer"), std::nullopt);
  store.clearShared();
  EXPECT_EQ(store.findTlsAlpn("shop.test"), nullptr);
  EXPECT_EQ(store.find("both"), "own.auth");
}

TEST(CaId, NamesTheDirectoryOfOneCa) {
  EXPECT_EQ(caId("https://localhost:14000/dir"), "localhost_14000_dir");
  EXPECT_EQ(caId("https://acme-v02.api.letsencrypt.org/directory"),
            "acme-v02.api.letsencrypt.org_directory");
  EXPECT_EQ(caId("https://[::1]:14000/dir/"), "___1__14000_dir");
}

}  // namespace
}  // namespace tlsedge::acme
