// The top-level `acme` section: the CA that `tls: { acme: true }` sites get
// certificates from.
#include <arpa/inet.h>

#include "conf/parse.h"
#include "conf/values.h"

namespace tlsedge::conf {

void parseAcme(ParseContext& ctx, const Field& field, Config& config) {
  ctx.acmeDeclared = true;
  MapReader map(ctx.diag, field,
                {"directory", "email", "trusted_roots", "challenge", "dns_hook", "renew_before",
                 "preflight", "preflight_resolve", "eab", "preferred_chain", "key_type"});
  if (!map.isMap()) return;
  Acme acme;
  bool ok = true;
  if (auto f = map.require("directory")) {
    if (auto url = readNonEmptyString(ctx.diag, *f)) {
      if (*url == kInternalIssuer) {
        acme.directory = *url;
        acme.internal = true;
        ctx.acmeDnsHook = true;  // the local CA signs wildcards without a challenge
      } else if (!url->starts_with("https://") && !url->starts_with("http://")) {
        ctx.diag.report(f->pos, f->path,
                        "must be the CA's directory URL (https://...) or `internal` (a local "
                        "CA in the state directory, for development), got `" +
                            *url + "`");
        ok = false;
      } else {
        acme.directory = *url;
      }
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (auto f = map.get("email")) {
    if (auto email = readNonEmptyString(ctx.diag, *f)) {
      if (email->find('@') == std::string::npos ||
          email->find_first_of(" \t,<>") != std::string::npos) {
        ctx.diag.report(f->pos, f->path, "must be an email address, got `" + *email + "`");
        ok = false;
      } else {
        acme.email = *email;
      }
    }
  }
  if (auto f = map.get("trusted_roots")) {
    if (auto items = readList(ctx.diag, *f)) {
      for (const Field& item : *items) {
        if (auto path = readNonEmptyString(ctx.diag, item)) {
          acme.trustedRoots.push_back(resolvePath(ctx.baseDir, *path));
        }
      }
    }
  }
  if (auto f = map.get("dns_hook")) {
    ctx.acmeDnsHook = true;  // even if invalid: reported once, here
    if (auto path = readNonEmptyString(ctx.diag, *f))
      acme.dnsHook = resolvePath(ctx.baseDir, *path);
  }
  if (auto f = map.get("challenge")) {
    if (auto name = readNonEmptyString(ctx.diag, *f)) {
      if (*name == "http-01") {
        acme.challenge = AcmeChallenge::kHttp01;
      } else if (*name == "tls-alpn-01") {
        acme.challenge = AcmeChallenge::kTlsAlpn01;
      } else if (*name == "dns-01") {
        acme.challenge = AcmeChallenge::kDns01;
        if (!map.get("dns_hook")) {
          ctx.diag.report(f->pos, f->path,
                          "dns-01 needs `dns_hook` (the command that sets "
                          "the _acme-challenge TXT records)");
        }
      } else {
        ctx.diag.report(f->pos, f->path,
                        "must be http-01, tls-alpn-01 or dns-01, got `" + *name + "`");
      }
    }
  }
  if (auto f = map.get("renew_before")) {
    if (auto d = readDuration(ctx.diag, *f)) {
      if (d->count() < 60 * 1000) {
        ctx.diag.report(f->pos, f->path, "must be at least 1m");
        ok = false;
      } else {
        acme.renewBefore = *d;
      }
    } else {
      ok = false;
    }
  }
  if (auto f = map.get("preflight")) {
    if (auto on = readBool(ctx.diag, *f)) acme.preflight = *on;
  }
  if (auto f = map.get("preflight_resolve")) {
    MapReader names(ctx.diag, *f, {});
    for (const auto& entry : names.entries()) {
      auto host = normalizeHostName(entry.key);
      if (!host || host->starts_with("*.")) {
        ctx.diag.report(entry.keyField.pos, entry.keyField.path,
                        "must be a host name (no wildcard), got `" + entry.key + "`");
        continue;
      }
      auto address = readNonEmptyString(ctx.diag, entry.value);
      if (!address) continue;
      uint8_t buf[16];
      if (inet_pton(AF_INET, address->c_str(), buf) != 1 &&
          inet_pton(AF_INET6, address->c_str(), buf) != 1) {
        ctx.diag.report(entry.value.pos, entry.value.path,
                        "must be an IPv4 or IPv6 address, got `" + *address + "`");
        continue;
      }
      acme.preflightResolve.emplace_back(*host, *address);
    }
  }
  ok = parseAcmeOptions(ctx, map, acme) && ok;
  if (ok) config.acme = std::move(acme);
}

}  // namespace tlsedge::conf
