// Sites: host names, uniqueness across sites, references to certificates and
// upstreams, TLS binding, routes.
#include <gtest/gtest.h>

#include "conf/config.h"
#include "tests/unit/conf/problems.h"

namespace tlsedge::conf {
namespace {

using testing::expectProblem;
using testing::kSite;
using testing::kTls;
using testing::problemsOf;

// One site whose hosts list (line 5, starting at column 13) is `hosts`.
std::string siteWithHosts(const std::string& hosts) {
  return std::string(kTls) +
         "sites:\n"
         "  - name: s\n"
         "    hosts: [" +
         hosts +
         "]\n"
         "    routes: [{ path: /, respond: {} }]\n";
}

// One site whose routes list is `routes` (lines from 6 on).
std::string siteWithRoutes(const std::string& routes) {
  return std::string(kTls) +
         "sites:\n"
         "  - name: s\n"
         "    hosts: [a.example]\n" +
         routes + "upstreams: { o: { servers: [\"127.0.0.1:8080\"] } }\n";
}

TEST(ConfigHosts, LabelOver63Characters) {
  expectProblem(siteWithHosts(std::string(64, 'a') + ".example"), "5:13",
                "sites[0].hosts[0]: host `" + std::string(64, 'a') +
                    ".example`: label `aaaaaaaaaaaaaaaaaaaaaaaa...` is 64 characters long; at most "
                    "63 are allowed");
}

TEST(ConfigHosts, LabelOf63CharactersIsFine) {
  auto result = loadString(siteWithHosts(std::string(63, 'a') + ".example"), "t.yaml", "/");
  EXPECT_TRUE(result.ok()) << result.error().message;
}

TEST(ConfigHosts, NameOver253Characters) {
  const std::string label(63, 'a');
  const std::string name = label + "." + label + "." + label + "." + std::string(62, 'b');
  ASSERT_EQ(name.size(), 254u);
  expectProblem(siteWithHosts(name), "5:13",
                "sites[0].hosts[0]: host `" + name +
                    "`: host name is 254 characters long; at most 253 are allowed");
}

TEST(ConfigHosts, NameOf253CharactersWithTrailingDotIsFine) {
  const std::string label(63, 'a');
  const std::string name = label + "." + label + "." + label + "." + std::string(61, 'b');
  ASSERT_EQ(name.size(), 253u);
  auto result = loadString(siteWithHosts(name + "."), "t.yaml", "/");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ((*result)->sites[0].hosts[0], name);
}

TEST(ConfigHosts, InvalidCharacter) {
  expectProblem(siteWithHosts("a.example, shop_1.example.com"), "5:24",
                "sites[0].hosts[1]: host `shop_1.example.com`: invalid character `_`");
}

TEST(ConfigHosts, NonAsciiNeedsPunycode) {
  expectProblem(siteWithHosts("b\xc3\xbc"
                              "cher.example"),
                "5:13",
                "sites[0].hosts[0]: host `b\xc3\xbc"
                "cher.example`: non-ASCII character; write "
                "internationalized names in their xn-- form");
}

TEST(ConfigHosts, LabelMustNotStartWithHyphen) {
  expectProblem(siteWithHosts("-a.example"), "5:13", "label `-a` starts or ends with `-`");
}

TEST(ConfigHosts, EmptyLabel) {
  expectProblem(siteWithHosts("a..example"), "5:13",
                "sites[0].hosts[0]: host `a..example`: empty label");
}

TEST(ConfigHosts, WildcardOnlyAsWholeLeftmostLabel) {
  expectProblem(siteWithHosts("\"a.*.example\""), "5:13",
                "sites[0].hosts[0]: host `a.*.example`: `*` is only allowed as the whole leftmost "
                "label");
  expectProblem(siteWithHosts("\"*shop.example\""), "5:13",
                "sites[0].hosts[0]: host `*shop.example`: `*` is only allowed");
  expectProblem(siteWithHosts("\"*.*.example\""), "5:13", "`*` is only allowed");
}

TEST(ConfigHosts, HostsMustNotBeEmpty) {
  expectProblem(siteWithHosts(""), "5:12", "sites[0].hosts: at least one host is required");
}

TEST(ConfigHosts, DuplicateAcrossSitesNamesBothSites) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: shop\n"
                    "    hosts: [shop.example, www.shop.example]\n"
                    "    routes: [{ path: /, respond: {} }]\n"
                    "  - name: blog\n"
                    "    hosts: [blog.example, WWW.Shop.Example.]\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "8:27",
                "sites[1].hosts[1]: host `www.shop.example` is already listed by site `shop` at "
                "sites[0].hosts[1]; a host belongs to one site only (here: `blog`)");
}

