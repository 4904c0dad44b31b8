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

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"

namespace tlsedge::conf {

using Duration = std::chrono::milliseconds;

// A numeric socket address: "0.0.0.0:443", "[::]:443", "127.0.0.1:8080".
struct SocketAddress {
  std::string host;  // numeric IPv4 or IPv6 literal, without brackets
  uint16_t port = 0;
  bool ipv6 = false;
  std::string text;  // as written in the YAML, for messages
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
  std::string certificate;         // name in Config::certificates; empty: tls.default_certificate
  bool redirectHttps = true;       // plain HTTP gets a redirect to https://
  int redirectStatus = 308;        // 308 or 301
  std::optional<Hsts> hsts;
  std::vector<Route> routes;  // in YAML order; routing picks the longest matching prefix
};

struct Upstream {
  std::string name;
  std::vector<SocketAddress> servers;
};

enum class TlsVersion { k1_2, k1_3 };
enum class UnknownSni { kDefault, kReject };

struct Tls {
  TlsVersion minVersion = TlsVersion::k1_2;
  std::string defaultCertificate;  // empty: none
  UnknownSni unknownSni = UnknownSni::kDefault;
};

struct Config {
  std::string sourceName;  // file path, or "<embedded default>"
  int workers = 0;         // resolved: >= 1 ("auto" = number of CPUs)
  std::vector<SocketAddress> httpsListen;
  std::vector<SocketAddress> httpListen;
  std::string stateDir;
  Duration shutdownTimeout{std::chrono::seconds(30)};
  Tls tls;
  std::vector<CertificateFiles> certificates;
  std::vector<Site> sites;
  std::vector<Upstream> upstreams;

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
