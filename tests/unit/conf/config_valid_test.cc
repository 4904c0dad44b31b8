// Valid configurations read back field by field; defaults; the embedded
// default; loadFile.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "conf/config.h"

namespace tlsedge::conf {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// What `workers: auto` means: the CPUs in this thread's affinity mask.
int affinityCpus() {
  cpu_set_t set;
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  return CPU_COUNT(&set);
}

const char* const kFull = R"(workers: 3
listen:
  https: ["0.0.0.0:8443", "[::1]:8443"]
  http: ["127.0.0.1:0"]
state_dir: state
shutdown_timeout: 250ms
tls:
  min_version: "1.3"
  default_certificate: shared
  unknown_sni: reject
certificates:
  shared: { cert: certs/shared.pem, key: /etc/keys/shared.key }
  shop-2026: { cert: ../shop/fullchain.pem, key: shop/privkey.pem }
sites:
  - name: shop
    hosts: [Shop.Example.COM., "*.shop.example.com"]
    tls: { certificate: shop-2026 }
    redirect_https: false
    redirect_status: 301
    hsts: { max_age: 31536000, include_subdomains: true, preload: true }
    routes:
      - { path: /, upstream: shop-origin }
      - { path: /healthz, respond: { status: 204, body: "ok\n", content_type: text/html } }
  - name: blog
    hosts: [blog.example.org]
    routes:
      - path: /api
        respond: {}
upstreams:
  shop-origin: { servers: ["127.0.0.1:8080", "[::1]:8081"] }
)";

TEST(ConfigValid, FullConfigReadsBackEveryField) {
  auto result = loadString(kFull, "full.yaml", "/etc/tlsedge");
  ASSERT_TRUE(result.ok()) << result.error().message;
  const Config& c = **result;
  EXPECT_EQ(c.sourceName, "full.yaml");
  EXPECT_EQ(c.workers, 3);

  ASSERT_EQ(c.httpsListen.size(), 2u);
  EXPECT_EQ(c.httpsListen[0].host, "0.0.0.0");
  EXPECT_EQ(c.httpsListen[0].port, 8443);
  EXPECT_FALSE(c.httpsListen[0].ipv6);
  EXPECT_EQ(c.httpsListen[0].text, "0.0.0.0:8443");
  EXPECT_EQ(c.httpsListen[1].host, "::1");
  EXPECT_EQ(c.httpsListen[1].port, 8443);
  EXPECT_TRUE(c.httpsListen[1].ipv6);
  EXPECT_EQ(c.httpsListen[1].text, "[::1]:8443");
  ASSERT_EQ(c.httpListen.size(), 1u);
  EXPECT_EQ(c.httpListen[0].host, "127.0.0.1");
  EXPECT_EQ(c.httpListen[0].port, 0);

  EXPECT_EQ(c.stateDir, "/etc/tlsedge/state");
  EXPECT_EQ(c.shutdownTimeout, milliseconds(250));
  EXPECT_EQ(c.tls.minVersion, TlsVersion::k1_3);
  EXPECT_EQ(c.tls.defaultCertificate, "shared");
  EXPECT_EQ(c.tls.unknownSni, UnknownSni::kReject);

  ASSERT_EQ(c.certificates.size(), 2u);
  EXPECT_EQ(c.certificates[0].name, "shared");
  EXPECT_EQ(c.certificates[0].certPath, "/etc/tlsedge/certs/shared.pem");
  EXPECT_EQ(c.certificates[0].keyPath, "/etc/keys/shared.key");
  EXPECT_EQ(c.certificates[1].name, "shop-2026");
  EXPECT_EQ(c.certificates[1].certPath, "/etc/shop/fullchain.pem");
  EXPECT_EQ(c.certificates[1].keyPath, "/etc/tlsedge/shop/privkey.pem");

  ASSERT_EQ(c.sites.size(), 2u);
  const Site& shop = c.sites[0];
  EXPECT_EQ(shop.name, "shop");
  EXPECT_EQ(shop.hosts, (std::vector<std::string>{"shop.example.com", "*.shop.example.com"}));
  EXPECT_EQ(shop.certificates, std::vector<std::string>{"shop-2026"});
  EXPECT_FALSE(shop.redirectHttps);
  EXPECT_EQ(shop.redirectStatus, 301);
  ASSERT_TRUE(shop.hsts.has_value());
  EXPECT_EQ(shop.hsts->maxAge, 31536000u);
  EXPECT_TRUE(shop.hsts->includeSubdomains);
  EXPECT_TRUE(shop.hsts->preload);
  ASSERT_EQ(shop.routes.size(), 2u);
  EXPECT_EQ(shop.routes[0].pathPrefix, "/");
  EXPECT_EQ(shop.routes[0].upstream, "shop-origin");
  EXPECT_FALSE(shop.routes[0].respond.has_value());
  EXPECT_EQ(shop.routes[1].pathPrefix, "/healthz");
  EXPECT_EQ(shop.routes[1].upstream, "");
  ASSERT_TRUE(shop.routes[1].respond.has_value());
  EXPECT_EQ(shop.routes[1].respond->status, 204);
  EXPECT_EQ(shop.routes[1].respond->body, "ok\n");
  EXPECT_EQ(shop.routes[1].respond->contentType, "text/html");

  const Site& blog = c.sites[1];
  EXPECT_EQ(blog.name, "blog");
  EXPECT_EQ(blog.hosts, std::vector<std::string>{"blog.example.org"});
  EXPECT_TRUE(blog.certificates.empty());  // falls back to tls.default_certificate
  EXPECT_TRUE(blog.redirectHttps);
  EXPECT_EQ(blog.redirectStatus, 308);
  EXPECT_FALSE(blog.hsts.has_value());
  ASSERT_EQ(blog.routes.size(), 1u);
  EXPECT_EQ(blog.routes[0].pathPrefix, "/api");
  ASSERT_TRUE(blog.routes[0].respond.has_value());
  EXPECT_EQ(blog.routes[0].respond->status, 200);
  EXPECT_EQ(blog.routes[0].respond->body, "");
  EXPECT_EQ(blog.routes[0].respond->contentType, "text/plain; charset=utf-8");

  ASSERT_EQ(c.upstreams.size(), 1u);
  EXPECT_EQ(c.upstreams[0].name, "shop-origin");
  ASSERT_EQ(c.upstreams[0].servers.size(), 2u);
  EXPECT_EQ(c.upstreams[0].servers[0].text, "127.0.0.1:8080");
  EXPECT_EQ(c.upstreams[0].servers[1].host, "::1");
  EXPECT_EQ(c.upstreams[0].servers[1].port, 8081);

  ASSERT_NE(c.findUpstream("shop-origin"), nullptr);
  EXPECT_EQ(c.findUpstream("shop-origin")->servers.size(), 2u);
  EXPECT_EQ(c.findUpstream("nope"), nullptr);
  ASSERT_NE(c.findCertificate("shop-2026"), nullptr);
  EXPECT_EQ(c.findCertificate("shop-2026")->keyPath, "/etc/tlsedge/shop/privkey.pem");
  EXPECT_EQ(c.findCertificate("nope"), nullptr);
}

