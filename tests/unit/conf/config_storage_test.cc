// storage.etcd (conf/parse_storage.cc): fleet mode's etcd, each rule and a
// full example.
#include <gtest/gtest.h>

#include "conf/config.h"
#include "tests/unit/conf/problems.h"

namespace tlsedge::conf {
namespace {

using testing::expectProblem;
using testing::kSite;
using testing::problemsOf;

// `storage: { etcd: ... }` with `lines` (indented 4) as etcd's keys, from
// line 3 on.
std::string withEtcd(const std::string& lines) {
  return "storage:\n"
         "  etcd:\n" +
         lines + kSite;
}

// A valid etcd section but for `lines` in place of its endpoints.
std::string withEndpoints(const std::string& lines) {
  return withEtcd(lines + "    key_file: fleet.key\n");
}

// One endpoint, as a block list item at line 4, column 9.
std::string withEndpoint(const std::string& url, const std::string& more = "") {
  return withEndpoints("    endpoints:\n      - \"" + url + "\"\n" + more);
}

ConfigPtr load(const std::string& yaml) {
  auto config = loadString(yaml, "t.yaml", "/etc/tlsedge");
  EXPECT_TRUE(config.ok()) << config.error().message;
  return config.ok() ? *config : nullptr;
}

TEST(ConfigStorage, AbsentIsTheStateDirectory) {
  auto config = load(kSite);
  ASSERT_NE(config, nullptr);
  EXPECT_FALSE(config->etcd.has_value());
}

TEST(ConfigStorage, Defaults) {
  auto config =
      load(withEtcd("    endpoints: [\"http://127.0.0.1:2379\"]\n"
                    "    key_file: fleet.key\n"));
  ASSERT_NE(config, nullptr);
  ASSERT_TRUE(config->etcd.has_value());
  const EtcdStorage& etcd = *config->etcd;
  EXPECT_EQ(etcd.endpoints, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(etcd.prefix, "/tlsedge");
  EXPECT_EQ(etcd.caFile, "");
  EXPECT_EQ(etcd.certFile, "");
  EXPECT_EQ(etcd.keyFile, "");
  EXPECT_EQ(etcd.fleetKeyFile, "/etc/tlsedge/fleet.key");
  EXPECT_EQ(etcd.timeout, Duration(2000));
}

TEST(ConfigStorage, FullExample) {
  auto config = load(
      withEtcd("    endpoints:\n"
               "      - https://etcd1.example:2379\n"
               "      - \"https://[fd00::2]:2379\"\n"
               "      - https://10.0.0.3:2379\n"
               "    prefix: /fleets/eu-1\n"
               "    tls: { ca: pki/etcd-ca.pem, cert: pki/client.pem, key: /keys/client.key }\n"
               "    key_file: /etc/tlsedge/keys/../fleet.key\n"
               "    timeout: 500ms\n"));
  ASSERT_NE(config, nullptr);
  ASSERT_TRUE(config->etcd.has_value());
  const EtcdStorage& etcd = *config->etcd;
  EXPECT_EQ(etcd.endpoints,
            (std::vector<std::string>{"https://etcd1.example:2379", "https://[fd00::2]:2379",
                                      "https://10.0.0.3:2379"}));
  EXPECT_EQ(etcd.prefix, "/fleets/eu-1");
  EXPECT_EQ(etcd.caFile, "/etc/tlsedge/pki/etcd-ca.pem");
  EXPECT_EQ(etcd.certFile, "/etc/tlsedge/pki/client.pem");
  EXPECT_EQ(etcd.keyFile, "/keys/client.key");
  EXPECT_EQ(etcd.fleetKeyFile, "/etc/tlsedge/fleet.key");
  EXPECT_EQ(etcd.timeout, Duration(500));

  EtcdStorage same = etcd;
  EXPECT_EQ(same, etcd);
  same.prefix = "/other";
  EXPECT_NE(same, etcd);
}

TEST(ConfigStorage, TlsWithoutAClientCertificate) {
  auto config =
      load(withEndpoints("    endpoints: [\"https://etcd.example:2379\"]\n"
                         "    tls: { ca: ca.pem }\n"));
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->etcd->caFile, "/etc/tlsedge/ca.pem");
  EXPECT_EQ(config->etcd->certFile, "");
  EXPECT_EQ(config->etcd->keyFile, "");
}

TEST(ConfigStorage, EndpointsAreRequiredAndNotEmpty) {
  expectProblem(withEtcd("    key_file: fleet.key\n"), "3:5",
                "storage.etcd.endpoints: required key is missing");
  expectProblem(withEndpoints("    endpoints: []\n"), "3:16",
                "storage.etcd.endpoints: at least one endpoint is required");
  expectProblem(withEndpoints("    endpoints: http://a.example:2379\n"), "3:16",
                "storage.etcd.endpoints: expected a list");
}

TEST(ConfigStorage, EndpointUrls) {
  auto bad = [](const std::string& url, const std::string& what) {
    expectProblem(withEndpoint(url), "4:9", "storage.etcd.endpoints[0]: " + what);
  };
  bad("etcd.example:2379",
      "expected http://HOST:PORT or https://HOST:PORT, got `etcd.example:2379`");
  bad("ftp://etcd.example:2379", "expected http://HOST:PORT or https://HOST:PORT");
  bad("HTTP://etcd.example:2379", "expected http://HOST:PORT or https://HOST:PORT");
  bad("http://etcd.example:2379/", "no path, query or user info here");
  bad("http://etcd.example:2379/v3", "no path, query or user info here");
  bad("http://etcd.example:2379?x", "no path, query or user info here");
  bad("http://user@etcd.example:2379", "no path, query or user info here");
  bad("http://etcd.example", "missing `:PORT`; expected HOST:PORT, e.g. etcd1.example:2379");
  bad("http://etcd.example:", "missing port after `:`");
  bad("http://etcd.example:0", "port 0 is out of range (1..65535)");
  bad("http://etcd.example:65536", "port 65536 is out of range (1..65535)");
  bad("http://etcd.example:x", "port `x` is not a number");
  bad("http://:2379", "host ``: empty host name");
  bad("http://etcd_1.example:2379", "host `etcd_1.example`: invalid character `_`");
  bad("http://*.example:2379", "host `*.example`: a wildcard");
  bad("http://fd00::1:2379", "an IPv6 address needs brackets, e.g. [::1]:443");
  bad("http://[fd00::1]", "missing `:PORT` after `]`");
  bad("http://[fd00::1:2379", "missing `]` after the IPv6 address");
  bad("http://[etcd]:2379", "`etcd` is not a numeric IPv6 address");
  expectProblem(withEndpoints("    endpoints: [\"\"]\n"), "3:17",
                "storage.etcd.endpoints[0]: must not be empty");
  // Each endpoint once; every bad one is reported.
  const auto lines =
      problemsOf(withEndpoints("    endpoints:\n"
                               "      - http://a.example:2379\n"
                               "      - http://b.example\n"
                               "      - http://a.example:2379\n"));
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0].rfind("t.yaml:5:9: storage.etcd.endpoints[1]: missing `:PORT`", 0), 0u);
  EXPECT_EQ(lines[1],
            "t.yaml:6:9: storage.etcd.endpoints[2]: endpoint http://a.example:2379 is already "
            "listed at storage.etcd.endpoints[0]");
}

