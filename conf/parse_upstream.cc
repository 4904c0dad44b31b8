// The per-upstream options besides `servers`: balancing, timeouts, pooling,
// passive health and TLS to the origin.
#include "conf/parse.h"
#include "conf/values.h"

namespace tlsedge::conf {
namespace {

void parseUpstreamTls(ParseContext& ctx, const Field& field, Upstream& upstream) {
  MapReader map(ctx.diag, field, {"ca", "server_name", "verify"});
  if (!map.isMap()) return;
  UpstreamTls tls;
  if (auto f = map.get("ca")) {
    if (auto p = readNonEmptyString(ctx.diag, *f)) tls.caFile = resolvePath(ctx.baseDir, *p);
  }
  if (auto f = map.get("server_name")) {
    if (auto name = readNonEmptyString(ctx.diag, *f)) {
      auto host = normalizeHostName(*name);
      if (!host || host->starts_with("*.")) {
        ctx.diag.report(f->pos, f->path,
                        host ? "must be a host name, not a wildcard" : host.error().message);
      } else {
        tls.serverName = *host;
      }
    }
  }
  if (auto f = map.get("verify")) {
    if (auto v = readBool(ctx.diag, *f)) tls.verify = *v;
  }
  if (!tls.verify && !tls.caFile.empty()) {
    ctx.diag.report(field.pos, field.path, "`ca` has no effect with `verify: false`; remove one");
  }
  upstream.tls = std::move(tls);
}

}  // namespace

void parseUpstreamOptions(ParseContext& ctx, const MapReader& map, Upstream& upstream) {
  if (auto f = map.get("balance")) {
    if (auto v = readString(ctx.diag, *f)) {
      if (*v == "round_robin") {
        upstream.balance = Balance::kRoundRobin;
      } else if (*v == "least_connections") {
        upstream.balance = Balance::kLeastConnections;
      } else {
        ctx.diag.report(f->pos, f->path,
                        "must be `round_robin` or `least_connections`, got `" + *v + "`");
      }
    }
  }
  auto duration = [&](std::string_view key, Duration& out) {
    if (auto f = map.get(key)) {
      if (auto d = readDuration(ctx.diag, *f)) {
        if (d->count() == 0) {
          ctx.diag.report(f->pos, f->path, "must be more than 0");
        } else {
          out = *d;
        }
      }
    }
  };
  duration("connect_timeout", upstream.connectTimeout);
  duration("read_timeout", upstream.readTimeout);
  duration("send_timeout", upstream.sendTimeout);
  duration("idle_timeout", upstream.idleTimeout);
  duration("fail_timeout", upstream.failTimeout);
  if (auto f = map.get("send_proxy_protocol")) {
    if (auto b = readBool(ctx.diag, *f)) upstream.sendProxyProtocol = *b;
  }
  if (auto f = map.get("keepalive")) {
    if (auto n = readIntOrAuto(ctx.diag, *f, 0, 100000, kKeepaliveAuto)) {
      upstream.keepalive = static_cast<size_t>(*n);
    }
  }
  if (auto f = map.get("max_response_header_size")) {
    if (auto n = readSize(ctx.diag, *f, kMaxResponseHeaderSize, 1024)) {
      upstream.maxResponseHeaderSize = static_cast<size_t>(*n);
    }
  }
  if (auto f = map.get("max_response_headers")) {
    if (auto n = readInt(ctx.diag, *f, 1, 10000)) {
      upstream.maxResponseHeaders = static_cast<size_t>(*n);
    }
  }
  if (auto f = map.get("max_fails")) {
    if (auto n = readInt(ctx.diag, *f, 0, 1000)) upstream.maxFails = static_cast<int>(*n);
  }
  if (auto f = map.get("tls")) parseUpstreamTls(ctx, *f, upstream);
}

}  // namespace tlsedge::conf
