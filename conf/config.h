// The validated, immutable configuration of a tlsedge process.
//
// Built once by conf::load*() on the control loop; shared read-only with the
// workers through std::shared_ptr<const Config>. A reload builds a whole new
// Config; nothing here is ever mutated after load returns.
//
// Paths are absolute (relative ones in the YAML are resolved against the
// directory of the config file, or the working directory for the embedded
// default). Host names are lower-case, without a trailing dot.
#pragma once

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "conf/scopes.h"

namespace tlsedge::conf {

using Duration = std::chrono::milliseconds;

// A numeric socket address: "0.0.0.0:443", "[::]:443", "127.0.0.1:8080".
struct SocketAddress {
  std::string host;  // numeric IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;
  bool ipv6 = false;
  std::string text;  // as written in the YAML, for messages
  bool operator==(const SocketAddress&) const = default;
};

// A listen address; `proxy_protocol`: connections from
// `proxy_protocol.trusted` sources must open with a PROXY header (v1 or v2),
// and others must not send one.
struct ListenAddress : SocketAddress {
  bool proxyProtocol = false;
};

// A network of trusted sources: "10.0.0.0/8", "2001:db8::/32", or one
// address (a /32 or /128). The address is the network's (no host bits).
struct IpNetwork {
  bool ipv6 = false;
  std::array<uint8_t, 16> bytes{};  // the first 4 for IPv4
  int prefix = 0;
  std::string text;                              // as written
  bool contains(const sockaddr* address) const;  // IPv4-mapped IPv6 is IPv4
};

struct CertificateFiles {
  std::string name;      // key in `certificates:`
  std::string certPath;  // PEM: leaf first, then intermediates
  std::string keyPath;   // PEM private key
};

struct Hsts {
  uint64_t maxAge = 0;  // seconds
  bool includeSubdomains = false;
  bool preload = false;
};

struct StaticResponse {
  int status = 200;
  std::string body;
  std::string contentType = "text/plain; charset=utf-8";
};

struct Route {
  std::string pathPrefix;  // starts with '/'
  // Exactly one of these is set.
  std::string upstream;                   // name of an entry in Config::upstreams
  std::optional<StaticResponse> respond;  // answered by tlsedge itself
};

struct Site {
  std::string name;
  std::vector<std::string> hosts;  // exact names or "*.suffix" (one-label wildcard)
  // Names in Config::certificates or the store: none (the store's newest
  // covering certificate, else tls.default_certificate), one, or two (one
  // ECDSA and one RSA, checked at load time: certstore/binding.h).
  std::vector<std::string> certificates;
  // tls.fallback_certificate: served for the site's hosts when its own
  // certificate is unavailable (a bound one missing or failing to load, or,
  // for a site without tls.certificate, no store certificate covering the
  // host); before tls.default_certificate. Empty: none.
  std::string fallbackCertificate;
  bool redirectHttps = true;  // plain HTTP gets a redirect to https://
  int redirectStatus = 308;   // 308 or 301
  std::optional<Hsts> hsts;
  std::vector<Route> routes;  // in YAML order; routing picks the longest matching prefix
  // `upgrades`: the protocols an HTTP/1.1 Upgrade may switch this site's
  // connections to (a 101 from the origin makes a tunnel), lower-case.
  // Others are not offered to the origin: the request goes on as a plain
  // one. Never h2c (config validation refuses it: an h2c tunnel would carry
  // requests past routing).
  std::vector<std::string> upgrades{"websocket"};
  // tls: { acme: true }: one certificate for all `hosts`, ordered from the
  // top-level `acme:` CA and kept in the store as acmeCertificateName(name).
  bool acme = false;
  // Created through the admin API (kept in <state_dir>/sites, conf/api_sites.h),
  // not read from the YAML; such sites follow the YAML ones in Config::sites.
  bool api = false;
};

// The store entry an ACME site's certificate is kept under: `acme-<site>`.
// A store name is a name (checkName), so such a site's name is at most
// kMaxNameLength - kAcmeCertificatePrefix.size() characters.
inline constexpr std::string_view kAcmeCertificatePrefix = "acme-";
inline std::string acmeCertificateName(std::string_view site) {
  return std::string(kAcmeCertificatePrefix) + std::string(site);
}

// The ACME CA that sites with `tls: { acme: true }` get certificates from.
// The challenge non-wildcard names are validated with; wildcards always
// use dns-01 (and need dnsHook).
enum class AcmeChallenge { kHttp01, kTlsAlpn01, kDns01 };

// `acme: { directory: internal }`: the local issuer instead of a CA's URL.
inline constexpr const char* kInternalIssuer = "internal";

// The key of each certificate's CSR (a fresh one per certificate).
enum class AcmeKeyType { kEcdsaP256, kEcdsaP384, kRsa2048, kRsa3072, kRsa4096 };

// External Account Binding (RFC 8555 section 7.3.4): the key identifier and
// MAC key the CA handed out for binding new accounts to an external account.
struct AcmeEab {
  std::string kid;
  std::string hmacKey;  // base64url, as the CA gives it (never logged)
};

struct Acme {
  std::string directory;  // https://... directory URL, or "internal"
  // directory: internal: certificates from a local CA in the state
  // directory (acme/local_issuer.h), for development and the demo; the
  // fields below but renew_before are then unused.
  bool internal = false;
  std::string email;                      // account contact; empty: none
  std::vector<std::string> trustedRoots;  // PEM files trusted besides the system roots
  AcmeChallenge challenge = AcmeChallenge::kHttp01;
  // DNS-01: `<dnsHook> set|clear _acme-challenge.<name> <value>`; empty: none.
  std::string dnsHook;
  // renew_before: renew when this much validity remains; 0: at a third of
  // the lifetime (acme/schedule.h). The CA's ARI window, when it has one, wins.
  Duration renewBefore{0};
  // Pre-flight before each order (acme/preflight.h): every host resolves and
  // a random probe token is fetched from it through this edge's HTTP
  // listener. Skipped for dns-01 (and wildcard hosts).
  bool preflight = true;
  // preflight_resolve: host -> address used instead of the system resolver
  // by the pre-flight only (like curl --resolve; tests, split horizons).
  std::vector<std::pair<std::string, std::string>> preflightResolve;
  std::optional<AcmeEab> eab;  // newAccount carries an externalAccountBinding
  // The chain (among the CA's `rel="alternate"` ones) whose topmost
  // certificate's issuer has this common name; empty: the CA's default.
  std::string preferredChain;
  AcmeKeyType keyType = AcmeKeyType::kEcdsaP256;
};

// Origin connections over TLS: the origin's certificate is verified against
// `caFile` (or the system roots) for `serverName` (or the server's address).
struct UpstreamTls {
  std::string caFile;      // PEM bundle; empty: the system roots
  std::string serverName;  // SNI and the name verified; empty: no SNI, verify the address
  bool verify = true;      // false: encrypt only (logged as a warning at load)
};

enum class Balance { kRoundRobin, kLeastConnections };

// `keepalive: auto`: a bound, not a size. A pool opens a connection only when
// no idle one is free, so what it holds is the most requests in flight at
// once since its oldest connection was last used, at most idle_timeout ago.
inline constexpr size_t kKeepaliveAuto = 4096;

struct Upstream {
  std::string name;
  std::vector<SocketAddress> servers;
  Balance balance = Balance::kRoundRobin;
  Duration connectTimeout{std::chrono::seconds(5)};
  Duration readTimeout{std::chrono::seconds(60)};  // longest silence while a response is due
  Duration sendTimeout{std::chrono::seconds(60)};  // longest stall writing the request to it
  // Idle connections kept per server and worker; the oldest beyond it is
  // closed. `auto` (the default) is kKeepaliveAuto: the pool then keeps what
  // demand opened (see UpstreamPool::putIdle).
  size_t keepalive = kKeepaliveAuto;
  Duration idleTimeout{std::chrono::seconds(60)};  // an idle pooled connection is closed after
  // Passive health: `maxFails` failed attempts within `failTimeout` take a
  // server out of rotation for `failTimeout` (nginx's max_fails/fail_timeout).
  // 0 disables ejection.
  int maxFails = 1;
  Duration failTimeout{std::chrono::seconds(10)};
  std::optional<UpstreamTls> tls;  // absent: plain HTTP
  // `send_proxy_protocol`: every connection to a server opens with a PROXY
  // v2 header for the client it serves (with TLS version, cipher, SNI and
  // ALPN TLVs), and is reused only by that client's connection.
  bool sendProxyProtocol = false;
  // A response head (status line + fields) over either is refused: 502 to
  // the client, the origin connection closed. It is parsed as it arrives,
  // so an endless head costs no more than this.
  size_t maxResponseHeaderSize = 64 * 1024;
  size_t maxResponseHeaders = 200;
};

// The largest max_response_header_size accepted.
inline constexpr uint64_t kMaxResponseHeaderSize = 1 << 20;

// What one client address may hold and do, in each worker (`limits.per_client`;
// as max_connections, every figure is per worker: SO_REUSEPORT spreads one
// client's connections over the workers). 0 turns a limit off; all are off by
// default. An IPv4 client is its address; an IPv6 one its /ipv6Prefix
// network (one subscriber's allocation). Clients in `exempt` are never
// limited.
struct ClientLimits {
  size_t maxConnections = 0;          // open at once; beyond: the connection is reset
  size_t maxHandshakes = 0;           // TLS handshakes in progress; same
  uint32_t connectionsPerSecond = 0;  // new connections (token bucket); same
  uint32_t connectionBurst = 0;       // the bucket's size; 0: connectionsPerSecond
  uint32_t requestsPerSecond = 0;     // beyond: 429 with Retry-After
  uint32_t requestBurst = 0;          // 0: requestsPerSecond
  int ipv6Prefix = 64;
  std::vector<IpNetwork> exempt;
  // Clients with no connection open that are remembered (their rates); the
  // least recently seen is forgotten first. Clients with connections open
  // are always tracked, so the table holds at most this + max_connections.
  size_t tableSize = 16384;
  bool enabled() const {
    return maxConnections != 0 || maxHandshakes != 0 || connectionsPerSecond != 0 ||
           requestsPerSecond != 0;
  }
};

// What one client connection may send or hold. Timeouts close the connection
// (after a 408 where a request is under way and nothing was answered yet).
struct Limits {
  size_t maxConnections = 10000;  // per worker; beyond it the worker stops accepting
  size_t maxHandshakes = 1000;    // TLS handshakes in progress per worker; same
  Duration handshakeTimeout{std::chrono::seconds(10)};
  Duration headerTimeout{std::chrono::seconds(10)};     // a whole request head must arrive within
  size_t maxHeaderSize = 16 * 1024;                     // request line + headers (431 beyond)
  size_t maxHeaders = 100;                              // header fields (431 beyond)
  uint64_t maxBodySize = 0;                             // request body bytes (413 beyond); 0: none
  Duration bodyTimeout{std::chrono::seconds(60)};       // longest gap while a request body is due
  Duration sendTimeout{std::chrono::seconds(60)};       // longest stall writing to the client
  Duration keepaliveTimeout{std::chrono::seconds(60)};  // idle between requests
  Duration tunnelIdleTimeout{std::chrono::seconds(600)};  // an upgraded connection with no traffic
  size_t http2MaxStreams = 128;  // concurrent streams per HTTP/2 connection (its SETTINGS)
  ClientLimits perClient;
};

// One JSON line per request. Reopened on every reload (SIGHUP), which is how
// log rotation works.
struct AccessLog {
  std::string path;  // absolute
};

// The admin API (admin/admin_server.h): HTTP/1.1 on a Unix socket, mode 0600.
// sun_path holds 108 bytes with the terminating NUL: a longer path is an error.
inline constexpr size_t kMaxUnixSocketPath = 107;

enum class TlsVersion { k1_2, k1_3 };
enum class UnknownSni { kDefault, kReject };

struct Tls {
  TlsVersion minVersion = TlsVersion::k1_2;
  std::string defaultCertificate;  // empty: none
  UnknownSni unknownSni = UnknownSni::kDefault;
  // Session ticket keys: a new one every `ticketKeyRotation`; the
  // `ticketKeysKept` previous ones still decrypt (and get renewed).
  Duration ticketKeyRotation{std::chrono::hours(1)};
  int ticketKeysKept = 2;
  // ALPN offers `h2` before `http/1.1` (proxy/http2_connection.h).
  bool http2 = true;
};

// `storage: { etcd: ... }`: fleet mode (issue 17, being built): the
// fleet's certificates kept in etcd, reached through its v3 JSON gateway.
// Read at start only: a reload that changes it logs that it needs a restart.
struct EtcdStorage {
  // "http://host:port" or "https://host:port" (IPv6 in brackets), as
  // written, no path; https ones only (and at least one) with `tls`.
  std::vector<std::string> endpoints;
  std::string prefix = "/tlsedge";  // starts with '/', no empty name, no trailing '/'
  // `tls`: the CA that signs the endpoints' certificates (required for
  // https), and a client certificate and key (both or neither). Absolute.
  std::string caFile, certFile, keyFile;
  // `key_file`: the fleet key ring that seals private keys in etcd
  // (fleet/fleet_key.h reads and checks it). Absolute.
  std::string fleetKeyFile;
  Duration timeout{2000};  // per request to an endpoint; more than 0
  // `node`: this node's name in the fleet (who holds a site's ACME lock);
  // default the host name. `lease`: the TTL of the node's etcd lease, which
  // holds its ACME locks and shared challenge answers: they vanish this
  // long after the node dies. At least 2 s (etcd's minimum).
  std::string node;
  Duration lease{std::chrono::seconds(15)};