TEST(ConfigStorage, AcceptedEndpointForms) {
  for (const char* url : {"http://[::1]:2379", "http://127.0.0.1:2379", "http://ETCD.Example:1",
                          "http://etcd:65535", "http://etcd.example.:2379"}) {
    auto config = load(withEndpoint(url));
    ASSERT_NE(config, nullptr) << url;
    EXPECT_EQ(config->etcd->endpoints, std::vector<std::string>{url});
  }
}

TEST(ConfigStorage, TlsMakesEveryEndpointHttps) {
  expectProblem(withEndpoint("http://etcd.example:2379", "    tls: { ca: ca.pem }\n"), "4:9",
                "storage.etcd.endpoints[0]: must be https://HOST:PORT: `tls` is set (all "
                "endpoints or none)");
  const auto lines =
      problemsOf(withEndpoints("    endpoints:\n"
                               "      - https://a.example:2379\n"
                               "      - http://b.example:2379\n"
                               "      - http://c.example:2379\n"
                               "    tls: { ca: ca.pem }\n"));
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0].rfind("t.yaml:5:9: storage.etcd.endpoints[1]: must be https://", 0), 0u);
  EXPECT_EQ(lines[1].rfind("t.yaml:6:9: storage.etcd.endpoints[2]: must be https://", 0), 0u);
}

TEST(ConfigStorage, EveryProblemAtOnce) {
  const auto lines =
      problemsOf(withEtcd("    endpoints:\n"
                          "      - http://a.example\n"
                          "      - http://b.example:2379\n"
                          "    tls: { cert: c.pem }\n"
                          "    prefix: fleet\n"
                          "    timeout: 0\n"));
  ASSERT_EQ(lines.size(), 7u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "t.yaml:3:5: storage.etcd.key_file: required key is missing");
  EXPECT_EQ(lines[1].rfind("t.yaml:4:9: storage.etcd.endpoints[0]: missing `:PORT`", 0), 0u);
  EXPECT_EQ(lines[2].rfind("t.yaml:5:9: storage.etcd.endpoints[1]: must be https://", 0), 0u);
  EXPECT_EQ(lines[3].rfind("t.yaml:6:10: storage.etcd.tls.ca: required key is missing", 0), 0u);
  EXPECT_EQ(lines[4].rfind("t.yaml:6:10: storage.etcd.tls: needs both `cert` and `key`", 0), 0u);
  EXPECT_EQ(lines[5].rfind("t.yaml:7:13: storage.etcd.prefix: must start with `/`", 0), 0u);
  EXPECT_EQ(lines[6], "t.yaml:8:14: storage.etcd.timeout: must be more than 0");
}

