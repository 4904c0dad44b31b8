// The `sites` section: hosts, certificate binding, redirects, HSTS, routes,
// upgrades.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <optional>

#include "base/ascii.h"

#include "conf/parse.h"
#include "conf/values.h"

namespace tlsedge::conf {
namespace {

void parseHosts(ParseContext& ctx, SitesState& state, const Field& field,
                const std::string& siteName, Site& site) {
  auto items = readList(ctx.diag, field);
  if (!items) return;
  if (items->empty()) {
    ctx.diag.report(field.pos, field.path, "at least one host is required");
    return;
  }
  for (const Field& item : *items) {
    auto text = readString(ctx.diag, item);
    if (!text) continue;
    auto host = normalizeHostName(*text);
    if (!host) {
      ctx.diag.report(item.pos, item.path, "host `" + *text + "`: " + host.error().message);
      continue;
    }
    auto [it, fresh] = state.hosts.emplace(*host, FirstUse{siteName, item.path});
    if (!fresh) {
      const bool sameSite = it->second.site == siteName;
      ctx.diag.report(
          item.pos, item.path,
          "host `" + *host + "` is already listed " +
              (sameSite ? "in this site" : "by site `" + it->second.site + "`") + " at " +
              it->second.path +
              (sameSite ? "" : "; a host belongs to one site only (here: `" + siteName + "`)"));
      continue;
    }
    site.hosts.push_back(std::move(*host));
  }
}

void parseSiteTls(ParseContext& ctx, const MapReader& siteMap, Site& site) {
  auto field = siteMap.get("tls");
  if (field) {
    MapReader tls(ctx.diag, *field, {"certificate", "fallback_certificate", "acme"});
    if (!tls.isMap()) return;  // reported
    if (auto f = tls.get("acme")) {
      if (auto on = readBool(ctx.diag, *f); on && *on) {
        if (!ctx.acmeDeclared) {
          ctx.diag.report(f->pos, f->path,
                          "needs a top-level `acme:` section naming the CA (directory, email)");
        } else if (tls.get("certificate")) {
          ctx.diag.report(f->pos, f->path,
                          "a site gets its certificate either from ACME or from tls.certificate, "
                          "not both");
        } else if (const std::string entry = acmeCertificateName(site.name);
                   entry.size() > kMaxNameLength) {
          ctx.diag.report(f->pos, f->path,
                          "the site's certificate is kept in the store as `" + entry + "`, " +
                              std::to_string(entry.size()) +
                              " characters, and store names are at most " +
                              std::to_string(kMaxNameLength) + ": shorten the site name to " +
                              std::to_string(kMaxNameLength - kAcmeCertificatePrefix.size()) +
                              " characters or fewer");
        } else {
          for (const auto& host : site.hosts) {
            if (host.starts_with("*.") && !ctx.acmeDnsHook) {
              ctx.diag.report(f->pos, f->path,
                              "host `" + host +
                                  "` is a wildcard: only DNS-01 can validate it, which needs "
                                  "`acme: { dns_hook: ... }` (the command that sets the "
                                  "_acme-challenge TXT records)");
            }
          }
          site.acme = true;
        }
      }
    }
    if (auto f = tls.get("certificate")) {
      // `certificates:` or the state directory's store: checked at load time
      // (certstore/binding.h), as are the key types of a pair and a site left
      // without any certificate.
      auto addName = [&](const Field& item) {
        auto name = readNonEmptyString(ctx.diag, item);
        if (!name) return;
        if (Status valid = checkName(*name); !valid.ok()) {
          ctx.diag.report(item.pos, item.path, valid.error().message);
        } else {
          site.certificates.push_back(std::move(*name));
        }
      };
      if (f->node.isSequence()) {
        auto items = readList(ctx.diag, *f);
        if (!items) return;
        if (items->empty() || items->size() > 2) {
          ctx.diag.report(f->pos, f->path,
                          "expected one certificate name or a list of two (one ECDSA, one RSA), "
                          "got " +
                              std::to_string(items->size()) + " names");
          return;
        }
        for (const Field& item : *items) addName(item);
      } else {
        addName(*f);
      }
    }
    if (auto f = tls.get("fallback_certificate")) {
      // One name (no pair), checked at load time like tls.certificate.
      if (auto name = readNonEmptyString(ctx.diag, *f)) {
        if (Status valid = checkName(*name); !valid.ok()) {
          ctx.diag.report(f->pos, f->path, valid.error().message);
        } else if (std::find(site.certificates.begin(), site.certificates.end(), *name) !=
                   site.certificates.end()) {
          ctx.diag.report(f->pos, f->path,
                          "`" + *name +
                              "` is also the site's tls.certificate; a fallback must be another "
                              "certificate");
        } else {
          site.fallbackCertificate = std::move(*name);
        }
      }
    }
  }
}

void parseHsts(ParseContext& ctx, const Field& field, Site& site) {
  MapReader map(ctx.diag, field, {"max_age", "include_subdomains", "preload"});
  if (!map.isMap()) return;
  Hsts hsts;
  auto maxAge = map.require("max_age");
  if (!maxAge) return;
  auto seconds = readInt(ctx.diag, *maxAge, 0, 4294967295LL);
  if (!seconds) return;
  hsts.maxAge = static_cast<uint64_t>(*seconds);
  if (auto f = map.get("include_subdomains")) {
    if (auto v = readBool(ctx.diag, *f)) hsts.includeSubdomains = *v;
  }
  if (auto f = map.get("preload")) {
    if (auto v = readBool(ctx.diag, *f)) hsts.preload = *v;
  }
  site.hsts = hsts;
}

// Header values must not smuggle a CR/LF into the response.
bool hasControlCharacter(const std::string& text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

std::optional<StaticResponse> parseRespond(ParseContext& ctx, const Field& field) {
  MapReader map(ctx.diag, field, {"status", "body", "content_type"});
  if (!map.isMap()) return std::nullopt;
  StaticResponse out;
  bool ok = true;
  if (auto f = map.get("status")) {
    auto status = readInt(ctx.diag, *f, 200, 599);
    ok = ok && status;
    if (status) out.status = static_cast<int>(*status);
  }
  if (auto f = map.get("body")) {
    auto body = readString(ctx.diag, *f);
    ok = ok && body;
    if (body) out.body = *body;
  }
  if (auto f = map.get("content_type")) {
    auto type = readNonEmptyString(ctx.diag, *f);
    if (type && hasControlCharacter(*type)) {
      ctx.diag.report(f->pos, f->path, "must not contain control characters");
      type.reset();
    }
    ok = ok && type;
    if (type) out.contentType = *type;
  }
  if (!ok) return std::nullopt;
  return out;
}

// A path prefix is compared with request targets byte for byte; characters
// that cannot appear in a request path would make a route unreachable.
std::optional<std::string> checkPath(const std::string& path) {
  if (path.empty() || path.front() != '/') return "must start with `/`";
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return "must not contain spaces, control or non-ASCII characters";
    if (c == '?' || c == '#') return "must not contain `?` or `#` (routes match the path only)";
  }
  return std::nullopt;
}

void parseRoutes(ParseContext& ctx, const Field& field, Site& site) {
  auto items = readList(ctx.diag, field);
  if (!items) return;
  if (items->empty()) {
    ctx.diag.report(field.pos, field.path, "at least one route is required");
    return;
  }
  std::map<std::string, std::string> paths;  // path -> key path of its route
  for (const Field& item : *items) {
    MapReader map(ctx.diag, item, {"path", "upstream", "respond"});
    if (!map.isMap()) continue;
    Route route;
    bool ok = true;
    if (auto f = map.require("path")) {
      auto path = readString(ctx.diag, *f);
      if (path) {
        if (auto problem = checkPath(*path)) {
          ctx.diag.report(f->pos, f->path, *problem);
          ok = false;
        } else if (auto [it, fresh] = paths.emplace(*path, item.path); !fresh) {
          ctx.diag.report(f->pos, f->path,
                          "path `" + *path + "` is already routed at " + it->second);
          ok = false;
        }
        route.pathPrefix = *path;
      }
      ok = ok && path;
    } else {
      ok = false;
    }
    auto upstream = map.get("upstream");
    auto respond = map.get("respond");
    if (upstream && respond) {
      ctx.diag.report(item.pos, item.path, "has both `upstream` and `respond`; give exactly one");
      ok = false;
    } else if (!upstream && !respond) {
      ctx.diag.report(item.pos, item.path, "needs `upstream` or `respond`");
      ok = false;
    } else if (upstream) {
      // No reset() of the optional: GCC 12 then warns maybe-uninitialized.
      auto name = readNonEmptyString(ctx.diag, *upstream);
      if (!name) {
        ok = false;
      } else if (ctx.upstreamNames.count(*name) == 0) {
        ctx.diag.report(upstream->pos, upstream->path,
                        "no upstream named `" + *name + "` " + definedNames(ctx.upstreamNames));
        ok = false;
      } else {
        route.upstream = std::move(*name);
      }
    } else {
      route.respond = parseRespond(ctx, *respond);
      ok = ok && route.respond;
    }
    if (ok) site.routes.push_back(std::move(route));
  }
}

// `upgrades: [websocket, ...]`: protocol names (RFC 9110 7.8), without h2c
// or h2. An empty list turns upgrades off.
void parseUpgrades(ParseContext& ctx, const Field& field, Site& site) {
  auto items = readList(ctx.diag, field);
  if (!items) return;
  site.upgrades.clear();
  for (const Field& item : *items) {
    auto text = readString(ctx.diag, item);
    if (!text) continue;
    std::string name = ascii::lowered(*text);
    const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c);
    });
    if (!token) {
      ctx.diag.report(item.pos, item.path, "`" + *text + "` is not a protocol name (a token)");
    } else if (name == "h2c" || name == "h2") {
      ctx.diag.report(item.pos, item.path,
                      "`" + *text +
                          "` cannot be tunnelled: HTTP/2 requests inside the tunnel would pass "
                          "no routing rule (RFC 9113 3.1 deprecates the h2c upgrade)");
    } else if (std::find(site.upgrades.begin(), site.upgrades.end(), name) == site.upgrades.end()) {
      site.upgrades.push_back(std::move(name));
    }
  }
}

}  // namespace

