#include "conf/config.h"

#include <netinet/in.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "conf/diagnostics.h"
#include "conf/parse.h"
#include "conf/yaml_reader.h"

namespace tlsedge::conf {

const char* const kDefaultConfigYaml = R"(workers: auto
listen:
  https: ["127.0.0.1:8443", "[::1]:8443"]
  http: ["127.0.0.1:8080", "[::1]:8080"]
state_dir: tlsedge-state          # under the working directory
acme:
  directory: internal             # a local CA; trust tlsedge-state/acme/local-ca/ca.pem
sites:
  - name: demo
    hosts: [localhost]
    tls: { acme: true }           # a 7-day certificate from it, renewed like any ACME one
    routes:
      - { path: /, respond: { status: 200, body: "Hello from tlsedge\n" } }
)";

const Upstream* Config::findUpstream(const std::string& name) const {
  for (const Upstream& u : upstreams) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

const CertificateFiles* Config::findCertificate(const std::string& name) const {
  for (const CertificateFiles& c : certificates) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

namespace {

// The header promises absolute paths; a relative or empty baseDir is taken
// from the working directory at load time.
std::string absoluteDir(const std::string& baseDir) {
  std::error_code ec;
  const std::filesystem::path base(baseDir.empty() ? std::string(".") : baseDir);
  auto absolute = std::filesystem::absolute(base, ec);
  if (ec) return base.lexically_normal().string();
  return absolute.lexically_normal().string();
}

}  // namespace

Result<ConfigPtr> loadString(const std::string& yaml, const std::string& sourceName,
                             const std::string& baseDir) {
  Diagnostics diag(sourceName);
  const YamlParse parsed = parseYaml(yaml);
  if (parsed.syntaxError) {
    // The parser stops at its first error: there is nothing more to collect.
    diag.report(parsed.syntaxError->first, "", "YAML syntax error: " + parsed.syntaxError->second);
    return makeError(diag.text());
  }
  const YamlNode root = parsed.root;
  if (parsed.secondDocument) {
    diag.report(*parsed.secondDocument, "",
                "a second YAML document; the configuration is a single document");
  }

  ParseContext ctx{diag, absoluteDir(baseDir), {}, {}};
  auto config = std::make_shared<Config>();
  config->sourceName = sourceName;
  parseConfig(ctx, Field{root, "", root.position(Position{})}, *config);
  if (!diag.empty()) return makeError(diag.text());
  return ConfigPtr(std::move(config));
}

Result<ConfigPtr> loadFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return makeError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buffer[16384];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  // fopen() succeeds on a directory; the read fails with EISDIR.
  const int readError = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (readError != 0) return makeError(path + ": cannot read: " + std::strerror(readError));
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return loadString(text, path, dir);
}

bool IpNetwork::contains(const sockaddr* address) const {
  const uint8_t* ip = nullptr;
  if (address->sa_family == AF_INET && !ipv6) {
    ip = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(address)->sin_addr);
  } else if (address->sa_family == AF_INET6) {
    // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    const auto& a = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    const bool mapped = IN6_IS_ADDR_V4MAPPED(&a);
    if (mapped == ipv6) return false;
    ip = mapped ? a.s6_addr + 12 : a.s6_addr;
  } else {
    return false;
  }
  const size_t whole = static_cast<size_t>(prefix / 8);
  for (size_t i = 0; i < whole; ++i) {
    if (ip[i] != bytes[i]) return false;
  }
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (ip[whole] & mask) == bytes[whole];
}

}  // namespace tlsedge::conf