TEST(ConfigHosts, DuplicateWithinASite) {
  expectProblem(siteWithHosts("a.example, A.example"), "5:24",
                "sites[0].hosts[1]: host `a.example` is already listed in this site at "
                "sites[0].hosts[0]");
}

TEST(ConfigSites, DuplicateSiteName) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: shop\n"
                    "    hosts: [a.example]\n"
                    "    routes: [{ path: /, respond: {} }]\n"
                    "  - name: shop\n"
                    "    hosts: [b.example]\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "7:11", "sites[1].name: site name `shop` is already used by sites[0]");
}

TEST(ConfigSites, InvalidSiteName) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: " +
                    std::string(65, 'n') +
                    "\n"
                    "    hosts: [a.example]\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "4:11", "sites[0].name: name must be 1..64 characters long, got 65");
}

// Certificate names may be in `certificates:` or in the state directory's
// store, so parsing only checks their syntax; unknown names and sites without
// any certificate are load-time errors (tests/unit/certstore/binding_test.cc).
TEST(ConfigSites, CertificateNamesAreResolvedAtLoadTime) {
  auto named = loadString(std::string(kTls) +
                              "sites:\n"
                              "  - name: s\n"
                              "    hosts: [a.example]\n"
                              "    tls: { certificate: shop-2025 }\n"
                              "    routes: [{ path: /, respond: {} }]\n",
                          "t.yaml", "/base");
  ASSERT_TRUE(named.ok()) << named.error().message;
  EXPECT_EQ((*named)->sites[0].certificates, std::vector<std::string>{"shop-2025"});

  auto unbound = loadString(kSite, "t.yaml", "/base");
  ASSERT_TRUE(unbound.ok()) << unbound.error().message;
  EXPECT_TRUE((*unbound)->sites[0].certificates.empty());
  EXPECT_EQ((*unbound)->tls.defaultCertificate, "");
}

TEST(ConfigSites, CertificateNameSyntax) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: s\n"
                    "    hosts: [a.example]\n"
                    "    tls: { certificate: \"a/b\" }\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "6:25", "sites[0].tls.certificate:");
  expectProblem(std::string("tls: { default_certificate: \"x y\" }\n") + kSite, "1:29",
                "tls.default_certificate:");
}

TEST(ConfigSites, FallbackCertificate) {
  auto withTls = [](const std::string& tls) {
    return std::string(kTls) +
           "sites:\n"
           "  - name: s\n"
           "    hosts: [a.example]\n"
           "    tls: " +
           tls +
           "\n"
           "    routes: [{ path: /, respond: {} }]\n";
  };
  auto loaded =
      loadString(withTls("{ certificate: own, fallback_certificate: spare }"), "t.yaml", "/base");
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ((*loaded)->sites[0].fallbackCertificate, "spare");
  auto unbound = loadString(withTls("{ fallback_certificate: spare }"), "t.yaml", "/base");
  ASSERT_TRUE(unbound.ok()) << unbound.error().message;
  EXPECT_TRUE((*unbound)->sites[0].certificates.empty());
  EXPECT_EQ((*unbound)->sites[0].fallbackCertificate, "spare");

  expectProblem(withTls("{ fallback_certificate: \"a/b\" }"), "6:34",
                "sites[0].tls.fallback_certificate:");
  expectProblem(withTls("{ fallback_certificate: [a, b] }"), "6:34",
                "sites[0].tls.fallback_certificate:");
  expectProblem(withTls("{ certificate: own, fallback_certificate: own }"), "6:52",
                "sites[0].tls.fallback_certificate: `own` is also the site's tls.certificate");
}