TEST(ConfigValid, DefaultsApplyWhenKeysAreOmitted) {
  auto result = loadString(R"(certificates: { c: { cert: c.pem, key: k.pem } }
tls:
sites:
  - name: s
    hosts: [a.example]
    tls: { certificate: c }
    routes: [{ path: /, respond: { body: hi } }]
)",
                           "t.yaml", "/base");
  ASSERT_TRUE(result.ok()) << result.error().message;
  const Config& c = **result;
  EXPECT_EQ(c.workers, affinityCpus());
  ASSERT_EQ(c.httpsListen.size(), 2u);
  EXPECT_EQ(c.httpsListen[0].text, "0.0.0.0:443");
  EXPECT_EQ(c.httpsListen[1].text, "[::]:443");
  EXPECT_TRUE(c.httpsListen[1].ipv6);
  ASSERT_EQ(c.httpListen.size(), 2u);
  EXPECT_EQ(c.httpListen[0].text, "0.0.0.0:80");
  EXPECT_EQ(c.httpListen[1].port, 80);
  EXPECT_EQ(c.stateDir, "/var/lib/tlsedge");
  EXPECT_EQ(c.shutdownTimeout, seconds(30));
  EXPECT_EQ(c.tls.minVersion, TlsVersion::k1_2);
  EXPECT_EQ(c.tls.defaultCertificate, "");
  EXPECT_EQ(c.tls.unknownSni, UnknownSni::kDefault);
  EXPECT_TRUE(c.upstreams.empty());
  ASSERT_EQ(c.sites.size(), 1u);
  EXPECT_TRUE(c.sites[0].redirectHttps);
  EXPECT_EQ(c.sites[0].redirectStatus, 308);
  EXPECT_FALSE(c.sites[0].hsts.has_value());
  EXPECT_EQ(c.sites[0].routes[0].respond->status, 200);
  EXPECT_EQ(c.sites[0].routes[0].respond->body, "hi");
}

constexpr const char* kWorkersAuto = R"(workers: auto
listen: { https: [], http: [] }
shutdown_timeout: 5
certificates: { c: { cert: c.pem, key: k.pem } }
tls: { default_certificate: c }
sites: [{ name: s, hosts: [a.example], routes: [{ path: /, respond: {} }] }]
)";