  bool operator==(const EtcdStorage&) const = default;
};

// The HTTPS management listener (`admin.listen`, `admin.tls`, `admin.clients`).
struct Management {
  SocketAddress listen;
  std::string certificateFile;  // admin.tls.certificate: PEM chain, leaf first
  std::string keyFile;          // admin.tls.key
  // admin.tls.client_ca: client certificates are asked for and verified
  // against these roots; "" none (tokens only).
  std::string clientCaFile;
  std::map<std::string, Scopes> clients;  // admin.clients: certificate CN -> scopes
  bool operator==(const Management&) const = default;
};

struct Config {
  std::string sourceName;  // file path, or "<embedded default>"
  int workers = 0;         // resolved: >= 1 ("auto" = number of CPUs)
  std::vector<ListenAddress> httpsListen;
  std::vector<ListenAddress> httpListen;
  // `proxy_protocol.trusted`: the load balancers' networks; required when a
  // listener has proxy_protocol.
  std::vector<IpNetwork> proxyProtocolTrusted;
  std::string stateDir;
  Duration shutdownTimeout{std::chrono::seconds(30)};
  Tls tls;
  Limits limits;
  std::optional<AccessLog> accessLog;  // absent: off
  // `admin.socket`: absolute; default <stateDir>/admin.sock; empty: no admin
  // API (`admin: { socket: "" }`). Changes take effect at the next restart.
  std::string adminSocket;
  // `metrics.listen` (daemon/metrics_endpoint.h): /metrics, /healthz and
  // /readyz over HTTP on this TCP address; default 127.0.0.1:9180; absent
  // (`metrics: { listen: "" }`): off. Port 0 binds a free port (logged).
  // Changes take effect at the next restart.
  std::optional<SocketAddress> metricsListen;
  // `admin.listen` and the rest of the HTTPS management API
  // (admin/access.h); absent: off. Changes take effect at the next restart.
  std::optional<Management> management;
  // `admin.audit_log`: one JSON line per change through the admin API (any
  // transport); default <stateDir>/audit.log; "" none.
  std::string auditLog;
  std::vector<CertificateFiles> certificates;
  std::vector<Site> sites;
  std::vector<Upstream> upstreams;
  std::optional<Acme> acme;  // absent: no site may use tls.acme
  // `storage: { etcd: ... }`; absent: the state directory holds the store.
  std::optional<EtcdStorage> etcd;

  const Upstream* findUpstream(const std::string& name) const;
  const CertificateFiles* findCertificate(const std::string& name) const;
};

using ConfigPtr = std::shared_ptr<const Config>;

// Parses and validates YAML text. `sourceName` is used in messages; relative
// paths resolve against `baseDir`. On failure the Error lists every problem
// found, one per line, each "SOURCE:LINE:COLUMN: KEY: what is wrong".
Result<ConfigPtr> loadString(const std::string& yaml, const std::string& sourceName,
                             const std::string& baseDir);

// Reads and parses a file (errors name the file).
Result<ConfigPtr> loadFile(const std::string& path);

// The embedded default configuration used by `tlsedge run` without -c: a
// state directory under the working directory, a certificate for localhost
// that `run` generates on first start, and a demo site. Text form, so that
// `tlsedge check` and docs can show it.
extern const char* const kDefaultConfigYaml;

}  // namespace tlsedge::conf