TEST(ConfigSites, CertificatePair) {
  auto pair = loadString(std::string(kTls) +
                             "sites:\n"
                             "  - name: s\n"
                             "    hosts: [a.example]\n"
                             "    tls: { certificate: [s-ecdsa, s-rsa] }\n"
                             "    routes: [{ path: /, respond: {} }]\n",
                         "t.yaml", "/base");
  ASSERT_TRUE(pair.ok()) << pair.error().message;
  EXPECT_EQ((*pair)->sites[0].certificates, (std::vector<std::string>{"s-ecdsa", "s-rsa"}));
}

TEST(ConfigSites, CertificateListOfOneToTwo) {
  auto withList = [](const std::string& list) {
    return std::string(kTls) +
           "sites:\n"
           "  - name: s\n"
           "    hosts: [a.example]\n"
           "    tls: { certificate: " +
           list +
           " }\n"
           "    routes: [{ path: /, respond: {} }]\n";
  };
  expectProblem(withList("[a, b, c]"), "6:25",
                "sites[0].tls.certificate: expected one certificate name or a list of two (one "
                "ECDSA, one RSA), got 3 names");
  expectProblem(withList("[]"), "6:25", "got 0 names");
  expectProblem(withList("[a, \"x/y\"]"), "6:29", "sites[0].tls.certificate[1]:");
}

