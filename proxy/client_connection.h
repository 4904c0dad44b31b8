// ClientConnection: one downstream connection (HTTPS or plain HTTP) on a
// worker: TLS via net::Stream, requests via http::HttpParser, one request at a
// time (pipelined requests wait, in order), each answered by tlsedge itself
// (redirect, ACME challenge, static route, error) or proxied through an
// Exchange. An upgrade request the origin answers 101 turns the connection
// into a Tunnel, which takes over both streams; this object stays the
// worker's registry entry and owns it.
//
// Limits (conf::Limits of the generation it was accepted under): one
// ConnectionTimer holds the deadline of the phase the connection is in
// (handshake, idle, head, body, send, linger); updateTimer() re-derives the
// phase after every event. Head size and field count are the parser's (431);
// the body size is counted here (413). A connection closed while the client
// may still be sending closes lingering (net::Stream::shutdownLingering).
//
// Thread: its worker's loop. Ownership: self-owned; deleted when its stream
// has closed, after telling the worker.
#pragma once

#include <memory>
#include <string>

#include "http/http_parser.h"
#include "http/request_target.h"
#include "net/stream.h"
#include "proxy/connection_timer.h"
#include "proxy/generation.h"
#include "proxy/tunnel.h"
#include "proxy/upstream/exchange.h"
#include "proxy/worker_stats.h"
#include "tls/tls_context.h"

namespace tlsedge::proxy {

struct CertificateSlot;

class Worker;

class ClientConnection final : public net::Stream::Handler,
                               public http::HttpParser::Handler,
                               public ExchangeClient,
                               public Tunnel::Owner,
                               public ConnectionTimer::Owner {
 public:
  // Takes over `fd`, a connection accepted from `peer` (TLS if `tlsContext`);
  // returns null if that failed (the fd is closed).
  static ClientConnection* accept(Worker& worker, int fd, const sockaddr* peer,
                                  SSL_CTX* tlsContext);

  // Draining: close now if idle, else after the current response (an
  // upgrade's drain: after the next response, see Worker::drain).
  void drain();
  // Close at once (end of the drain timeout).
  void abort();

  size_t registryIndex = 0;  // the worker's bookkeeping

 private:
  ClientConnection(Worker& worker, bool tls);
  ~ClientConnection() override;

  // net::Stream::Handler
  void releaseCertificates();
  void onStreamHandshakeDone() override;
  void onStreamData(const char* data, size_t size) override;
  void onStreamEof() override;
  void onStreamError(const std::string& reason) override;
  void onStreamDrained() override;
  void onStreamWritten() override;
  void onStreamClosed() override;
  // http::HttpParser::Handler
  void onHead(http::MessageHead& head) override;
  void onBody(std::string_view data) override;
  void onMessageComplete() override;
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
  // Tunnel::Owner
  void onTunnelClosed() override;
  // ConnectionTimer::Owner
  void onDeadline(ConnectionTimer::Phase phase) override;
  void onTimerClosed() override;

  void route(http::MessageHead& head, const http::RequestTarget& target);
  void proxyTo(const conf::Upstream& upstream, http::MessageHead& head,
               const http::RequestTarget& target);
  void respond(int status, std::string_view body,
               std::string_view contentType = "text/plain; charset=utf-8",
               std::string_view extraHeaders = {});
  // Answers (unless part of a response went out already), then closes
  // lingering. For refused requests and timeouts.
  void respondAndClose(int status, std::string_view body);
  void rejectMalformed();
  // No more requests: close once what is queued is sent; `linger` if the
  // client may still be sending.
  void finish(bool linger);
  std::string siteHeaders() const;
  void feed(const char* data, size_t size);
  void advance();
  bool bodyMayNeverCome() const;
  // The phase whose deadline applies now.
  ConnectionTimer::Phase currentPhase() const;
  // Re-arms the timer for the current phase if it changed, or if
  // `progress` is that phase (a body read, a write completed).
  void updateTimer(ConnectionTimer::Phase progress = ConnectionTimer::Phase::kNone);
  const conf::Limits& limits() const { return generation_->config->limits; }
  // Every response byte goes through here (counted for the access log).
  void send(std::string_view data);
  void send(std::string&& data);  // may hand the buffer over (Stream::write)
  // Access log: a request begins (its head is here), its status is known,
  // it ends (answered, failed or cut). No-ops while the log is off.
  void beginLog(const http::MessageHead& head);
  // The request's status: counted once per request (WorkerStats::sites)
  // and recorded for the access log.
  void logStatus(int status);
  // Also ends the request's latency measurement (WorkerStats::requestLatency).
  void endLog();
  // The counts of the request's site (site_), looked up when it changes.
  WorkerStats::StatusCounts& siteCounts();

  Worker& worker_;
  GenerationPtr generation_;  // the rules this connection was accepted under
  bool tls_;
  tls::HandshakeState handshake_;
  CertificateSlot* certificates_ = nullptr;  // until the handshake ends (TLS only)
  net::Stream* stream_ = nullptr;            // null once a tunnel has it
  http::HttpParser parser_;
  std::string pending_;  // received bytes not yet parsed (parser paused)
  std::unique_ptr<Exchange> exchange_;
  std::unique_ptr<Tunnel> tunnel_;  // after a 101; then nothing else here runs
  ConnectionTimer timer_;
  uint64_t sendMark_ = 0;   // stream_->bytesSent() when the send countdown started
  uint64_t bodyBytes_ = 0;  // of the request in progress (max_body_size)

  // The request in progress.
  const conf::Site* site_ = nullptr;
  bool inRequest_ = false;
  bool requestComplete_ = false;
  bool responseComplete_ = false;
  bool keepAlive_ = true;      // this connection stays open after the response
  bool clientCloses_ = false;  // the client asked to close (Connection: close, HTTP/1.0)
  bool headRequest_ = false;
  bool chunkedResponse_ = false;  // we frame the response body as chunked
  bool peerDone_ = false;         // the client half-closed
  bool clientHttp11_ = true;
  bool responseStarted_ = false;   // some of the response was written
  bool statusCounted_ = false;     // logStatus() counted this request's status
  bool handshakePending_ = false;  // counted in the worker's handshakes in progress
  bool done_ = false;              // closing: no more requests are read

  // The request in progress as the access log sees it; made on the first
  // request while the log is on, then reused.
  struct RequestLog {
    bool pending = false;  // begun, not written yet
    int64_t startUnixMs = 0;
    uint64_t startUs = 0;  // loop clock (uv_hrtime) in microseconds
    std::string method, target, host, upstream, upstreamAddr;
    int versionMinor = 1;
    int status = 0;
    uint64_t bytesOut = 0;
    int64_t upstreamHeaderUs = -1;
  };
  std::unique_ptr<RequestLog> log_;

  // Metrics (WorkerStats): times on the loop clock (uv_hrtime) in microseconds.
  uint64_t handshakeStartUs_ = 0;                    // accepted (TLS only)
  uint64_t requestStartUs_ = 0;                      // head parsed; 0: no request being timed
  const conf::Site* countedSite_ = nullptr;          // the site siteCounts_ are of
  WorkerStats::StatusCounts* siteCounts_ = nullptr;  // null: not looked up yet

  // Upgrade and Expect: 100-continue, per request (set in onHead).
  // The Upgrade protocols offered to the origin (those of the client's the
  // site tunnels); empty: none, the request goes on as a plain one.
  std::string upgradeOffer_;
  bool expectContinue_ = false;   // Expect: 100-continue with a body announced
  bool continueRelayed_ = false;  // the origin's 100 went to the client
};

}  // namespace tlsedge::proxy
