// SitesApi: /v1/sites paths and methods, YAML sites read-only, a change
// prepared, kept in the state directory and committed (or refused with
// nothing kept), and withStoredSites reading back what was kept.
// Through the real daemon and TLS clients: tests/integration/test_sites.py.
#include "admin/sites_api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "conf/api_sites.h"

namespace tlsedge::admin {
namespace {

constexpr const char* kBlog =
    R"({"hosts": ["blog.example"], "routes": [{"path": "/", "respond": {"body": "hi"}}]})";

class SitesApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = std::filesystem::temp_directory_path() /
             ("tlsedge-sites-api-" + std::to_string(::getpid()));
    std::filesystem::remove_all(state_);
    auto config = conf::loadString("state_dir: " + state_.string() +
                                       "\nsites:\n  - name: s\n    hosts: [a.example]\n    routes: "
                                       "[{ path: /, respond: {} }]\n",
                                   "t.yaml", "/");
    ASSERT_TRUE(config.ok()) << config.error().message;
    config_ = *config;
    api_ = std::make_unique<SitesApi>(
        SitesApi::Hooks{[this] { return config_; },
                        [this] {
                          return [this](conf::ConfigPtr next) -> Result<SitesApi::Prepared> {
                            ++builds_;
                            if (!refuse_.empty()) return Error{refuse_, ErrorKind::kInvalid};
                            if (reloadDuringBuild_) {
                              reloadDuringBuild_ = false;  // a SIGHUP's new Config, same sites
                              config_ = std::make_shared<const conf::Config>(*config_);
                            }
                            return SitesApi::Prepared(next);
                          };
                        },
                        [this](SitesApi::Prepared prepared, std::function<void(Status)> done) {
                          if (conflicts_ > 0) {
                            --conflicts_;
                            return done(Error{"changed meanwhile", ErrorKind::kConflict});
                          }
                          if (!refuseCommit_.empty()) {
                            return done(Error{refuseCommit_, ErrorKind::kFailed});
                          }
                          config_ = std::static_pointer_cast<const conf::Config>(prepared);
                          ++commits_;
                          done(Ok{});
                        }});
  }
  void TearDown() override { std::filesystem::remove_all(state_); }

  AdminResponse call(const std::string& method, const std::string& target,
                     const std::string& body = "", bool text = false) {
    AdminResponse out;
    api_->handle({method, target, body, text}, [&out](AdminResponse r) { out = std::move(r); });
    return out;
  }
  std::filesystem::path stored(const std::string& name) {
    return state_ / "sites" / name / "site.json";
  }

  std::filesystem::path state_;
  conf::ConfigPtr config_;
  std::unique_ptr<SitesApi> api_;
  std::string refuse_;        // prepare's error, if set
  std::string refuseCommit_;  // commit's error, if set
  bool reloadDuringBuild_ = false;
  int conflicts_ = 0;  // commits refused with kConflict before one succeeds
  int builds_ = 0;
  int commits_ = 0;
};

TEST_F(SitesApiTest, Paths) {
  EXPECT_TRUE(SitesApi::owns("/v1/sites"));
  EXPECT_TRUE(SitesApi::owns("/v1/sites/x"));
  EXPECT_FALSE(SitesApi::owns("/v1/sitesx"));
  EXPECT_EQ(call("POST", "/v1/sites").status, 405);
  AdminResponse r = call("POST", "/v1/sites/x");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, PUT, DELETE");
  EXPECT_EQ(call("GET", "/v1/sites/a/b").status, 404);
  EXPECT_EQ(call("GET", "/v1/sites/nope").status, 404);
  EXPECT_EQ(call("GET", "/v1/sites/%zz").status, 400);
}

TEST_F(SitesApiTest, ListShowsTheSourceOfEachSite) {
  AdminResponse r = call("GET", "/v1/sites");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body.rfind(R"([{"name":"s","source":"config","hosts":["a.example"])", 0), 0u)
      << r.body;
  r = call("GET", "/v1/sites", "", true);
  EXPECT_EQ(r.body, "s  config  a.example\n");
}

