// limits, access_log and the per-upstream options: values read back, defaults
// apply, and every bad value is reported where it is.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include "conf/config.h"
#include "problems.h"

namespace tlsedge::conf {
namespace {
using namespace std::chrono;
using testing::expectProblem;
using testing::kSite;
using testing::kTls;

Result<ConfigPtr> load(const std::string& yaml) {
  return loadString(std::string(kTls) + kSite + yaml, "t.yaml", "/base");
}

TEST(ConfigOptions, LimitsReadBack) {
  auto c = load(R"(limits:
  max_connections: 5000
  max_handshakes: 200
  handshake_timeout: 3s
  header_timeout: 2s
  max_header_size: 8k
  max_headers: 50
  max_body_size: 10m
  body_timeout: 30s
  send_timeout: 20s
  keepalive_timeout: 75s
  tunnel_idle_timeout: 1h
  http2_max_concurrent_streams: 64
access_log: { path: logs/access.log }
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const Limits& l = (*c)->limits;
  EXPECT_EQ(l.maxConnections, 5000u);
  EXPECT_EQ(l.maxHandshakes, 200u);
  EXPECT_EQ(l.handshakeTimeout, seconds(3));
  EXPECT_EQ(l.headerTimeout, seconds(2));
  EXPECT_EQ(l.maxHeaderSize, 8192u);
  EXPECT_EQ(l.maxHeaders, 50u);
  EXPECT_EQ(l.maxBodySize, 10u << 20);
  EXPECT_EQ(l.bodyTimeout, seconds(30));
  EXPECT_EQ(l.sendTimeout, seconds(20));
  EXPECT_EQ(l.keepaliveTimeout, seconds(75));
  EXPECT_EQ(l.tunnelIdleTimeout, hours(1));
  EXPECT_EQ(l.http2MaxStreams, 64u);
  ASSERT_TRUE((*c)->accessLog.has_value());
  EXPECT_EQ((*c)->accessLog->path, "/base/logs/access.log");
}

TEST(ConfigOptions, DefaultsWhenOmitted) {
  auto c = load("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const Limits& l = (*c)->limits;
  EXPECT_EQ(l.maxHeaderSize, 16384u);
  EXPECT_EQ(l.maxHeaders, 100u);
  EXPECT_EQ(l.maxBodySize, 0u);
  EXPECT_EQ(l.headerTimeout, seconds(10));
  EXPECT_EQ(l.keepaliveTimeout, seconds(60));
  EXPECT_EQ(l.http2MaxStreams, 128u);
  EXPECT_TRUE((*c)->tls.http2);
  EXPECT_FALSE((*c)->accessLog.has_value());
}

TEST(ConfigOptions, Http2Setting) {
  auto c = loadString(std::string("tls: { http2: false }\n") + kSite, "t.yaml", "/base");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE((*c)->tls.http2);
  expectProblem(std::string("tls: { http2: sometimes }\n") + kSite, "1:15", "tls.http2:");
  expectProblem(std::string(kTls) + kSite + "limits: { http2_max_concurrent_streams: 0 }\n", "7:41",
                "limits.http2_max_concurrent_streams:");
}

TEST(ConfigOptions, TicketKeysReadBackAndDefaults) {
  auto defaults = load("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ((*defaults)->tls.ticketKeyRotation, hours(1));
  EXPECT_EQ((*defaults)->tls.ticketKeysKept, 2);

  auto c = loadString(std::string("tls:\n"
                                  "  default_certificate: c\n"
                                  "  ticket_key_rotation: 90s\n"
                                  "  ticket_keys_kept: 0\n"
                                  "certificates: { c: { cert: c.pem, key: k.pem } }\n") +
                          kSite,
                      "t.yaml", "/base");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->tls.ticketKeyRotation, seconds(90));
  EXPECT_EQ((*c)->tls.ticketKeysKept, 0);
}

TEST(ConfigOptions, TicketKeyProblems) {
  const std::string certs = "certificates: { c: { cert: c.pem, key: k.pem } }\n";
  expectProblem("tls: { default_certificate: c, ticket_key_rotation: 0 }\n" + certs + kSite, "1:53",
                "tls.ticket_key_rotation: must be more than 0");
  expectProblem("tls: { default_certificate: c, ticket_key_rotation: 0s }\n" + certs + kSite,
                "1:53", "tls.ticket_key_rotation: must be more than 0");
  expectProblem("tls: { default_certificate: c, ticket_key_rotation: soon }\n" + certs + kSite,
                "1:53", "tls.ticket_key_rotation:");
  expectProblem("tls: { default_certificate: c, ticket_keys_kept: -1 }\n" + certs + kSite, "1:50",
                "tls.ticket_keys_kept:");
  expectProblem("tls: { default_certificate: c, ticket_keys_kept: 17 }\n" + certs + kSite, "1:50",
                "tls.ticket_keys_kept:");
}

TEST(ConfigOptions, UpstreamOptionsReadBack) {
  auto c = load(R"(upstreams:
  plain: { servers: ["127.0.0.1:80"] }
  fixed: { servers: ["127.0.0.1:81"], keepalive: 32 }
  named_auto: { servers: ["127.0.0.1:82"], keepalive: auto }
  secure:
    servers: ["127.0.0.1:443", "127.0.0.2:443"]
    balance: least_connections
    connect_timeout: 250ms
    read_timeout: 5s
    send_timeout: 6s
    keepalive: 0
    send_proxy_protocol: true
    idle_timeout: 15s
    max_fails: 3
    fail_timeout: 30s
    tls: { ca: origin-ca.pem, server_name: Origin.Example.NET. }
  insecure: { servers: ["127.0.0.1:443"], tls: { verify: false } }
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const Upstream& plain = *(*c)->findUpstream("plain");
  EXPECT_EQ(plain.balance, Balance::kRoundRobin);
  EXPECT_EQ(plain.connectTimeout, seconds(5));
  EXPECT_EQ(plain.readTimeout, seconds(60));
  EXPECT_EQ(plain.keepalive, kKeepaliveAuto);
  EXPECT_EQ((*c)->findUpstream("fixed")->keepalive, 32u);
  EXPECT_EQ((*c)->findUpstream("named_auto")->keepalive, kKeepaliveAuto);
  EXPECT_EQ(plain.maxFails, 1);
  EXPECT_EQ(plain.failTimeout, seconds(10));
  EXPECT_FALSE(plain.tls.has_value());

  const Upstream& secure = *(*c)->findUpstream("secure");
  EXPECT_EQ(secure.balance, Balance::kLeastConnections);
  EXPECT_EQ(secure.connectTimeout, milliseconds(250));
  EXPECT_EQ(secure.readTimeout, seconds(5));
  EXPECT_EQ(secure.sendTimeout, seconds(6));
  EXPECT_EQ(secure.keepalive, 0u);
  EXPECT_TRUE(secure.sendProxyProtocol);
  EXPECT_FALSE(plain.sendProxyProtocol);
  EXPECT_EQ(secure.idleTimeout, seconds(15));
  EXPECT_EQ(secure.maxFails, 3);
  EXPECT_EQ(secure.failTimeout, seconds(30));
  ASSERT_TRUE(secure.tls.has_value());
  EXPECT_EQ(secure.tls->caFile, "/base/origin-ca.pem");
  EXPECT_EQ(secure.tls->serverName, "origin.example.net");
  EXPECT_TRUE(secure.tls->verify);

  const Upstream& insecure = *(*c)->findUpstream("insecure");
  ASSERT_TRUE(insecure.tls.has_value());
  EXPECT_FALSE(insecure.tls->verify);
  EXPECT_EQ(insecure.tls->caFile, "");
}

TEST(ConfigOptions, UpstreamResponseHeadLimits) {
  auto c = load(R"(upstreams:
  plain: { servers: ["127.0.0.1:80"] }
  tight: { servers: ["127.0.0.1:80"], max_response_header_size: 8k, max_response_headers: 20 }
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->findUpstream("plain")->maxResponseHeaderSize, 65536u);
  EXPECT_EQ((*c)->findUpstream("plain")->maxResponseHeaders, 200u);
  EXPECT_EQ((*c)->findUpstream("tight")->maxResponseHeaderSize, 8192u);
  EXPECT_EQ((*c)->findUpstream("tight")->maxResponseHeaders, 20u);

  const std::string base =
      std::string(kTls) + kSite + "upstreams:\n  u: { servers: [\"127.0.0.1:80\"], ";
  expectProblem(base + "max_response_header_size: 100 }\n", "8:61",
                "upstreams.u.max_response_header_size: must be at least 1k, got 100");
  expectProblem(base + "max_response_header_size: 2m }\n", "8:61",
                "upstreams.u.max_response_header_size: must be at most 1048576 bytes");
  expectProblem(base + "max_response_headers: 0 }\n", "8:57", "upstreams.u.max_response_headers:");
}

TEST(ConfigOptions, SiteUpgrades) {
  auto defaults = load("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ((*defaults)->sites[0].upgrades, std::vector<std::string>{"websocket"});

  const auto withUpgrades = [](const std::string& list) {
    return std::string(kTls) +
           "sites:\n"
           "  - name: s\n"
           "    hosts: [a.example]\n"
           "    upgrades: " +
           list +
           "\n"
           "    routes: [{ path: /, respond: {} }]\n";
  };
  auto listed = loadString(withUpgrades("[WebSocket, x-custom, websocket]"), "t.yaml", "/base");
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  EXPECT_EQ((*listed)->sites[0].upgrades, (std::vector<std::string>{"websocket", "x-custom"}));
  auto none = loadString(withUpgrades("[]"), "t.yaml", "/base");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE((*none)->sites[0].upgrades.empty());

  expectProblem(withUpgrades("[websocket, h2c]"), "6:27",
                "sites[0].upgrades[1]: `h2c` cannot be tunnelled");
  expectProblem(withUpgrades("[H2]"), "6:16", "sites[0].upgrades[0]: `H2` cannot be tunnelled");
  expectProblem(withUpgrades("[\"web socket\"]"), "6:16",
                "sites[0].upgrades[0]: `web socket` is not a protocol name");
  expectProblem(withUpgrades("websocket"), "6:15", "sites[0].upgrades:");
}

TEST(ConfigOptions, AdminSocketDefaultPathAndOff) {
  auto defaults = load("state_dir: /var/lib/x\n");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ((*defaults)->adminSocket, "/var/lib/x/admin.sock");
  auto relative = load("admin: { socket: run/admin.sock }\n");
  ASSERT_TRUE(relative.ok()) << relative.error().message;
  EXPECT_EQ((*relative)->adminSocket, "/base/run/admin.sock");
  auto off = load("admin: { socket: \"\" }\n");
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_EQ((*off)->adminSocket, "");
  // Exactly the 107 bytes sun_path can hold (with its NUL) is fine.
  auto longest = load("admin: { socket: /" + std::string(106, 'a') + " }\n");
  ASSERT_TRUE(longest.ok()) << longest.error().message;
}

// kTls + kSite take 6 lines; the option under test starts on line 7.
TEST(ConfigOptions, BadAdminSocketIsReportedWhereItIs) {
  const std::string base = std::string(kTls) + kSite;
  expectProblem(base + "admin: { socket: /" + std::string(107, 'a') + " }\n", "7:18",
                "admin.socket: the path /" + std::string(107, 'a') +
                    " is 108 bytes, over the 107 of a Unix socket path");
  expectProblem(
      base + "state_dir: /" + std::string(100, 's') + "\n", "7:12",
      "state_dir: the default admin socket /" + std::string(100, 's') + "/admin.sock is 112 bytes");
  expectProblem(base + "admin: { path: /a.sock }\n", "7:10", "admin.path: unknown key `path`");
  expectProblem(base + "admin: { socket: [a] }\n", "7:18", "admin.socket:");
}

TEST(ConfigOptions, MetricsListenDefaultPortZeroAndOff) {
  auto defaults = load("state_dir: /var/lib/x\n");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  ASSERT_TRUE((*defaults)->metricsListen.has_value());
  EXPECT_EQ((*defaults)->metricsListen->host, "127.0.0.1");
  EXPECT_EQ((*defaults)->metricsListen->port, 9180);
  auto any = load("metrics: { listen: \"[::1]:0\" }\n");
  ASSERT_TRUE(any.ok()) << any.error().message;
  ASSERT_TRUE((*any)->metricsListen.has_value());
  EXPECT_EQ((*any)->metricsListen->host, "::1");
  EXPECT_EQ((*any)->metricsListen->port, 0);
  EXPECT_TRUE((*any)->metricsListen->ipv6);
  auto off = load("metrics: { listen: \"\" }\n");
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_FALSE((*off)->metricsListen.has_value());
}

TEST(ConfigOptions, BadMetricsListenIsReportedWhereItIs) {
  const std::string base = std::string(kTls) + kSite;
  expectProblem(base + "metrics: { listen: \"localhost:9180\" }\n", "7:20", "metrics.listen:");
  expectProblem(base + "metrics: { listen: \"127.0.0.1:99999\" }\n", "7:20", "metrics.listen:");
  expectProblem(base + "metrics: { listen: [a] }\n", "7:20", "metrics.listen:");
  expectProblem(base + "metrics: { port: 1 }\n", "7:12", "metrics.port: unknown key `port`");
  expectProblem(base + "metrics: 9180\n", "7:10", "metrics:");
}

TEST(ConfigOptions, BadLimitsAreReportedWhereTheyAre) {
  const std::string base = std::string(kTls) + kSite;
  expectProblem(base + "limits: { max_header_size: 100 }\n", "7:28",
                "limits.max_header_size: must be at least 1k");
  expectProblem(base + "limits: { max_header_size: 2m }\n", "7:28",
                "limits.max_header_size: must be at most 1048576 bytes, got 2m");
  expectProblem(base + "limits: { max_body_size: 5 GB }\n", "7:26",
                "limits.max_body_size: bad size `5 GB`");
  expectProblem(base + "limits: { header_timeout: 0 }\n", "7:27",
                "limits.header_timeout: must be more than 0");
  expectProblem(base + "limits: { max_connections: 0 }\n", "7:28",
                "limits.max_connections: must be 1..10000000, got 0");
  expectProblem(base + "limits: { keepalive: 5s }\n", "7:11",
                "limits.keepalive: unknown key `keepalive`");
  expectProblem(base + "access_log: {}\n", "7:13", "access_log.path: required key is missing");
  expectProblem(base + "access_log: { path: \"\" }\n", "7:21",
                "access_log.path: must not be empty");
}

sockaddr_storage ip(const char* text) {
  sockaddr_storage s{};
  if (inet_pton(AF_INET, text, &reinterpret_cast<sockaddr_in*>(&s)->sin_addr) == 1) {
    s.ss_family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, text, &reinterpret_cast<sockaddr_in6*>(&s)->sin6_addr), 1);
    s.ss_family = AF_INET6;
  }
  return s;
}

TEST(ConfigOptions, ProxyProtocolListenersAndTrustedNetworks) {
  auto c = load(
      "listen:\n"
      "  https: [\"127.0.0.1:8443\", { address: \"127.0.0.1:9443\", proxy_protocol: true }]\n"
      "  http: [{ address: \"[::1]:8080\" }]\n"
      "proxy_protocol: { trusted: [10.0.0.0/8, \"2001:db8::/32\", 192.0.2.7, 172.16.0.0/12] }\n");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const Config& k = **c;
  ASSERT_EQ(k.httpsListen.size(), 2u);
  EXPECT_FALSE(k.httpsListen[0].proxyProtocol);
  EXPECT_TRUE(k.httpsListen[1].proxyProtocol);
  EXPECT_EQ(k.httpsListen[1].port, 9443);
  ASSERT_EQ(k.httpListen.size(), 1u);
  EXPECT_FALSE(k.httpListen[0].proxyProtocol);
  EXPECT_TRUE(k.httpListen[0].ipv6);
  ASSERT_EQ(k.proxyProtocolTrusted.size(), 4u);
  auto in = [&](size_t i, const char* address) {
    const sockaddr_storage s = ip(address);
    return k.proxyProtocolTrusted[i].contains(reinterpret_cast<const sockaddr*>(&s));
  };
  EXPECT_TRUE(in(0, "10.200.1.2"));
  EXPECT_FALSE(in(0, "11.0.0.1"));
  EXPECT_TRUE(in(0, "::ffff:10.0.0.1"));  // IPv4 on a dual-stack socket
  EXPECT_FALSE(in(1, "::ffff:10.0.0.1"));
  EXPECT_TRUE(in(1, "2001:db8:ffff::1"));
  EXPECT_FALSE(in(1, "2001:db9::1"));
  EXPECT_TRUE(in(2, "192.0.2.7"));
  EXPECT_FALSE(in(2, "192.0.2.8"));
  EXPECT_TRUE(in(3, "172.31.255.255"));  // a prefix that is not a whole byte
  EXPECT_FALSE(in(3, "172.32.0.0"));
}

TEST(ConfigOptions, BadProxyProtocolSettingsAreReportedWhereTheyAre) {
  const std::string base = std::string(kTls) + kSite;
  expectProblem(base + "listen: { https: [{ address: \"127.0.0.1:1\", proxy_protocol: true }] }\n",
                "7:9",
                "listen: listener 127.0.0.1:1 has proxy_protocol, but proxy_protocol.trusted "
                "names no network");
  expectProblem(base + "listen: { https: [{ proxy_protocol: true }] }\n", "7:19",
                "listen.https[0].address: required key is missing");
  expectProblem(base + "listen: { https: [{ address: \"127.0.0.1:1\", proxy_protocol: maybe }] }\n",
                "7:61", "listen.https[0].proxy_protocol: expected true or false, got `maybe`");
  expectProblem(base + "proxy_protocol: { trusted: [10.1.0.0/8] }\n", "7:29",
                "proxy_protocol.trusted[0]: `10.1.0.0/8` has bits set past its /8 prefix");
  expectProblem(base + "proxy_protocol: { trusted: [10.0.0.0/33] }\n", "7:29",
                "proxy_protocol.trusted[0]: prefix `33` is not 0..32");
  expectProblem(base + "proxy_protocol: { trusted: [lb.example] }\n", "7:29",
                "proxy_protocol.trusted[0]: `lb.example` is not a numeric IPv4 or IPv6 address");
  expectProblem(base + "proxy_protocol: { networks: [] }\n", "7:19",
                "proxy_protocol.networks: unknown key");
}

TEST(ConfigOptions, BadUpstreamOptionsAreReportedWhereTheyAre) {
  const std::string base =
      std::string(kTls) + kSite + "upstreams:\n  o:\n    servers: [\"127.0.0.1:80\"]\n";
  expectProblem(base + "    balance: random\n", "10:14",
                "upstreams.o.balance: must be `round_robin` or `least_connections`, got `random`");
  expectProblem(base + "    max_fails: -1\n", "10:16", "upstreams.o.max_fails: must be 0..1000");
  expectProblem(base + "    keepalive: lots\n", "10:16",
                "upstreams.o.keepalive: expected `auto` or an integer 0..100000, got `lots`");
  expectProblem(base + "    keepalive: 100001\n", "10:16",
                "upstreams.o.keepalive: must be 0..100000");
  expectProblem(base + "    connect_timeout: 0ms\n", "10:22",
                "upstreams.o.connect_timeout: must be more than 0");
  expectProblem(base + "    tls: { server_name: \"*.example.com\" }\n", "10:25",
                "upstreams.o.tls.server_name: must be a host name, not a wildcard");
  expectProblem(base + "    tls: { server_name: \"bad_name\" }\n", "10:25",
                "upstreams.o.tls.server_name:");
  expectProblem(base + "    tls: { verify: false, ca: ca.pem }\n", "10:10",
                "upstreams.o.tls: `ca` has no effect with `verify: false`");
  expectProblem(base + "    tls: { sni: a.example }\n", "10:12",
                "upstreams.o.tls.sni: unknown key");
}

}  // namespace
}  // namespace tlsedge::conf