TEST(ConfigStorage, HttpsNeedsTheCa) {
  // Said once, at the first https endpoint.
  const auto lines =
      problemsOf(withEndpoints("    endpoints:\n"
                               "      - https://a.example:2379\n"
                               "      - https://b.example:2379\n"));
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0],
            "t.yaml:4:9: storage.etcd.endpoints[0]: https needs `tls: { ca: FILE }`, the CA that "
            "signs etcd's certificates");
  expectProblem(withEndpoint("https://a.example:2379", "    tls: { cert: c.pem, key: k.pem }\n"),
                "5:10", "storage.etcd.tls.ca: required key is missing");
  expectProblem(withEndpoint("https://a.example:2379", "    tls: { ca: \"\" }\n"), "5:16",
                "storage.etcd.tls.ca: must not be empty");
}

TEST(ConfigStorage, ClientCertificateNeedsBothFiles) {
  for (const char* tls :
       {"    tls: { ca: ca.pem, cert: c.pem }\n", "    tls: { ca: ca.pem, key: k.pem }\n"}) {
    expectProblem(withEndpoint("https://a.example:2379", tls), "5:10",
                  "storage.etcd.tls: needs both `cert` and `key` (a client certificate), or "
                  "neither");
  }
  expectProblem(withEndpoint("https://a.example:2379", "    tls: { ca: ca.pem, crt: c.pem }\n"),
                "5:24", "storage.etcd.tls.crt: unknown key `crt` (did you mean `cert`?)");
  expectProblem(withEndpoint("https://a.example:2379", "    tls: ca.pem\n"), "5:10",
                "storage.etcd.tls: expected a map");
}

TEST(ConfigStorage, Prefix) {
  auto bad = [](const std::string& prefix, const std::string& what) {
    expectProblem(withEndpoint("http://a.example:2379", "    prefix: \"" + prefix + "\"\n"), "5:13",
                  "storage.etcd.prefix: " + what);
  };
  bad("tlsedge", "must start with `/`, e.g. /tlsedge; got `tlsedge`");
  bad("/tlsedge/", "must not end with `/`");
  bad("/", "must not end with `/`");
  bad("/fleets//eu", "must not have an empty name (`//`)");
  bad("", "must not be empty");
  auto config = load(withEndpoint("http://a.example:2379", "    prefix: /a.b/c-d_e/f\n"));
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->etcd->prefix, "/a.b/c-d_e/f");
}

TEST(ConfigStorage, KeyFileIsRequired) {
  expectProblem(withEtcd("    endpoints: [\"http://a.example:2379\"]\n"), "3:5",
                "storage.etcd.key_file: required key is missing");
  expectProblem(withEtcd("    endpoints: [\"http://a.example:2379\"]\n"
                         "    key_file: \"\"\n"),
                "4:15", "storage.etcd.key_file: must not be empty");
}

TEST(ConfigStorage, Timeout) {
  expectProblem(withEndpoint("http://a.example:2379", "    timeout: 0\n"), "5:14",
                "storage.etcd.timeout: must be more than 0");
  expectProblem(withEndpoint("http://a.example:2379", "    timeout: 0ms\n"), "5:14",
                "storage.etcd.timeout: must be more than 0");
  expectProblem(withEndpoint("http://a.example:2379", "    timeout: soon\n"), "5:14",
                "storage.etcd.timeout: bad duration `soon`");
  auto config = load(withEndpoint("http://a.example:2379", "    timeout: 30\n"));
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(config->etcd->timeout, Duration(30000));
}

TEST(ConfigStorage, UnknownKeysAreRefused) {
  // The unknown backend, and the missing etcd.
  const auto s3 = problemsOf(std::string("storage: { s3: {} }\n") + kSite);
  ASSERT_EQ(s3.size(), 2u) << ::testing::PrintToString(s3);
  EXPECT_EQ(s3[0], "t.yaml:1:10: storage.etcd: required key is missing");
  EXPECT_EQ(s3[1], "t.yaml:1:12: storage.s3: unknown key `s3`; allowed: etcd");
  expectProblem(std::string("storage: {}\n") + kSite, "1:10",
                "storage.etcd: required key is missing");
  expectProblem(std::string("storage: /var/lib/tlsedge\n") + kSite, "1:10",
                "storage: expected a map");
  expectProblem(withEndpoint("http://a.example:2379", "    prefx: /x\n"), "5:5",
                "storage.etcd.prefx: unknown key `prefx` (did you mean `prefix`?); allowed: "
                "endpoints, prefix, tls, key_file, timeout");
  // A typo in a required key: the unknown key and the missing one.
  const auto lines =
      problemsOf(withEtcd("    endpoint: [\"http://a.example:2379\"]\n"
                          "    key_file: fleet.key\n"));
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_NE(lines[0].find("storage.etcd.endpoint: unknown key `endpoint` (did you mean "
                          "`endpoints`?)"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("storage.etcd.endpoints: required key is missing"), std::string::npos)
      << lines[1];
}

}  // namespace
}  // namespace tlsedge::conf