TEST_F(SitesApiTest, YamlSitesAreReadOnly) {
  AdminResponse r = call("PUT", "/v1/sites/s", kBlog);
  EXPECT_EQ(r.status, 409);
  EXPECT_NE(r.body.find("site `s` is defined in t.yaml: sites of the configuration file are "
                        "read-only through the API"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(call("DELETE", "/v1/sites/s").status, 409);
  EXPECT_EQ(commits_, 0);
}

TEST_F(SitesApiTest, CreateReplaceRemove) {
  AdminResponse r = call("PUT", "/v1/sites/blog", kBlog);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.body.rfind(R"({"name":"blog","source":"api","hosts":["blog.example"])", 0), 0u)
      << r.body;
  EXPECT_EQ(commits_, 1);
  ASSERT_EQ(config_->sites.size(), 2u);
  EXPECT_TRUE(config_->sites[1].api);
  ASSERT_TRUE(std::filesystem::exists(stored("blog")));
  // Kept as given, and read back at a start or reload.
  auto reread = withStoredSites(*conf::loadString("state_dir: " + state_.string() +
                                                      "\nsites:\n  - name: s\n    hosts: "
                                                      "[a.example]\n    routes: "
                                                      "[{ path: /, respond: {} }]\n",
                                                  "t.yaml", "/"));
  ASSERT_TRUE(reread.ok()) << reread.error().message;
  ASSERT_EQ((*reread)->sites.size(), 2u);
  EXPECT_EQ((*reread)->sites[1].name, "blog");
  EXPECT_TRUE((*reread)->sites[1].api);

  r = call(
      "PUT", "/v1/sites/blog",
      R"({"hosts": ["blog.example", "www.blog.example"], "routes": [{"path": "/", "respond": {}}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(config_->sites[1].hosts.size(), 2u);
  r = call("GET", "/v1/sites/blog", "", true);
  EXPECT_NE(r.body.find("\"www.blog.example\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("source"), std::string::npos) << r.body;  // what a PUT takes back

  r = call("DELETE", "/v1/sites/blog");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(config_->sites.size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(stored("blog")));
  EXPECT_EQ(call("DELETE", "/v1/sites/blog").status, 404);
}

TEST_F(SitesApiTest, RefusedChangesKeepNothing) {
  AdminResponse r = call("PUT", "/v1/sites/blog", R"({"hosts": ["a.example"], "routes": []})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("request body:1:12: hosts[0]: host `a.example` is already listed by site "
                        "`s` at t.yaml sites[0].hosts[0]"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("routes: at least one route is required"), std::string::npos) << r.body;
  refuse_ = "no certificate named `x`";
  r = call("PUT", "/v1/sites/blog", kBlog);
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("no certificate named `x`"), std::string::npos) << r.body;
  EXPECT_EQ(commits_, 0);
  EXPECT_FALSE(std::filesystem::exists(stored("blog")));
}

TEST_F(SitesApiTest, ACommitThatFailsUndoesTheWrite) {
  ASSERT_EQ(call("PUT", "/v1/sites/blog", kBlog).status, 201);
  refuseCommit_ = "a listener cannot be opened";
  AdminResponse r =
      call("PUT", "/v1/sites/blog",
           R"({"hosts": ["other.example"], "routes": [{"path": "/", "respond": {}}]})");
  EXPECT_EQ(r.status, 422);
  EXPECT_NE(r.body.find("a listener cannot be opened"), std::string::npos) << r.body;
  std::ifstream kept(stored("blog"));
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(kept), {}), kBlog);  // the one served
  r = call("DELETE", "/v1/sites/blog");
  EXPECT_EQ(r.status, 422);
  EXPECT_TRUE(std::filesystem::exists(stored("blog")));
  refuseCommit_.clear();
  r = call("PUT", "/v1/sites/new",
           R"({"hosts": ["new.example"], "routes": [{"path": "/", "respond": {}}]})");
  EXPECT_EQ(r.status, 201);
}

TEST_F(SitesApiTest, AReloadWhileBuildingBuildsAgainOnTheNewConfiguration) {
  reloadDuringBuild_ = true;
  AdminResponse r = call("PUT", "/v1/sites/blog", kBlog);
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(builds_, 2);
  EXPECT_EQ(commits_, 1);
  EXPECT_TRUE(std::filesystem::exists(stored("blog")));
  EXPECT_EQ(config_->sites.size(), 2u);
}

TEST_F(SitesApiTest, ACommitInConflictIsBuiltAgainThenRefusedAsBusy) {
  conflicts_ = 2;
  ASSERT_EQ(call("PUT", "/v1/sites/blog", kBlog).status, 201);
  EXPECT_EQ(builds_, 3);
  conflicts_ = 3;
  AdminResponse r = call("DELETE", "/v1/sites/blog");
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(std::filesystem::exists(stored("blog")));  // restored
  EXPECT_EQ(config_->sites.size(), 2u);
}

TEST_F(SitesApiTest, StoredSiteThatNoLongerFitsRefusesTheLoad) {
  std::filesystem::create_directories(stored("blog").parent_path());
  std::ofstream(stored("blog"))
      << R"({"hosts": ["a.example"], "routes": [{"path": "/", "respond": {}}]})";
  auto merged = withStoredSites(config_);
  ASSERT_FALSE(merged.ok());
  EXPECT_NE(merged.error().message.find(stored("blog").string() + ":1:12: hosts[0]"),
            std::string::npos)
      << merged.error().message;
}

// The fleet's replica wrote the state directory's sites: they are served
// when they differ from the running ones, nothing is written; one that does
// not fit is left out (counted) and the others served, and it is read
// again at the next certificate change.
TEST_F(SitesApiTest, StoredChangesAreServed) {
  auto write = [this](const std::string& name, const std::string& text) {
    std::filesystem::create_directories(stored(name).parent_path());
    std::ofstream(stored(name)) << text;
  };
  write("blog", kBlog);
  api_->storedChanged();
  EXPECT_EQ(commits_, 1);
  ASSERT_EQ(config_->sites.size(), 2u);
  EXPECT_EQ(config_->sites[1].name, "blog");
  EXPECT_TRUE(config_->sites[1].api);
  api_->storedChanged();  // the same sites: nothing to serve
  EXPECT_EQ(commits_, 1);

  // A host of the YAML's: that site left out, the other change served.
  write("taker", R"({"hosts": ["a.example"], "routes": [{"path": "/", "respond": {}}]})");
  write("blog", R"({"hosts": ["b.example"], "routes": [{"path": "/", "respond": {}}]})");
  api_->storedChanged();
  EXPECT_EQ(commits_, 2);
  ASSERT_EQ(config_->sites.size(), 2u);
  EXPECT_EQ(config_->sites[1].hosts, std::vector<std::string>{"b.example"});
  EXPECT_EQ(api_->storedRefused(), 1u);
  std::filesystem::remove_all(stored("taker").parent_path());
  api_->certificatesChanged();  // read again: nothing left out, nothing to serve
  EXPECT_EQ(commits_, 2);
  EXPECT_EQ(api_->storedRefused(), 0u);
  const int builds = builds_;
  api_->certificatesChanged();  // nothing left out: nothing read
  EXPECT_EQ(builds_, builds);

  std::filesystem::remove_all(stored("blog").parent_path());
  api_->storedChanged();
  EXPECT_EQ(commits_, 3);
  EXPECT_EQ(config_->sites.size(), 1u);
}

}  // namespace
}  // namespace tlsedge::admin
