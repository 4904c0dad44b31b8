// Request: one client request, whichever protocol carried it. It holds the
// rules that answer it (body limit, request target, ACME HTTP-01, redirect,
// static route, proxying through an Exchange), its access-log record and its
// counters. The connection that carries it (HTTP/1.1: ClientConnection; a
// stream of an Http2Connection) feeds it the head and the body, and writes
// what it answers in its own framing, through Downstream.
//
// Thread: its connection's worker loop. Ownership: its connection's (an
// HTTP/1.1 connection reuses one for each request in turn).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "http/http_parser.h"
#include "http/request_target.h"
#include "proxy/client_limits.h"
#include "proxy/generation.h"
#include "proxy/upstream/exchange.h"
#include "proxy/worker_stats.h"

namespace tlsedge::proxy {

class Worker;

// A final response head as a Request hands it to its connection, which
// writes the status, these fields, and the framing of its own protocol.
struct ResponseHead {
  int status = 200;
  std::string_view reason;  // empty: the standard phrase
  // The origin's head: its end-to-end fields are relayed (hop-by-hop and
  // framing fields left out). Null for tlsedge's own answers, which carry
  // "Server: tlsedge".
  const http::MessageHead* origin = nullptr;
  std::string_view contentType;  // fields tlsedge adds; empty: none
  std::string_view location;
  std::string_view hsts;    // Strict-Transport-Security
  uint32_t retryAfter = 0;  // seconds; 0: no Retry-After
  // The body's length, when known; else it ends with the response.
  std::optional<uint64_t> contentLength;
  bool originChunked = false;  // the origin framed it chunked
  bool bodyless = false;       // no body follows, whatever the head says (HEAD, 204, 304)
  bool closing = false;        // nothing more is read after it (HTTP/1.1: Connection: close)
};

// What a Request needs of the connection that carries it.
class Downstream {
 public:
  virtual ~Downstream() = default;
  // A complete response with a fixed body (left out for HEAD).
  virtual void respond(const ResponseHead& head, std::string_view body) = 0;
  // A streamed response: the head, then body pieces, then the end.
  virtual void sendHead(const ResponseHead& head) = 0;
  virtual void sendBody(std::string_view data) = 0;
  // `trailers`: the origin's trailer fields (relayed where the framing
  // carries them: a chunked HTTP/1.1 response, or HTTP/2).
  virtual void endResponse(const std::vector<http::Header>& trailers = {}) = 0;
  // The origin failed after the head went out: the client must see the
  // response cut, never complete.
  virtual void cutResponse() = 0;
  // An origin's 1xx (other than 101); false if this client takes none.
  virtual bool sendInterim(const http::MessageHead& head) = 0;
  // The origin switched protocols (101) on an upgrade request: the
  // connection becomes a tunnel to `origin` (see ExchangeClient).
  virtual void upgraded(http::MessageHead& head, net::Stream* origin,
                        std::string_view originBytes) = 0;
  // Flow control of the request body toward the origin.
  virtual void pauseBody() = 0;
  virtual void resumeBody() = 0;
  // Can the client take more response bytes now (see ExchangeClient)?
  virtual bool writeQueueFull() const = 0;
  // The request's state changed outside the connection's own reads (an
  // origin's event): send what was batched, move on, re-arm timers.
  virtual void settle() = 0;
  // The rest of the request is refused, after its answer (if any) went out.
  virtual void abandon() = 0;
  // Did the certificate this connection's handshake served cover
  // `authority`? (RFC 9113 9.1.1: a client may reuse a connection for
  // another name; else 421.)
  virtual bool covers(std::string_view authority) const = 0;
  virtual const std::string& peerIp() const = 0;
  // For a PROXY header to an origin (upstream send_proxy_protocol): what it
  // says of the client's connection, and that connection's id in the worker
  // (origin connections carrying it are reused by it alone).
  virtual net::ProxyClient proxyClient() const = 0;
  virtual uint64_t connectionId() const = 0;
  // The per-client limits' entry of the client (null: none apply).
  virtual ClientTable::Entry* client() const = 0;
};

class Request final : public ExchangeClient {
 public:
  Request(Worker& worker, const Generation& generation, Downstream& downstream, bool tls);
  ~Request() override;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  // The request's head is here (`head` may be moved from). Answers it or
  // starts the exchange; may call back into the Downstream.
  void begin(http::MessageHead& head);
  void body(std::string_view data);
  // `trailers`: the request's trailer fields, relayed to the origin when
  // its request is chunked.
  void bodyDone(const std::vector<http::Header>& trailers = {});
  // Answers `status` unless part of a response went out, then abandons the
  // rest of the request. For limits, requests in doubt and timeouts; also
  // before begin() (a head that never came whole).
  void refuse(int status, std::string_view text);
  // The request is over (answered, failed or cut): logged, the exchange
  // dropped; ready for begin() again.
  void end();

