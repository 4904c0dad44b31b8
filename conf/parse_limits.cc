// The `limits` and `access_log` sections.
#include <type_traits>

#include "conf/parse.h"
#include "conf/values.h"

namespace tlsedge::conf {
namespace {
// Large enough for any sane head; small enough that a per-connection head
// buffer can never be an attack on memory.
constexpr uint64_t kMaxHeaderSizeLimit = 1 << 20;

// `limits.per_client`.
void parseClientLimits(ParseContext& ctx, const Field& field, ClientLimits& out) {
  MapReader map(ctx.diag, field,
                {"max_connections", "max_handshakes", "connections_per_second", "connection_burst",
                 "requests_per_second", "request_burst", "ipv6_prefix", "exempt", "table_size"});
  auto number = [&](std::string_view key, auto& value, int64_t min, int64_t max) {
    if (auto f = map.get(key)) {
      if (auto n = readInt(ctx.diag, *f, min, max)) {
        value = static_cast<std::remove_reference_t<decltype(value)>>(*n);
      }
    }
  };
  constexpr int64_t kMaxRate = 1000000;
  number("max_connections", out.maxConnections, 0, 10000000);
  number("max_handshakes", out.maxHandshakes, 0, 10000000);
  number("connections_per_second", out.connectionsPerSecond, 0, kMaxRate);
  number("connection_burst", out.connectionBurst, 0, kMaxRate);
  number("requests_per_second", out.requestsPerSecond, 0, kMaxRate);
  number("request_burst", out.requestBurst, 0, kMaxRate);
  number("ipv6_prefix", out.ipv6Prefix, 1, 128);
  number("table_size", out.tableSize, 1, 10000000);
  if (auto f = map.get("exempt")) readNetworks(ctx, *f, out.exempt);
  if (auto f = map.get("connection_burst"); f && out.connectionsPerSecond == 0) {
    ctx.diag.report(f->pos, f->path, "needs connections_per_second");
  }
  if (auto f = map.get("request_burst"); f && out.requestsPerSecond == 0) {
    ctx.diag.report(f->pos, f->path, "needs requests_per_second");
  }
}

}  // namespace

void parseLimits(ParseContext& ctx, const Field& field, Limits& limits) {
  MapReader map(
      ctx.diag, field,
      {"max_connections", "max_handshakes", "handshake_timeout", "header_timeout",
       "max_header_size", "max_headers", "max_body_size", "body_timeout", "send_timeout",
       "keepalive_timeout", "tunnel_idle_timeout", "http2_max_concurrent_streams", "per_client"});
  auto count = [&](std::string_view key, size_t& out, int64_t min, int64_t max) {
    if (auto f = map.get(key)) {
      if (auto n = readInt(ctx.diag, *f, min, max)) out = static_cast<size_t>(*n);
    }
  };
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
  count("max_connections", limits.maxConnections, 1, 10000000);
  count("max_handshakes", limits.maxHandshakes, 1, 10000000);
  count("max_headers", limits.maxHeaders, 1, 10000);
  count("http2_max_concurrent_streams", limits.http2MaxStreams, 1, 10000);
  if (auto f = map.get("max_header_size")) {
    if (auto n = readSize(ctx.diag, *f, kMaxHeaderSizeLimit, 1024)) {
      limits.maxHeaderSize = static_cast<size_t>(*n);
    }
  }
  if (auto f = map.get("max_body_size")) {
    if (auto n = readSize(ctx.diag, *f, UINT64_MAX)) limits.maxBodySize = *n;
  }
  duration("handshake_timeout", limits.handshakeTimeout);
  duration("header_timeout", limits.headerTimeout);
  duration("body_timeout", limits.bodyTimeout);
  duration("send_timeout", limits.sendTimeout);
  duration("keepalive_timeout", limits.keepaliveTimeout);
  duration("tunnel_idle_timeout", limits.tunnelIdleTimeout);
  if (auto f = map.get("per_client")) parseClientLimits(ctx, *f, limits.perClient);
}

void parseAccessLog(ParseContext& ctx, const Field& field, std::optional<AccessLog>& out) {
  MapReader map(ctx.diag, field, {"path"});
  auto path = map.require("path");
  if (!map.isMap() || !path) return;
  if (auto p = readNonEmptyString(ctx.diag, *path)) out = AccessLog{resolvePath(ctx.baseDir, *p)};
}

}  // namespace tlsedge::conf