void parseSite(ParseContext& ctx, SitesState& state, const Field& field, std::vector<Site>& out,
               const std::string& fixedName) {
  MapReader map(
      ctx.diag, field,
      {"name", "hosts", "tls", "redirect_https", "redirect_status", "hsts", "routes", "upgrades"});
  if (!map.isMap()) return;
  Site site;
  auto nameField = fixedName.empty() ? map.require("name") : map.get("name");
  if (!nameField && !fixedName.empty()) {
    // The name comes from elsewhere (an admin API path, a file name): no
    // `name` key needed, and none that differs.
    if (Status valid = checkName(fixedName); !valid) {
      ctx.diag.report(field.pos, field.path, "site name: " + valid.error().message);
    } else if (auto [it, fresh] =
                   state.siteNames.emplace(fixedName, FirstUse{fixedName, field.path});
               !fresh) {
      ctx.diag.report(field.pos, field.path,
                      "site name `" + fixedName + "` is already used by " + it->second.path);
    }
    site.name = fixedName;
  }
  if (nameField && !fixedName.empty()) {
    if (auto name = readString(ctx.diag, *nameField); name && *name != fixedName) {
      ctx.diag.report(nameField->pos, nameField->path,
                      "`" + *name + "` differs from the site's name `" + fixedName +
                          "` (leave `name` out, or give the same)");
      return;
    }
  }
  if (auto f = nameField) {
    if (auto name = readString(ctx.diag, *f)) {
      auto valid = checkName(*name);
      if (!valid) {
        ctx.diag.report(f->pos, f->path, valid.error().message);
      } else if (auto [it, fresh] = state.siteNames.emplace(*name, FirstUse{*name, field.path});
                 !fresh) {
        ctx.diag.report(f->pos, f->path,
                        "site name `" + *name + "` is already used by " + it->second.path);
      }
      site.name = *name;
    }
  }
  // A site without a usable name is still checked, under its position.
  const std::string label = site.name.empty() ? field.path : site.name;
  if (auto f = map.require("hosts")) parseHosts(ctx, state, *f, label, site);
  parseSiteTls(ctx, map, site);
  if (auto f = map.get("redirect_https")) {
    if (auto v = readBool(ctx.diag, *f)) site.redirectHttps = *v;
  }
  if (auto f = map.get("redirect_status")) {
    if (auto v = readInt(ctx.diag, *f, 100, 599)) {
      if (*v != 301 && *v != 308) {
        ctx.diag.report(f->pos, f->path, "must be 301 or 308, got " + std::to_string(*v));
      }
      site.redirectStatus = static_cast<int>(*v);
    }
  }
  if (auto f = map.get("hsts")) parseHsts(ctx, *f, site);
  if (auto f = map.get("upgrades")) parseUpgrades(ctx, *f, site);
  if (auto f = map.require("routes")) parseRoutes(ctx, *f, site);
  out.push_back(std::move(site));
}

void parseSites(ParseContext& ctx, const Field& sites, std::vector<Site>& out) {
  auto items = readList(ctx.diag, sites);
  if (!items) return;
  if (items->empty()) {
    ctx.diag.report(sites.pos, sites.path, "at least one site is required");
    return;
  }
  SitesState state;
  for (const Field& item : *items) parseSite(ctx, state, item, out, "");
}

}  // namespace tlsedge::conf
