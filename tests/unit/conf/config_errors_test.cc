// Problems with the document's shape and scalar values: syntax, unknown and
// missing keys, wrong types, addresses, durations, ranges.
#include <gtest/gtest.h>

#include "conf/config.h"
#include "tests/unit/conf/problems.h"

namespace tlsedge::conf {
namespace {

using testing::expectProblem;
using testing::kSite;
using testing::kTls;
using testing::problemsOf;

std::string valid(const std::string& extra) { return std::string(kTls) + kSite + extra; }

TEST(ConfigShape, ValidHelperConfigLoads) {
  auto result = loadString(valid(""), "t.yaml", "/base");
  EXPECT_TRUE(result.ok()) << result.error().message;
}

TEST(ConfigShape, YamlSyntaxErrorHasPosition) {
  expectProblem("workers: 2\nsites: [a, b\n", "3:1",
                "YAML syntax error: end of sequence flow not found");
}

TEST(ConfigShape, TabIndentationIsASyntaxError) {
  expectProblem("workers: 2\n\tsites: []\n", "2:1", "YAML syntax error");
}

// Found by tests/fuzz (fuzz_config): a quoted value holding a line break
// split its problem over two lines.
TEST(ConfigShape, ControlCharactersInAProblemAreEscaped) {
  expectProblem("\\[\n\n[\"", "1:1", "expected a map, got `\\[\\n[\"`");
  expectProblem("\"a\\r\\tb\\u0001\"\n", "1:1", "expected a map, got `a\\r\\tb\\x01`");
}

TEST(ConfigShape, SecondDocumentIsRefused) {
  expectProblem(valid("---\nworkers: 2\n"), "8:1", "a second YAML document");
}

TEST(ConfigShape, EmptyDocumentMissesSites) {
  expectProblem("# nothing here\n", "1:1", "sites: required key is missing");
}

TEST(ConfigShape, UnknownTopLevelKeyListsAllowedKeys) {
  expectProblem(valid("sties: []\n"), "7:1",
                "sties: unknown key `sties` (did you mean `sites`?); allowed: workers, listen, "
                "state_dir, shutdown_timeout, tls, limits, access_log, certificates, sites, "
                "upstreams, admin");
}

TEST(ConfigShape, UnknownNestedKeyAndTheMissingOneAreBothReported) {
  const auto lines = problemsOf(std::string(kTls) +
                                "sites:\n"
                                "  - name: s\n"
                                "    hots: [a.example]\n"
                                "    routes: [{ path: /, respond: {} }]\n");
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "t.yaml:4:5: sites[0].hosts: required key is missing");
  EXPECT_EQ(lines[1].rfind("t.yaml:5:5: sites[0].hots: unknown key `hots` (did you mean `hosts`?); "
                           "allowed: name, hosts, tls,",
                           0),
            0u)
      << lines[1];
}

TEST(ConfigShape, DuplicateKeyIsRefused) {
  expectProblem(valid("workers: 2\nworkers: 3\n"), "8:1",
                "workers: duplicate key (first at line 7)");
}

TEST(ConfigShape, TopLevelMustBeAMap) {
  expectProblem("- a\n- b\n", "1:1", "expected a map, got a list");
}

TEST(ConfigShape, ListExpected) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: s\n"
                    "    hosts: a.example\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "5:12", "sites[0].hosts: expected a list, got `a.example`");
}

TEST(ConfigShape, MapExpected) {
  expectProblem(valid("listen: [\"0.0.0.0:443\"]\n"), "7:9", "listen: expected a map, got a list");
}

TEST(ConfigShape, StringExpected) {
  expectProblem(valid("state_dir: { a: 1 }\n"), "7:12", "state_dir: expected a string, got a map");
}

TEST(ConfigShape, IntegerExpected) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: s\n"
                    "    hosts: [a.example]\n"
                    "    redirect_status: permanent\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "6:22", "sites[0].redirect_status: expected an integer 100..599, got `permanent`");
}

TEST(ConfigShape, BooleanExpected) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: s\n"
                    "    hosts: [a.example]\n"
                    "    redirect_https: yes\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "6:21", "sites[0].redirect_https: expected true or false, got `yes`");
}

TEST(ConfigShape, EmptyValueIsReportedAtItsKey) {
  expectProblem(valid("state_dir:\n"), "7:1", "state_dir: expected a string, got nothing");
}

TEST(ConfigShape, MissingRequiredKeyNamesKeyAndParentPosition) {
  expectProblem(
      "tls: { default_certificate: c }\n"
      "certificates:\n"
      "  c: { cert: c.pem }\n" +
          std::string(kSite),
      "3:6", "certificates.c.key: required key is missing");
}

TEST(ConfigShape, SitesMustNotBeEmpty) {
  expectProblem("sites: []\n", "1:8", "sites: at least one site is required");
}