  bool responseStarted() const { return responseStarted_; }
  bool bodyComplete() const { return bodyComplete_; }
  // Expect: 100-continue, no 100 relayed and the body not all read: the
  // client may never send it (RFC 9110 10.1.1).
  bool bodyMayNeverCome() const;
  // The origin does not take request body now (after pauseBody()).
  bool bodyBlocked() const { return exchange_ != nullptr && exchange_->writeQueueFull(); }
  // The client takes response bytes again (after Downstream::writeQueueFull()).
  void resumeResponse() {
    if (exchange_ != nullptr) exchange_->resumeResponse();
  }
  // Every response byte the connection writes for it (the access log's count).
  void countBytesOut(size_t n) {
    if (log_ != nullptr) log_->bytesOut += n;
  }

 private:
  // ExchangeClient
  void onUpstreamHead(http::MessageHead& head) override;
  void onUpstreamInterim(http::MessageHead& head) override;
  void onUpstreamUpgraded(http::MessageHead& head, net::Stream* origin,
                          std::string_view originBytes) override;
  void onUpstreamBody(std::string_view data) override;
  void onUpstreamReadDone() override;
  void onUpstreamComplete() override;
  void onUpstreamFailed(int status, bool beforeHead, const std::string& reason) override;
  void onUpstreamDrained() override;
  bool clientWriteQueueFull() const override;
  void countFault(ResponseFault fault);  // tlsedge_upstream_invalid_responses_total

  void route(http::MessageHead& head, const http::RequestTarget& target);
  void proxyTo(const conf::Upstream& upstream, http::MessageHead& head,
               const http::RequestTarget& target);
  void respond(int status, std::string_view body,
               std::string_view contentType = "text/plain; charset=utf-8",
               std::string_view location = {}, bool closing = false, uint32_t retryAfter = 0);
  // The site's Strict-Transport-Security value, when it sends one (over TLS).
  std::string_view siteHsts();
  // Access log: a request begins (its head is here), its status is known,
  // it ends. No-ops while the log is off.
  void beginLog(const http::MessageHead& head);
  // Counted once per request (WorkerStats::sites), recorded for the log.
  void logStatus(int status);
  // Also ends the latency measurement (WorkerStats::requestLatency).
  void endLog();
  WorkerStats::StatusCounts& siteCounts();

  Worker& worker_;
  const Generation& generation_;
  Downstream& downstream_;
  bool tls_;
  std::unique_ptr<Exchange> exchange_;

  const conf::Site* site_ = nullptr;
  bool headRequest_ = false;
  bool clientHttp11_ = true;  // HTTP/1.1 or later (1xx, Expect)
  bool bodyComplete_ = false;
  bool responseStarted_ = false;
  bool statusCounted_ = false;
  uint64_t bodyBytes_ = 0;  // max_body_size
  std::string hsts_;        // siteHsts()'s value

  // Upgrade and Expect: 100-continue. The Upgrade protocols offered to the
  // origin (those of the client's the site tunnels); empty: none.
  std::string upgradeOffer_;
  bool expectContinue_ = false;   // Expect: 100-continue with a body announced
  bool continueRelayed_ = false;  // the origin's 100 went to the client

  // The request as the access log sees it; made on the first request while
  // the log is on, then reused.
  struct RequestLog {
    bool pending = false;  // begun, not written yet
    int64_t startUnixMs = 0;
    uint64_t startUs = 0;  // loop clock (uv_hrtime) in microseconds
    std::string method, target, host, upstream, upstreamAddr;
    int versionMajor = 1, versionMinor = 1;
    int status = 0;
    uint64_t bytesOut = 0;
    int64_t upstreamHeaderUs = -1;
  };
  std::unique_ptr<RequestLog> log_;

  // Metrics: times on the loop clock (uv_hrtime) in microseconds.
  uint64_t startUs_ = 0;  // head here; 0: no request being timed
  const conf::Site* countedSite_ = nullptr;
  WorkerStats::StatusCounts* siteCounts_ = nullptr;  // of countedSite_; null: not looked up
};

}  // namespace tlsedge::proxy
