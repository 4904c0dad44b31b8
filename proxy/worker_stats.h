// WorkerStats: counters of what a worker accepted, served, refused or cut
// short, for operators: the metrics endpoint folds every worker's copy at
// scrape time (daemon/metrics_endpoint.h); they are also logged at debug
// level when the worker stops.
//
// Thread: the worker's own loop only. Plain integers, no atomics: nothing
// else writes them, and a reader on another thread must go through
// Worker::post (principle 2) or accept torn values.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "proxy/client_limits.h"
#include "proxy/latency_histogram.h"
#include "proxy/upstream/pool.h"
#include "tls/tls_stats.h"

namespace tlsedge::proxy {

// The handshake path's counters (sniLookups) are the TlsStats part, the
// upstream pool's the UpstreamPoolStats part.
struct WorkerStats : tls::TlsStats, UpstreamPoolStats {
  // Index of handshakes.
  enum TlsVersionIndex : size_t { kTls12, kTls13, kTlsVersions };
  // Responses by status class 1xx..5xx.
  using StatusCounts = std::array<uint64_t, 5>;
  // Requests by the protocol that carried them.
  enum ProtocolIndex : size_t { kHttp10, kHttp11, kHttp2, kProtocols };
  // GOAWAYs sent on HTTP/2 connections, by cause: the worker drains (reload,
  // upgrade, shutdown), keepalive_timeout, too many stream resets and
  // errors (ENHANCE_YOUR_CALM), a protocol error of the peer.
  enum GoawayIndex : size_t { kGoawayDrain, kGoawayIdle, kGoawayCalm, kGoawayProtocol, kGoaways };
  // The `sites` key of requests that matched no configured site.
  static constexpr const char* kNoSite = "(none)";

  uint64_t acceptedTls = 0;    // connections accepted on https listeners
  uint64_t acceptedPlain = 0;  // on http listeners
  // Completed handshakes by version and whether the session was resumed.
  std::array<std::array<uint64_t, 2>, kTlsVersions> handshakes{};  // [version][resumed]
  // Responses by site name (kNoSite: none matched) and status class. Keys
  // are configured site names, so the map is bounded by the sites
  // configured since the process started (entries are never erased: a
  // connection keeps a pointer to its site's counts, and std::map's
  // elements never move).
  std::map<std::string, StatusCounts> sites;
  // From the request head parsed to the last response byte queued, for
  // requests that got a status (proxy/client_connection.cc).
  LatencyHistogram requestLatency;
  // From accept to the TLS handshake done (client round trips included),
  // successful handshakes only.
  LatencyHistogram handshakeLatency;
  // From the request head parsed to the origin's response head (connecting,
  // sending the request and the origin's own time), proxied requests only.
  LatencyHistogram upstreamLatency;
  uint64_t upstreamErrors = 0;  // 502/504 for a failed origin exchange
  // Origin responses refused or cut, by ResponseFault (kNone aside): head
  // too large, malformed, bytes after a complete response.
  std::array<uint64_t, 3> upstreamInvalidResponses{};
  uint64_t redirects = 0;          // http -> https redirects sent
  uint64_t misdirected = 0;        // 421: the connection's certificate does not cover the host
  uint64_t challengesServed = 0;   // ACME http-01 key authorizations sent
  uint64_t handshakeTimeouts = 0;  // TLS handshakes not done within handshake_timeout
  uint64_t handshakeFailures = 0;  // TLS handshakes that failed (garbage, refused, peer gone)
  uint64_t headerTimeouts = 0;     // heads not complete within header_timeout
  uint64_t bodyTimeouts = 0;       // request bodies stalled beyond body_timeout
  uint64_t sendTimeouts = 0;       // clients that took no response bytes for send_timeout
  uint64_t idleTimeouts = 0;       // keep-alive connections closed after keepalive_timeout
  uint64_t badRequests = 0;        // 400 for malformed requests
  uint64_t requestTimeouts = 0;    // 408 sent (header or body timeout)
  uint64_t bodiesTooLarge = 0;     // 413 (max_body_size)
  uint64_t headsTooLarge = 0;      // 431 (max_header_size, max_headers)
  uint64_t acceptPauses = 0;       // times accepting paused at max_connections/max_handshakes
  std::array<uint64_t, kProtocols> requests{};  // request heads received, by protocol
  uint64_t http2Connections = 0;                // connections that negotiated h2
  uint64_t http2Streams = 0;                    // streams opened by clients
  uint64_t http2StreamsClosed = 0;              // of those, closed
  uint64_t http2ResetsReceived = 0;             // RST_STREAM frames from clients
  uint64_t http2ResetsSent = 0;                 // RST_STREAM frames sent
  uint64_t http2Floods = 0;  // connections closed at once: unread ACKs piled up, HPACK bomb
  std::array<uint64_t, kGoaways> http2Goaways{};
  // PROXY protocol headers on listeners with proxy_protocol: read, refused
  // as malformed or missing (from a trusted source), refused as sent by a
  // source not in proxy_protocol.trusted.
  enum ProxyIndex : size_t { kProxyAccepted, kProxyMalformed, kProxyUntrusted, kProxyResults };
  std::array<uint64_t, kProxyResults> proxyHeaders{};
  // Per-client limits (ClientTable): connections refused and requests
  // answered 429, by limit; clients tracked (a gauge, set at each
  // snapshot) and forgotten for room.
  std::array<uint64_t, ClientTable::kLimits> clientLimited{};
  uint64_t clientsTracked = 0;
  uint64_t clientEvictions = 0;