TEST(ConfigShape, EveryProblemIsReportedInDocumentOrder) {
  const auto lines = problemsOf(std::string(kTls) +
                                "sites:\n"
                                "  - name: s\n"
                                "    hosts: [a.example, bad_host]\n"
                                "    routes: [{ path: nope, respond: {} }]\n"
                                "workers: 0\n"
                                "shutdown_timeout: soon\n");
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0].rfind("t.yaml:5:24: sites[0].hosts[1]: ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("t.yaml:6:22: sites[0].routes[0].path: must start with `/`", 0), 0u)
      << lines[1];
  EXPECT_EQ(lines[2].rfind("t.yaml:7:10: workers: must be 1..256, got 0", 0), 0u) << lines[2];
  EXPECT_EQ(lines[3].rfind("t.yaml:8:19: shutdown_timeout: bad duration `soon`", 0), 0u)
      << lines[3];
}

// Scalar values.

TEST(ConfigValues, WorkersOutOfRange) {
  expectProblem(valid("workers: 257\n"), "7:10", "workers: must be 1..256, got 257");
}

TEST(ConfigValues, WorkersNotANumber) {
  expectProblem(valid("workers: many\n"), "7:10",
                "workers: expected `auto` or an integer 1..256, got `many`");
}

TEST(ConfigValues, PortAboveRange) {
  expectProblem(valid("listen:\n  https: [\"0.0.0.0:443\", \"[::]:70000\"]\n"), "8:26",
                "listen.https[1]: port 70000 is out of range (0..65535)");
}

TEST(ConfigValues, PortNotNumeric) {
  expectProblem(valid("listen: { http: [\"0.0.0.0:http\"] }\n"), "7:18",
                "listen.http[0]: port `http` is not a number");
}

TEST(ConfigValues, UpstreamPortZeroIsRefused) {
  expectProblem(valid("upstreams:\n  o: { servers: [\"127.0.0.1:0\"] }\n"), "8:18",
                "upstreams.o.servers[0]: port 0 is out of range (1..65535)");
}

TEST(ConfigValues, HostNameIsNotAnAddress) {
  expectProblem(valid("upstreams:\n  o:\n    servers: [localhost:8080]\n"), "9:15",
                "upstreams.o.servers[0]: `localhost` is not a numeric IPv4 address");
}

TEST(ConfigValues, Ipv6NeedsBrackets) {
  expectProblem(valid("listen: { https: [\"::1:443\"] }\n"), "7:19",
                "listen.https[0]: an IPv6 address needs brackets");
}

TEST(ConfigValues, BadIpv6Literal) {
  expectProblem(valid("listen: { https: [\"[fe80::zz]:443\"] }\n"), "7:19",
                "listen.https[0]: `fe80::zz` is not a numeric IPv6 address");
}

TEST(ConfigValues, AddressWithoutPort) {
  expectProblem(valid("listen: { https: [10.0.0.1] }\n"), "7:19",
                "listen.https[0]: missing `:PORT`");
}

TEST(ConfigValues, SameListenAddressTwice) {
  expectProblem(
      valid("listen:\n  https: [\"[::]:443\"]\n  http: [\"[0::0]:443\", \"0.0.0.0:0\"]\n"), "9:10",
      "listen.http[0]: address [0::0]:443 is already listed at listen.https[0]");
}

TEST(ConfigValues, BadDurationUnit) {
  expectProblem(valid("shutdown_timeout: 10x\n"), "7:19",
                "shutdown_timeout: bad duration `10x`; expected seconds as an integer");
}

TEST(ConfigValues, FractionalDurationIsRefused) {
  expectProblem(valid("shutdown_timeout: 1.5s\n"), "7:19", "shutdown_timeout: bad duration `1.5s`");
}

TEST(ConfigValues, RedirectStatusMustBe301Or308) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: s\n"
                    "    hosts: [a.example]\n"
                    "    redirect_status: 302\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "6:22", "sites[0].redirect_status: must be 301 or 308, got 302");
}

TEST(ConfigValues, MinVersion) {
  expectProblem(std::string("tls: { default_certificate: c, min_version: \"1.1\" }\n"
                            "certificates: { c: { cert: c.pem, key: k.pem } }\n") +
                    kSite,
                "1:45", "tls.min_version: must be \"1.2\" or \"1.3\", got `1.1`");
}

TEST(ConfigValues, UnknownSni) {
  expectProblem(std::string("tls: { default_certificate: c, unknown_sni: drop }\n"
                            "certificates: { c: { cert: c.pem, key: k.pem } }\n") +
                    kSite,
                "1:45", "tls.unknown_sni: must be `default` or `reject`, got `drop`");
}

TEST(ConfigValues, CertificateNameCharacters) {
  expectProblem(std::string("tls: { default_certificate: c }\n"
                            "certificates:\n"
                            "  c: { cert: c.pem, key: k.pem }\n"
                            "  \"my cert\": { cert: a, key: b }\n") +
                    kSite,
                "4:3", "certificates.my cert: name `my cert` has an invalid character");
}

TEST(ConfigValues, EmptyCertificatePath) {
  expectProblem(std::string("tls: { default_certificate: c }\n"
                            "certificates: { c: { cert: \"\", key: k.pem } }\n") +
                    kSite,
                "2:28", "certificates.c.cert: must not be empty");
}

}  // namespace
}  // namespace tlsedge::conf
