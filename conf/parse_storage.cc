// The top-level `storage` section: where the store lives. `etcd` is fleet
// mode's (issue 17); without `storage:`, the state directory.
#include <unistd.h>

#include <map>

#include "conf/parse.h"
#include "conf/values.h"

namespace tlsedge::conf {
namespace {

// `prefix`: "/tlsedge", "/fleets/eu": a '/' before each name, no name
// empty, no trailing '/'.
bool checkPrefix(ParseContext& ctx, const Field& field, const std::string& prefix) {
  std::string what;
  if (!prefix.starts_with('/')) {
    what = "must start with `/`";
  } else if (prefix.ends_with('/')) {
    what = "must not end with `/`";
  } else if (prefix.find("//") != std::string::npos) {
    what = "must not have an empty name (`//`)";
  }
  if (what.empty()) return true;
  ctx.diag.report(field.pos, field.path, what + ", e.g. /tlsedge; got `" + prefix + "`");
  return false;
}

struct Endpoint {
  std::string url;
  bool https = false;
  Field field;
};

// The valid endpoints of the list into `out` (the others are reported);
// false when one is invalid or the list is empty.
bool readEndpoints(ParseContext& ctx, const Field& field, std::vector<Endpoint>& out) {
  auto items = readList(ctx.diag, field);
  if (!items) return false;
  if (items->empty()) {
    ctx.diag.report(field.pos, field.path,
                    "at least one endpoint is required (http://HOST:PORT or https://HOST:PORT)");
    return false;
  }
  std::map<std::string, std::string> seen;  // URL -> key path of its first listing
  bool ok = true;
  for (const Field& item : *items) {
    auto url = readNonEmptyString(ctx.diag, item);
    if (!url) {
      ok = false;
      continue;
    }
    auto https = parseEndpointUrl(*url);
    if (!https) {
      ctx.diag.report(item.pos, item.path, https.error().message);
      ok = false;
      continue;
    }
    if (auto [it, fresh] = seen.emplace(*url, item.path); !fresh) {
      ctx.diag.report(item.pos, item.path,
                      "endpoint " + *url + " is already listed at " + it->second);
      ok = false;
      continue;
    }
    out.push_back(Endpoint{*url, *https, item});
  }
  return ok;
}

// `tls: { ca, cert, key }`: false when it is invalid (reported).
bool parseEtcdTls(ParseContext& ctx, const Field& field, EtcdStorage& etcd) {
  MapReader tls(ctx.diag, field, {"ca", "cert", "key"});
  if (!tls.isMap()) return false;
  bool ok = true;
  auto path = [&](std::optional<Field> f, std::string& out) {
    if (!f) return;
    if (auto p = readNonEmptyString(ctx.diag, *f)) {
      out = resolvePath(ctx.baseDir, *p);
    } else {
      ok = false;
    }
  };
  auto ca = tls.require("ca");
  if (!ca) ok = false;
  path(ca, etcd.caFile);
  auto cert = tls.get("cert");
  auto key = tls.get("key");
  if (cert.has_value() != key.has_value()) {
    ctx.diag.report(field.pos, field.path,
                    "needs both `cert` and `key` (a client certificate), or neither");
    ok = false;
  }
  path(cert, etcd.certFile);
  path(key, etcd.keyFile);
  return ok;
}

// The default node name: the host name, "node" when it has none.
std::string hostName() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == 0) return "node";
  return name;
}

void parseEtcd(ParseContext& ctx, const Field& field, Config& config) {
  MapReader map(ctx.diag, field,
                {"endpoints", "prefix", "tls", "key_file", "timeout", "node", "lease"});
  if (!map.isMap()) return;
  EtcdStorage etcd;
  bool ok = true;

  std::vector<Endpoint> endpoints;
  auto endpointsField = map.require("endpoints");
  if (!endpointsField || !readEndpoints(ctx, *endpointsField, endpoints)) ok = false;

  auto tls = map.get("tls");
  if (tls && !parseEtcdTls(ctx, *tls, etcd)) ok = false;
  // With `tls`, every endpoint is https; https needs the CA `tls` names.
  bool httpsReported = false;
  for (const Endpoint& endpoint : endpoints) {
    if (tls && !endpoint.https) {
      ctx.diag.report(endpoint.field.pos, endpoint.field.path,
                      "must be https://HOST:PORT: `tls` is set (all endpoints or none)");
      ok = false;
    } else if (!tls && endpoint.https && !httpsReported) {
      ctx.diag.report(endpoint.field.pos, endpoint.field.path,
                      "https needs `tls: { ca: FILE }`, the CA that signs etcd's certificates");
      httpsReported = true;
      ok = false;
    }
    etcd.endpoints.push_back(endpoint.url);
  }

  if (auto f = map.get("prefix")) {
    auto prefix = readNonEmptyString(ctx.diag, *f);
    if (prefix && checkPrefix(ctx, *f, *prefix)) {
      etcd.prefix = *prefix;
    } else {
      ok = false;
    }
  }
  if (auto f = map.require("key_file")) {
    if (auto path = readNonEmptyString(ctx.diag, *f)) {
      etcd.fleetKeyFile = resolvePath(ctx.baseDir, *path);
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (auto f = map.get("timeout")) {
    auto d = readDuration(ctx.diag, *f);
    if (d && d->count() > 0) {
      etcd.timeout = *d;
    } else {
      if (d) ctx.diag.report(f->pos, f->path, "must be more than 0");
      ok = false;
    }
  }
  if (auto f = map.get("node")) {
    auto node = readNonEmptyString(ctx.diag, *f);
    if (node && node->size() <= 255 && node->find_first_of(" \t\r\n/") == std::string::npos) {
      etcd.node = *node;
    } else {
      if (node) ctx.diag.report(f->pos, f->path, "must be one word of up to 255 bytes, no '/'");
      ok = false;
    }
  } else {
    etcd.node = hostName();
  }
  if (auto f = map.get("lease")) {
    auto d = readDuration(ctx.diag, *f);
    if (d && *d >= std::chrono::seconds(2)) {
      etcd.lease = *d;
    } else {
      if (d) ctx.diag.report(f->pos, f->path, "must be at least 2s (etcd's shortest lease)");
      ok = false;
    }
  }
  if (ok) config.etcd = std::move(etcd);
}

}  // namespace

void parseStorage(ParseContext& ctx, const Field& field, Config& config) {
  MapReader storage(ctx.diag, field, {"etcd"});
  if (!storage.isMap()) return;
  if (auto f = storage.require("etcd")) parseEtcd(ctx, *f, config);
}

}  // namespace tlsedge::conf
