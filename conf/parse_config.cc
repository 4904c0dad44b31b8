#include "conf/parse.h"

#include <algorithm>
#include <map>
#include <optional>

#include "base/cpus.h"
#include "conf/values.h"

namespace tlsedge::conf {
namespace {

constexpr int kMaxWorkers = 256;
constexpr int kMaxTicketKeysKept = 16;

// `workers: auto` (and the default): one per CPU the process may run on.
int autoWorkers() { return static_cast<int>(std::min<unsigned>(usableCpus(), kMaxWorkers)); }

void parseWorkers(ParseContext& ctx, const Field& field, Config& config) {
  if (auto n = readIntOrAuto(ctx.diag, field, 1, kMaxWorkers, autoWorkers())) {
    config.workers = static_cast<int>(*n);
  }
}

struct ParsedAddress {
  ListenAddress address;
  Field field;
};

// The valid addresses of a list (the others are reported); nullopt if the
// value is not a list at all. With `listen`, an item may also be a map
// `{ address: ..., proxy_protocol: true }`.
std::optional<std::vector<ParsedAddress>> readAddresses(ParseContext& ctx, const Field& field,
                                                        int minPort, bool listen = false) {
  auto items = readList(ctx.diag, field);
  if (!items) return std::nullopt;
  std::vector<ParsedAddress> out;
  for (const Field& item : *items) {
    Field addressField = item;
    std::optional<bool> proxyProtocol;
    if (listen && item.node.isMap()) {
      MapReader options(ctx.diag, item, {"address", "proxy_protocol"});
      auto a = options.require("address");
      if (!a) continue;
      addressField = *a;
      if (auto f = options.get("proxy_protocol")) {
        proxyProtocol = readBool(ctx.diag, *f);
        if (!proxyProtocol) continue;
      }
    }
    auto text = readString(ctx.diag, addressField);
    if (!text) continue;
    auto address = parseSocketAddress(*text, minPort);
    if (!address) {
      ctx.diag.report(addressField.pos, addressField.path, address.error().message);
      continue;
    }
    ParsedAddress parsed{{std::move(*address)}, item};
    parsed.address.proxyProtocol = proxyProtocol.value_or(false);
    out.push_back(std::move(parsed));
  }
  return out;
}

}  // namespace

void readNetworks(ParseContext& ctx, const Field& field, std::vector<IpNetwork>& out) {
  auto items = readList(ctx.diag, field);
  if (!items) return;
  for (const Field& item : *items) {
    auto text = readString(ctx.diag, item);
    if (!text) continue;
    auto network = parseIpNetwork(*text);
    if (!network) {
      ctx.diag.report(item.pos, item.path, network.error().message);
      continue;
    }
    out.push_back(std::move(*network));
  }
}

namespace {

// `proxy_protocol: { trusted: [networks] }`.
void parseProxyProtocol(ParseContext& ctx, const Field& field, Config& config) {
  MapReader pp(ctx.diag, field, {"trusted"});
  auto trusted = pp.get("trusted");
  if (!pp.isMap() || !trusted) return;
  readNetworks(ctx, *trusted, config.proxyProtocolTrusted);
}

void parseListen(ParseContext& ctx, const Field& field, Config& config) {
  MapReader listen(ctx.diag, field, {"https", "http"});
  // canonical address -> key path of its first listing
  std::map<std::string, std::string> seen;
  auto readSide = [&](std::string_view key, std::vector<ListenAddress>& out) {
    auto side = listen.get(key);
    if (!side) return;
    out.clear();
    auto addresses = readAddresses(ctx, *side, 0, true);
    if (!addresses) return;
    for (ParsedAddress& parsed : *addresses) {
      // With SO_REUSEPORT a second bind of the same address succeeds, and the
      // kernel would spread connections over both sockets (even a TLS and a
      // plain one). Port 0 binds a fresh port each time, so it may repeat.
      if (parsed.address.port != 0) {
        auto [it, fresh] = seen.emplace(canonicalAddress(parsed.address), parsed.field.path);
        if (!fresh) {
          ctx.diag.report(parsed.field.pos, parsed.field.path,
                          "address " + parsed.address.text + " is already listed at " + it->second);
          continue;
        }
      }
      out.push_back(std::move(parsed.address));
    }
  };
  readSide("https", config.httpsListen);
  readSide("http", config.httpListen);
}

void parseTls(ParseContext& ctx, const Field& field, Config& config) {
  MapReader tls(ctx.diag, field,
                {"min_version", "default_certificate", "unknown_sni", "ticket_key_rotation",
                 "ticket_keys_kept", "http2"});
  if (auto f = tls.get("min_version")) {
    if (auto v = readString(ctx.diag, *f)) {
      if (*v == "1.2") {
        config.tls.minVersion = TlsVersion::k1_2;
      } else if (*v == "1.3") {
        config.tls.minVersion = TlsVersion::k1_3;
      } else {
        ctx.diag.report(f->pos, f->path, "must be \"1.2\" or \"1.3\", got `" + *v + "`");
      }
    }
  }
  if (auto f = tls.get("http2")) {
    if (auto v = readBool(ctx.diag, *f)) config.tls.http2 = *v;
  }
  if (auto f = tls.get("default_certificate")) {
    // The name may be in `certificates:` or in the state directory's store:
    // checked when the certificates are loaded (certstore/binding.h).
    if (auto name = readNonEmptyString(ctx.diag, *f)) {
      if (Status valid = checkName(*name); !valid.ok()) {
        ctx.diag.report(f->pos, f->path, valid.error().message);
      } else {
        config.tls.defaultCertificate = *name;
      }
    }
  }
  if (auto f = tls.get("unknown_sni")) {
    if (auto v = readString(ctx.diag, *f)) {
      if (*v == "default") {
        config.tls.unknownSni = UnknownSni::kDefault;
      } else if (*v == "reject") {
        config.tls.unknownSni = UnknownSni::kReject;
      } else {
        ctx.diag.report(f->pos, f->path, "must be `default` or `reject`, got `" + *v + "`");
      }
    }
  }
  if (auto f = tls.get("ticket_key_rotation")) {
    if (auto d = readDuration(ctx.diag, *f)) {
      if (d->count() == 0) {
        ctx.diag.report(f->pos, f->path, "must be more than 0");
      } else {
        config.tls.ticketKeyRotation = *d;
      }
    }
  }
  if (auto f = tls.get("ticket_keys_kept")) {
    if (auto n = readInt(ctx.diag, *f, 0, kMaxTicketKeysKept)) {
      config.tls.ticketKeysKept = static_cast<int>(*n);
    }
  }
}

// Reads a map from names to objects, checking each name; calls `parseOne`
// for every entry whose name is valid.
template <typename ParseOne>
void parseNamedMap(ParseContext& ctx, const Field& field, std::set<std::string, std::less<>>& names,
                   ParseOne parseOne) {
  MapReader map(ctx.diag, field, {});
  for (const MapReader::Entry& entry : map.entries()) {
    names.insert(entry.key);
    auto valid = checkName(entry.key);
    if (!valid) {
      ctx.diag.report(entry.keyField.pos, entry.keyField.path, valid.error().message);
      continue;
    }
    parseOne(entry);
  }
}

void parseCertificates(ParseContext& ctx, const Field& field, Config& config) {
  parseNamedMap(ctx, field, ctx.certificateNames, [&](const MapReader::Entry& entry) {
    MapReader files(ctx.diag, entry.value, {"cert", "key"});
    auto cert = files.require("cert");
    auto key = files.require("key");
    std::optional<std::string> certPath = cert ? readNonEmptyString(ctx.diag, *cert) : std::nullopt;
    std::optional<std::string> keyPath = key ? readNonEmptyString(ctx.diag, *key) : std::nullopt;
    if (!files.isMap() || !certPath || !keyPath) return;
    config.certificates.push_back(CertificateFiles{entry.key, resolvePath(ctx.baseDir, *certPath),
                                                   resolvePath(ctx.baseDir, *keyPath)});
  });
}

void parseUpstreams(ParseContext& ctx, const Field& field, Config& config) {
  parseNamedMap(ctx, field, ctx.upstreamNames, [&](const MapReader::Entry& entry) {
    MapReader upstream(ctx.diag, entry.value,
                       {"servers", "balance", "connect_timeout", "read_timeout", "send_timeout",
                        "keepalive", "idle_timeout", "max_fails", "fail_timeout", "tls",
                        "max_response_header_size", "max_response_headers", "send_proxy_protocol"});
    auto servers = upstream.require("servers");
    if (!servers) return;
    auto addresses = readAddresses(ctx, *servers, 1);
    if (!addresses) return;
    if (addresses->empty() && (servers->node.isNull() || servers->node.size() == 0)) {
      ctx.diag.report(servers->pos, servers->path, "at least one server is required");
    }
    Upstream out;
    out.name = entry.key;
    for (ParsedAddress& parsed : *addresses) out.servers.push_back(std::move(parsed.address));
    parseUpstreamOptions(ctx, upstream, out);
    config.upstreams.push_back(std::move(out));
  });
}

// admin.tls: { certificate, key, client_ca }.
void parseManagementTls(ParseContext& ctx, const Field& field, Management& out) {
  MapReader tls(ctx.diag, field, {"certificate", "key", "client_ca"});
  if (!tls.isMap()) return;
  const std::pair<const char*, std::string*> files[] = {{"certificate", &out.certificateFile},
                                                        {"key", &out.keyFile},
                                                        {"client_ca", &out.clientCaFile}};
  for (const auto& [key, path] : files) {
    auto f = std::string_view(key) == "client_ca" ? tls.get(key) : tls.require(key);
    if (!f) continue;
    if (auto text = readNonEmptyString(ctx.diag, *f)) *path = resolvePath(ctx.baseDir, *text);
  }
}

// admin.clients: { CN: [scope, ...] }.
void parseManagementClients(ParseContext& ctx, const Field& field, Management& out) {
  MapReader clients(ctx.diag, field, {});
  if (!clients.isMap()) return;
  for (const MapReader::Entry& entry : clients.entries()) {
    auto list = readList(ctx.diag, entry.value);
    if (!list) continue;
    std::vector<std::string> names;
    for (const Field& item : *list) {
      if (auto name = readNonEmptyString(ctx.diag, item)) names.push_back(*name);
    }
    auto scopes = parseScopes(names);
    if (!scopes) {
      ctx.diag.report(entry.value.pos, entry.value.path, scopes.error().message);
      continue;
    }
    out.clients[entry.key] = *scopes;
  }
}

// admin.listen and what it needs: tls (required), clients (client_ca).
void parseManagement(ParseContext& ctx, const MapReader& admin, Config& config) {
  auto listen = admin.get("listen");
  auto tls = admin.get("tls");
  auto clients = admin.get("clients");
  if (!listen) {
    for (const auto& f : {tls, clients}) {
      if (f) ctx.diag.report(f->pos, f->path, "needs admin.listen (the HTTPS management API)");
    }
    return;
  }
  auto text = readString(ctx.diag, *listen);
  if (!text || text->empty()) return;  // "": off
  auto address = parseSocketAddress(*text, 0);
  if (!address) {
    ctx.diag.report(listen->pos, listen->path, address.error().message);
    return;
  }
  Management out;
  out.listen = std::move(*address);
  if (!tls) {
    ctx.diag.report(listen->pos, listen->path,
                    "the management API is HTTPS only: admin.tls needs certificate and key");
    return;
  }
  parseManagementTls(ctx, *tls, out);
  if (clients) {
    parseManagementClients(ctx, *clients, out);
    if (out.clientCaFile.empty()) {
      ctx.diag.report(clients->pos, clients->path,
                      "client certificates need admin.tls.client_ca to verify them");
    }
  }
  config.management = std::move(out);
}

// `admin: { socket: PATH, audit_log: PATH, listen: ..., tls: ..., clients:
// ... }`; socket "" turns the admin socket off. Runs after state_dir,
// whose value makes the defaults.
void parseAdmin(ParseContext& ctx, const Field* field, const Field* stateDirField, Config& config) {
  config.adminSocket = config.stateDir + "/admin.sock";
  config.auditLog = config.stateDir + "/audit.log";
  if (field == nullptr) {
    if (config.adminSocket.size() > kMaxUnixSocketPath && stateDirField != nullptr) {
      ctx.diag.report(
          stateDirField->pos, stateDirField->path,
          "the default admin socket " + config.adminSocket + " is " +
              std::to_string(config.adminSocket.size()) + " bytes, over the " +
              std::to_string(kMaxUnixSocketPath) +
              " of a Unix socket path; set a shorter `admin.socket` (or \"\" for none)");
    }
    return;
  }
  MapReader admin(ctx.diag, *field, {"socket", "audit_log", "listen", "tls", "clients"});
  if (!admin.isMap()) return;
  if (auto audit = admin.get("audit_log")) {
    if (auto path = readString(ctx.diag, *audit)) {
      config.auditLog = path->empty() ? "" : resolvePath(ctx.baseDir, *path);
    }
  }
  parseManagement(ctx, admin, config);
  auto socket = admin.get("socket");
  if (!socket) return;
  auto path = readString(ctx.diag, *socket);
  if (!path) return;
  config.adminSocket = path->empty() ? "" : resolvePath(ctx.baseDir, *path);
  if (config.adminSocket.size() > kMaxUnixSocketPath) {
    ctx.diag.report(socket->pos, socket->path,
                    "the path " + config.adminSocket + " is " +
                        std::to_string(config.adminSocket.size()) + " bytes, over the " +
                        std::to_string(kMaxUnixSocketPath) + " of a Unix socket path");
  }
}

// `metrics: { listen: ADDRESS }`; "" turns the metrics endpoint off.
void parseMetrics(ParseContext& ctx, const Field& field, Config& config) {
  MapReader metrics(ctx.diag, field, {"listen"});
  auto listen = metrics.get("listen");
  if (!metrics.isMap() || !listen) return;
  auto text = readString(ctx.diag, *listen);
  if (!text) return;
  if (text->empty()) {
    config.metricsListen.reset();
    return;
  }
  auto address = parseSocketAddress(*text, 0);
  if (!address) {
    ctx.diag.report(listen->pos, listen->path, address.error().message);
    return;
  }
  config.metricsListen = std::move(*address);
}

}  // namespace

std::string definedNames(const std::set<std::string, std::less<>>& names) {
  if (names.empty()) return "(none are defined)";
  std::string out = "(defined: ";
  bool first = true;
  for (const std::string& name : names) {
    if (!first) out += ", ";
    out += name;
    first = false;
  }
  return out + ")";
}

void parseConfig(ParseContext& ctx, const Field& root, Config& config) {
  MapReader top(ctx.diag, root,
                {"workers", "listen", "state_dir", "shutdown_timeout", "tls", "limits",
                 "access_log", "certificates", "sites", "upstreams", "admin", "metrics", "acme",
                 "storage", "proxy_protocol"});
  if (!top.isMap()) return;

  config.workers = autoWorkers();
  if (auto f = top.get("workers")) parseWorkers(ctx, *f, config);

  config.httpsListen = {{*parseSocketAddress("0.0.0.0:443", 0)},
                        {*parseSocketAddress("[::]:443", 0)}};
  config.httpListen = {{*parseSocketAddress("0.0.0.0:80", 0)}, {*parseSocketAddress("[::]:80", 0)}};
  if (auto f = top.get("listen")) parseListen(ctx, *f, config);
  if (auto f = top.get("proxy_protocol")) parseProxyProtocol(ctx, *f, config);
  if (config.proxyProtocolTrusted.empty()) {
    for (const auto* side : {&config.httpsListen, &config.httpListen}) {
      for (const ListenAddress& a : *side) {
        if (!a.proxyProtocol) continue;
        auto f = top.get("listen");
        ctx.diag.report(f->pos, f->path,
                        "listener " + a.text +
                            " has proxy_protocol, but proxy_protocol.trusted "
                            "names no network: whose headers would it believe?");
      }
    }
  }

  config.stateDir = "/var/lib/tlsedge";
  auto stateDir = top.get("state_dir");
  if (stateDir) {
    if (auto dir = readNonEmptyString(ctx.diag, *stateDir))
      config.stateDir = resolvePath(ctx.baseDir, *dir);
  }
  auto admin = top.get("admin");
  parseAdmin(ctx, admin ? &*admin : nullptr, stateDir ? &*stateDir : nullptr, config);
  config.metricsListen = *parseSocketAddress("127.0.0.1:9180", 0);
  if (auto f = top.get("metrics")) parseMetrics(ctx, *f, config);
  if (auto f = top.get("shutdown_timeout")) {
    if (auto d = readDuration(ctx.diag, *f)) config.shutdownTimeout = *d;
  }

  if (auto f = top.get("limits")) parseLimits(ctx, *f, config.limits);
  if (auto f = top.get("access_log")) parseAccessLog(ctx, *f, config.accessLog);
  if (auto f = top.get("certificates")) parseCertificates(ctx, *f, config);
  if (auto f = top.get("upstreams")) parseUpstreams(ctx, *f, config);
  if (auto f = top.get("tls")) parseTls(ctx, *f, config);
  if (auto f = top.get("acme")) parseAcme(ctx, *f, config);
  if (auto f = top.get("storage")) parseStorage(ctx, *f, config);
  if (auto f = top.require("sites")) parseSites(ctx, *f, config.sites);
}

}  // namespace tlsedge::conf