TEST(ConfigSites, BrokenCertificateIsNotReportedAgainAtItsUse) {
  expectProblem(std::string("certificates: { c: { cert: c.pem } }\n") +
                    "sites:\n"
                    "  - name: s\n"
                    "    hosts: [a.example]\n"
                    "    tls: { certificate: c }\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "1:20", "certificates.c.key: required key is missing");
}

// A site with tls.acme, below `head` (which may declare `acme:`).
std::string acmeSite(const std::string& head, const std::string& tls = "{ acme: true }",
                     const std::string& hosts = "[a.example, www.a.example]") {
  return head +
         "sites:\n"
         "  - name: s\n"
         "    hosts: " +
         hosts +
         "\n"
         "    tls: " +
         tls +
         "\n"
         "    routes: [{ path: /, respond: {} }]\n";
}

constexpr const char* kAcme =
    "acme:\n"
    "  directory: https://ca.example/dir\n"
    "  email: ops@example.com\n"
    "  trusted_roots: [roots/test-ca.pem, /etc/ca.pem]\n";

TEST(ConfigAcme, SitesGetTheirCertificateFromTheCa) {
  auto config = loadString(acmeSite(kAcme), "t.yaml", "/base");
  ASSERT_TRUE(config.ok()) << config.error().message;
  ASSERT_TRUE((*config)->acme.has_value());
  EXPECT_EQ((*config)->acme->directory, "https://ca.example/dir");
  EXPECT_EQ((*config)->acme->email, "ops@example.com");
  EXPECT_EQ((*config)->acme->trustedRoots,
            (std::vector<std::string>{"/base/roots/test-ca.pem", "/etc/ca.pem"}));
  EXPECT_TRUE((*config)->sites[0].acme);
  EXPECT_TRUE((*config)->sites[0].certificates.empty());
  auto off = loadString(acmeSite(kAcme, "{ acme: false }"), "t.yaml", "/base");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE((*off)->sites[0].acme);
}

TEST(ConfigAcme, RenewBefore) {
  auto config = loadString(acmeSite(std::string(kAcme) + "  renew_before: 30d\n"), "t.yaml", "/");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ((*config)->acme->renewBefore, std::chrono::hours(24 * 30));
  auto unset = loadString(acmeSite(kAcme), "t.yaml", "/");
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ((*unset)->acme->renewBefore.count(), 0);
  expectProblem(acmeSite("acme: { directory: \"https://x/\", renew_before: 30s }\n"), "1:48",
                "acme.renew_before: must be at least 1m");
  expectProblem(acmeSite("acme: { directory: \"https://x/\", renew_before: soon }\n"), "1:48",
                "acme.renew_before: bad duration");
}

TEST(ConfigAcme, Preflight) {
  auto unset = loadString(acmeSite(kAcme), "t.yaml", "/");
  ASSERT_TRUE(unset.ok()) << unset.error().message;
  EXPECT_TRUE((*unset)->acme->preflight);
  EXPECT_TRUE((*unset)->acme->preflightResolve.empty());
  auto config =
      loadString(acmeSite(std::string(kAcme) + "  preflight: false\n"
                                               "  preflight_resolve: { A.example: 192.0.2.1, "
                                               "www.a.example: \"2001:db8::1\" }\n"),
                 "t.yaml", "/");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_FALSE((*config)->acme->preflight);
  EXPECT_EQ((*config)->acme->preflightResolve,
            (std::vector<std::pair<std::string, std::string>>{{"a.example", "192.0.2.1"},
                                                              {"www.a.example", "2001:db8::1"}}));
  expectProblem(acmeSite(std::string(kAcme) + "  preflight_resolve: { a.example: host.local }\n"),
                "5:35", "acme.preflight_resolve.a.example: must be an IPv4 or IPv6 address");
  expectProblem(
      acmeSite(std::string(kAcme) + "  preflight_resolve: { \"*.a.example\": 192.0.2.1 }\n"),
      "5:24", "must be a host name (no wildcard), got `*.a.example`");
}

TEST(ConfigAcme, SiteAcmeNeedsTheSection) {
  expectProblem(acmeSite(""), "4:18",
                "sites[0].tls.acme: needs a top-level `acme:` section naming the CA");
}

TEST(ConfigAcme, NotBothAcmeAndACertificate) {
  expectProblem(std::string(kAcme) + "certificates: { c: { cert: c.pem, key: k.pem } }\n" +
                    acmeSite("", "{ acme: true, certificate: c }"),
                "9:18", "sites[0].tls.acme: a site gets its certificate either from ACME or");
}

TEST(ConfigAcme, SiteNameLeavesRoomForTheStoreEntry) {
  // The certificate is stored as `acme-<site>`, and store names are at most
  // 64 characters: a 59-character site name fits, a 60-character one would
  // have its certificate refused by the store after the CA issued it.
  auto withName = [](const std::string& name) {
    std::string yaml = acmeSite(kAcme);
    yaml.replace(yaml.find("name: s\n"), 8, "name: " + name + "\n");
    return yaml;
  };
  auto fits = loadString(withName(std::string(59, 'n')), "t.yaml", "/");
  ASSERT_TRUE(fits.ok()) << fits.error().message;
  EXPECT_TRUE((*fits)->sites[0].acme);
  expectProblem(withName(std::string(60, 'n')), "8:18",
                "sites[0].tls.acme: the site's certificate is kept in the store as `acme-" +
                    std::string(60, 'n') +
                    "`, 65 characters, and store names are at most 64: shorten the site name to "
                    "59 characters or fewer");
}

TEST(ConfigAcme, WildcardsNeedDns01) {
  expectProblem(acmeSite(kAcme, "{ acme: true }", "[\"*.a.example\"]"), "8:18",
                "sites[0].tls.acme: host `*.a.example` is a wildcard: only DNS-01 can validate "
                "it, which needs `acme: { dns_hook: ... }`");
  auto config = loadString(acmeSite(std::string(kAcme) + "  dns_hook: hooks/dns\n",
                                    "{ acme: true }", "[\"*.a.example\", a.example]"),
                           "t.yaml", "/base");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ((*config)->acme->dnsHook, "/base/hooks/dns");
  EXPECT_TRUE((*config)->sites[0].acme);
}

TEST(ConfigAcme, ChallengeChoice) {
  auto config = loadString(acmeSite(kAcme), "t.yaml", "/base");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ((*config)->acme->challenge, AcmeChallenge::kHttp01);
  config = loadString(acmeSite(std::string(kAcme) + "  challenge: tls-alpn-01\n"), "t.yaml", "/b");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ((*config)->acme->challenge, AcmeChallenge::kTlsAlpn01);
  expectProblem(acmeSite(std::string(kAcme) + "  challenge: dns-01\n"), "5:14",
                "acme.challenge: dns-01 needs `dns_hook`");
  expectProblem(acmeSite(std::string(kAcme) + "  challenge: http01\n"), "5:14",
                "acme.challenge: must be http-01, tls-alpn-01 or dns-01, got `http01`");
}

// directory: internal selects the local CA; it signs wildcards without DNS-01.
TEST(ConfigAcme, InternalIssuer) {
  auto config = loadString(
      acmeSite("acme: { directory: internal }\n", "{ acme: true }", "[\"*.a.example\", a.example]"),
      "t.yaml", "/base");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE((*config)->acme->internal);
  EXPECT_EQ((*config)->acme->directory, "internal");
  EXPECT_TRUE((*config)->sites[0].acme);
  auto url = loadString(acmeSite(kAcme), "t.yaml", "/base");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_FALSE((*url)->acme->internal);
  expectProblem(acmeSite("acme: { directory: Internal }\n"), "1:20",
                "acme.directory: must be the CA's directory URL");
}

TEST(ConfigAcme, SectionErrors) {
  expectProblem(acmeSite("acme: { email: ops@example.com }\n"), "1:7",
                "acme.directory: required key is missing");
  expectProblem(acmeSite("acme: { directory: ca.example }\n"), "1:20",
                "acme.directory: must be the CA's directory URL (https://...) or `internal` (a "
                "local CA in the state directory, for development), got `ca.example`");
  expectProblem(acmeSite("acme: { directory: \"https://x/\", email: ops }\n"), "1:41",
                "acme.email: must be an email address, got `ops`");
  expectProblem(acmeSite("acme: { directory: \"https://x/\", color: red }\n"), "1:34",
                "acme.color:");
}

TEST(ConfigSites, HstsNeedsMaxAge) {
  expectProblem(std::string(kTls) +
                    "sites:\n"
                    "  - name: s\n"
                    "    hosts: [a.example]\n"
                    "    hsts: { preload: true }\n"
                    "    routes: [{ path: /, respond: {} }]\n",
                "6:11", "sites[0].hsts.max_age: required key is missing");
}

TEST(ConfigRoutes, UnknownUpstream) {
  expectProblem(siteWithRoutes("    routes: [{ path: /, upstream: origin }]\n"), "6:35",
                "sites[0].routes[0].upstream: no upstream named `origin` (defined: o)");
}

TEST(ConfigRoutes, BothUpstreamAndRespond) {
  expectProblem(siteWithRoutes("    routes: [{ path: /, upstream: o, respond: {} }]\n"), "6:14",
                "sites[0].routes[0]: has both `upstream` and `respond`; give exactly one");
}

TEST(ConfigRoutes, NeitherUpstreamNorRespond) {
  expectProblem(siteWithRoutes("    routes:\n      - path: /\n"), "7:9",
                "sites[0].routes[0]: needs `upstream` or `respond`");
}

TEST(ConfigRoutes, DuplicatePath) {
  expectProblem(siteWithRoutes("    routes:\n"
                               "      - { path: /api, upstream: o }\n"
                               "      - { path: /api, respond: {} }\n"),
                "8:17",
                "sites[0].routes[1].path: path `/api` is already routed at sites[0].routes[0]");
}

TEST(ConfigRoutes, PathMustStartWithSlash) {
  expectProblem(siteWithRoutes("    routes: [{ path: api, upstream: o }]\n"), "6:22",
                "sites[0].routes[0].path: must start with `/`");
}

TEST(ConfigRoutes, RoutesMustNotBeEmpty) {
  expectProblem(siteWithRoutes("    routes: []\n"), "6:13",
                "sites[0].routes: at least one route is required");
}

TEST(ConfigRoutes, RespondStatusRange) {
  expectProblem(siteWithRoutes("    routes: [{ path: /, respond: { status: 700 } }]\n"), "6:44",
                "sites[0].routes[0].respond.status: must be 200..599, got 700");
}

TEST(ConfigRoutes, ContentTypeMustNotSplitHeaders) {
  expectProblem(
      siteWithRoutes(
          "    routes: [{ path: /, respond: { content_type: \"text/plain\\r\\nX-Evil: 1\" } }]\n"),
      "6:50", "sites[0].routes[0].respond.content_type: must not contain control characters");
}

TEST(ConfigUpstreams, ServersMustNotBeEmpty) {
  expectProblem(std::string(kTls) + kSite + "upstreams: { o: { servers: [] } }\n", "7:28",
                "upstreams.o.servers: at least one server is required");
}

TEST(ConfigUpstreams, ServersRequired) {
  expectProblem(std::string(kTls) + kSite + "upstreams:\n  o: {}\n", "8:6",
                "upstreams.o.servers: required key is missing");
}

}  // namespace
}  // namespace tlsedge::conf