  // `site`'s counts (created at zero): kept by the caller while the site
  // stays the same, so a request costs no lookup.
  StatusCounts& siteCounts(const std::string& site) { return sites[site]; }

  // One response with `status` (100..599; others are not counted).
  static void countResponse(StatusCounts& counts, int status) {
    if (status >= 100 && status < 600) ++counts[static_cast<size_t>(status / 100 - 1)];
  }

  // Every site's counts added up.
  StatusCounts responses() const {
    StatusCounts total{};
    for (const auto& [name, counts] : sites) {
      for (size_t i = 0; i < total.size(); ++i) total[i] += counts[i];
    }
    return total;
  }

  // Adds `other` (another worker's) to this one: the fold at scrape time.
  void add(const WorkerStats& other) {
    acceptedTls += other.acceptedTls;
    acceptedPlain += other.acceptedPlain;
    for (size_t v = 0; v < kTlsVersions; ++v) {
      for (size_t r = 0; r < 2; ++r) handshakes[v][r] += other.handshakes[v][r];
    }
    for (size_t i = 0; i < kSniOutcomes; ++i) sniLookups[i] += other.sniLookups[i];
    for (const auto& [name, counts] : other.sites) {
      StatusCounts& mine = sites[name];
      for (size_t i = 0; i < mine.size(); ++i) mine[i] += counts[i];
    }
    requestLatency.add(other.requestLatency);
    handshakeLatency.add(other.handshakeLatency);
    upstreamLatency.add(other.upstreamLatency);
    upstreamErrors += other.upstreamErrors;
    upstreamConnectionsOpened += other.upstreamConnectionsOpened;
    upstreamConnectionsReused += other.upstreamConnectionsReused;
    for (size_t i = 0; i < upstreamInvalidResponses.size(); ++i) {
      upstreamInvalidResponses[i] += other.upstreamInvalidResponses[i];
    }
    redirects += other.redirects;
    misdirected += other.misdirected;
    challengesServed += other.challengesServed;
    handshakeTimeouts += other.handshakeTimeouts;
    handshakeFailures += other.handshakeFailures;
    headerTimeouts += other.headerTimeouts;
    bodyTimeouts += other.bodyTimeouts;
    sendTimeouts += other.sendTimeouts;
    idleTimeouts += other.idleTimeouts;
    badRequests += other.badRequests;
    requestTimeouts += other.requestTimeouts;
    bodiesTooLarge += other.bodiesTooLarge;
    headsTooLarge += other.headsTooLarge;
    acceptPauses += other.acceptPauses;
    for (size_t i = 0; i < kProtocols; ++i) requests[i] += other.requests[i];
    http2Connections += other.http2Connections;
    http2Streams += other.http2Streams;
    http2StreamsClosed += other.http2StreamsClosed;
    http2ResetsReceived += other.http2ResetsReceived;
    http2ResetsSent += other.http2ResetsSent;
    http2Floods += other.http2Floods;
    for (size_t i = 0; i < kGoaways; ++i) http2Goaways[i] += other.http2Goaways[i];
    for (size_t i = 0; i < kProxyResults; ++i) proxyHeaders[i] += other.proxyHeaders[i];
    for (size_t i = 0; i < ClientTable::kLimits; ++i) clientLimited[i] += other.clientLimited[i];
    clientsTracked += other.clientsTracked;
    clientEvictions += other.clientEvictions;
  }

  // "handshake_timeouts=1 handshake_failures=0 ..."
  std::string summary() const {
    std::string s;
    auto add = [&s](const char* name, uint64_t value) {
      if (!s.empty()) s += ' ';
      s += name;
      s += '=';
      s += std::to_string(value);
    };
    add("handshake_timeouts", handshakeTimeouts);
    add("handshake_failures", handshakeFailures);
    add("header_timeouts", headerTimeouts);
    add("body_timeouts", bodyTimeouts);
    add("send_timeouts", sendTimeouts);
    add("idle_timeouts", idleTimeouts);
    add("400", badRequests);
    add("408", requestTimeouts);
    add("413", bodiesTooLarge);
    add("431", headsTooLarge);
    add("accept_pauses", acceptPauses);
    return s;
  }
};

}  // namespace tlsedge::proxy