TEST(ConfigValid, WorkersAutoCountsOnlyTheCpusTheProcessMayUse) {
  // Pinned to one CPU (taskset -c 0, CPUAffinity=0, a one-CPU cpuset), auto
  // is one worker, not one per CPU of the machine.
  std::thread pinned([] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
    auto result = loadString(kWorkersAuto, "t.yaml", "/base");
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_EQ((*result)->workers, 1);
  });
  pinned.join();
}

TEST(ConfigValid, WorkersAutoAndExplicitListsMayBeEmpty) {
  auto result = loadString(kWorkersAuto, "t.yaml", "/base");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ((*result)->workers, affinityCpus());
  EXPECT_TRUE((*result)->httpsListen.empty());
  EXPECT_TRUE((*result)->httpListen.empty());
  EXPECT_EQ((*result)->shutdownTimeout, seconds(5));
}

TEST(ConfigValid, EmbeddedDefaultLoads) {
  auto result = loadString(kDefaultConfigYaml, "<embedded default>", "/srv/run");
  ASSERT_TRUE(result.ok()) << result.error().message;
  const Config& c = **result;
  EXPECT_EQ(c.sourceName, "<embedded default>");
  EXPECT_GE(c.workers, 1);
  ASSERT_EQ(c.httpsListen.size(), 2u);
  EXPECT_EQ(c.httpsListen[0].text, "127.0.0.1:8443");
  EXPECT_EQ(c.httpsListen[1].host, "::1");
  ASSERT_EQ(c.httpListen.size(), 2u);
  EXPECT_EQ(c.httpListen[0].port, 8080);
  EXPECT_EQ(c.stateDir, "/srv/run/tlsedge-state");
  // The demo site's certificate comes from the internal issuer (a local CA).
  EXPECT_TRUE(c.tls.defaultCertificate.empty());
  EXPECT_TRUE(c.certificates.empty());
  ASSERT_TRUE(c.acme.has_value());
  EXPECT_TRUE(c.acme->internal);
  EXPECT_EQ(c.acme->directory, "internal");
  ASSERT_EQ(c.sites.size(), 1u);
  EXPECT_EQ(c.sites[0].name, "demo");
  EXPECT_TRUE(c.sites[0].acme);
  EXPECT_EQ(c.sites[0].hosts, std::vector<std::string>{"localhost"});
  ASSERT_EQ(c.sites[0].routes.size(), 1u);
  ASSERT_TRUE(c.sites[0].routes[0].respond.has_value());
  EXPECT_EQ(c.sites[0].routes[0].respond->body, "Hello from tlsedge\n");
}

// docs/configuration.md shows the embedded default; the two must not drift.
TEST(ConfigValid, EmbeddedDefaultMatchesTheDocumentation) {
  std::ifstream in(std::string(TLSEDGE_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "cannot read docs/configuration.md";
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string doc = buffer.str();
  const size_t section = doc.find("## The embedded default");
  ASSERT_NE(section, std::string::npos);
  const std::string fence = "```yaml\n";
  const size_t begin = doc.find(fence, section);
  ASSERT_NE(begin, std::string::npos);
  const size_t end = doc.find("```", begin + fence.size());
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(doc.substr(begin + fence.size(), end - begin - fence.size()),
            std::string(kDefaultConfigYaml));
}

class ConfigFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("tlsedge_conf_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "etc");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigFile, RelativePathsResolveAgainstTheFilesDirectory) {
  const std::string path = write("etc/tlsedge.yaml", std::string(kFull));
  auto result = loadFile(path);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ((*result)->sourceName, path);
  EXPECT_EQ((*result)->stateDir, (dir_ / "etc/state").string());
  EXPECT_EQ((*result)->findCertificate("shop-2026")->certPath,
            (dir_ / "shop/fullchain.pem").string());
}

TEST_F(ConfigFile, ProblemsNameTheFileAsGiven) {
  const std::string path = write("etc/bad.yaml", "workers: 0\n");
  auto result = loadFile(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, path + ":1:1: sites: required key is missing\n" + path +
                                        ":1:10: workers: must be 1..256, got 0");
}

TEST_F(ConfigFile, MissingFileNamesPathAndReason) {
  const std::string path = (dir_ / "absent.yaml").string();
  auto result = loadFile(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, path + ": cannot open: No such file or directory");
}

TEST_F(ConfigFile, DirectoryIsNotAConfigFile) {
  const std::string path = (dir_ / "etc").string();
  auto result = loadFile(path);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, path + ": cannot read: Is a directory");
}

}  // namespace
}  // namespace tlsedge::conf
