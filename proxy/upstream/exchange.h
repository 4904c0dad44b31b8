// Talking to origins: one Exchange per proxied request, over an
// UpstreamConnection borrowed from the worker's UpstreamPool (or a new one).
// The Exchange picks the server, applies the upstream's timeouts, counts
// failed attempts against servers and retries where that is safe.
//
// Thread: all of it lives on one worker loop.
// Ownership: the ClientConnection owns its Exchange; the Exchange borrows an
// UpstreamConnection from the pool and gives it back (keep-alive) or closes
// it when the exchange ends.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "conf/config.h"
#include "http/http_parser.h"
#include "net/stream.h"
#include "proxy/upstream/balancer.h"
#include "proxy/upstream/pool.h"
#include "proxy/upstream/upstream_tls.h"

namespace tlsedge::proxy {

class Exchange;

// Events of an exchange, delivered to the client side. Never called from
// inside the client's own parser callbacks.
class ExchangeClient {
 public:
  virtual ~ExchangeClient() = default;
  // The origin's final response head.
  virtual void onUpstreamHead(http::MessageHead& head) = 0;
  // An interim 1xx response other than 101 (100 Continue, 103 Early Hints).
  // Called from inside the exchange's parser: must not delete the exchange.
  virtual void onUpstreamInterim(http::MessageHead& head) = 0;
  // The origin answered an upgrade request with 101 (Switching Protocols).
  // The exchange is complete and hands over the origin's stream: it has no
  // handler now; the client must adopt it (Stream::setHandler) or close it,
  // and relay `originBytes` (what the origin sent right after the 101 head,
  // valid during this call only) after the 101 head. May delete the exchange.
  virtual void onUpstreamUpgraded(http::MessageHead& head, net::Stream* origin,
                                  std::string_view originBytes) = 0;
  virtual void onUpstreamBody(std::string_view data) = 0;
  // Everything one read from the origin brought was delivered (head, body)
  // and the response is not complete yet: time to send what was batched.
  virtual void onUpstreamReadDone() {}
  virtual void onUpstreamComplete() = 0;
  // The exchange failed. `beforeHead`: nothing was sent to the client yet,
  // answer `status` (502 or 504); otherwise the client connection must close.
  virtual void onUpstreamFailed(int status, bool beforeHead, const std::string& reason) = 0;
  // The origin accepts request body again (after Exchange::writeQueueFull()).
  virtual void onUpstreamDrained() = 0;
  // Is the client able to take more response bytes now? If not the exchange
  // stops reading the origin until resumeResponse().
  virtual bool clientWriteQueueFull() const = 0;
};

// A response the origin got wrong, counted by the client side
// (tlsedge_upstream_invalid_responses_total).
enum class ResponseFault : uint8_t {
  kNone,
  kHeadTooLarge,        // over max_response_header_size / max_response_headers: 502
  kMalformed,           // not valid HTTP/1.1: 502
  kBytesAfterResponse,  // bytes after a complete response (e.g. a 204 "body"): dropped, closed
};

// How the request body is framed on its way to the origin.
enum class BodyFraming { kNone, kLength, kChunked };

// One keep-alive connection to one origin server.
class UpstreamConnection final : public net::Stream::Handler,
                                 public http::HttpParser::Handler,
                                 public TlsSessionSink {
 public:
  UpstreamConnection(UpstreamPool& pool, UpstreamState& state, size_t server,
                     const conf::SocketAddress& address);
  ~UpstreamConnection() override;

  bool connected() const { return connected_; }
  net::Stream* stream() const { return stream_; }

 private:
  friend class Exchange;
  friend class UpstreamPool;

  void onStreamConnected(int status) override;
  void onStreamData(const char* data, size_t size) override;
  void onStreamEof() override;
  void onStreamError(const std::string& reason) override;
  void onStreamDrained() override;
  void onStreamClosed() override;
  void onHead(http::MessageHead& head) override;
  void onBody(std::string_view data) override;
  void onMessageComplete() override;
  void onNewSession(bssl::UniquePtr<SSL_SESSION> session) override;

  UpstreamPool& pool_;
  UpstreamState& state_;  // pinned while this connection exists
  size_t server_;         // index in the upstream's servers
  std::string key_;       // server address text, for messages
  net::Stream* stream_ = nullptr;
  http::HttpParser parser_;
  Exchange* exchange_ = nullptr;  // null while idle in the pool
  bool connected_ = false;        // TCP connected and, with TLS, handshake done
  bool reused_ = false;           // served a request before: may have been closed by the origin
  uint64_t owner_ = 0;  // the client connection it is private to (PROXY header); 0: shared
  // While idle: the pool's list links and when the idle timeout closes it.
  bool idle_ = false;
  UpstreamConnection* idlePrev_ = nullptr;
  UpstreamConnection* idleNext_ = nullptr;
  // While idle and private: the links of its owner's list (UpstreamPool::closeOwned).
  UpstreamConnection* ownerPrev_ = nullptr;
  UpstreamConnection* ownerNext_ = nullptr;
  uint64_t idleDeadline_ = 0;
};

class Exchange {
 public:
  struct Request {
    std::string head;  // serialized request line + headers + CRLF CRLF
    BodyFraming framing = BodyFraming::kNone;
    bool headMethod = false;
    bool idempotent = false;
    bool upgrade = false;  // carries Upgrade + Connection: upgrade (a 101 may follow)
    // send_proxy_protocol: the header a new connection opens with, and the
    // client connection (Downstream::connectionId) the connection is then
    // private to; 0: shared.
    std::string proxyHeader;
    uint64_t owner = 0;
  };

  Exchange(UpstreamPool& pool, const UpstreamSetup& upstream, Request request,
           ExchangeClient& client);
  ~Exchange();  // aborts if not complete: the origin connection is closed, not reused
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void start();
  void sendBody(std::string_view data);
  // The request body ended; a chunked one carries the relayable `trailers`
  // (http::lastChunk), a Content-Length one cannot (they are dropped).
  void endBody(const std::vector<http::Header>& trailers = {});
  bool writeQueueFull() const;
  void resumeResponse();
  // The server of the latest attempt ("127.0.0.1:8080"); empty before one.
  std::string_view serverAddress() const;
  // What was wrong with the origin's response, if anything.
  ResponseFault fault() const { return fault_; }
  // The response's trailer fields, as the origin sent them (chunked only),
  // once the response is complete.
  std::vector<http::Header>& responseTrailers() { return responseTrailers_; }

 private:
  friend class UpstreamConnection;
  // How an attempt failed; decides retry and passive health.
  enum class Failure {
    kConnect,         // connect refused or failed, TLS handshake failed: nothing was sent
    kConnectTimeout,  // connect_timeout (TCP and TLS handshake): nothing was sent
    kLost,            // the connection closed or reset after the request went out
    kSendTimeout,     // writing the request stalled for send_timeout
    kReadTimeout,     // the origin was silent for read_timeout while a response was due
  };
  static void onTimer(uv_timer_t* timer) noexcept;

  void attempt();
  void connectTo(size_t server);
  void attach(UpstreamConnection* connection);
  void sendPending();
  void armTimer(uint64_t ms);
  void checkTimeouts();
  bool responseDue() const;
  // From UpstreamConnection:
  void connected(int status);
  void headReceived(http::MessageHead& head);
  void bodyReceived(std::string_view data);
  void messageComplete();
  void connectionLost(const std::string& reason);
  void drained();
  void afterFeed();
  void switchedProtocols(std::string_view rest);

  void attemptFailed(Failure failure, int status, const std::string& reason);
  void fail(int status, const std::string& reason);
  void release(bool reusable);
  void endAttempt();

  UpstreamPool& pool_;
  const UpstreamSetup& setup_;
  const conf::Upstream& upstream_;
  Request request_;
  ExchangeClient& client_;
  UpstreamState* state_ = nullptr;  // pinned from start() to the end
  UpstreamConnection* connection_ = nullptr;
  std::string bodyBuffer_;       // request body received before the connection is up
  uv_timer_t* timer_ = nullptr;  // connect timeout, then lazy send/read timeout checks
  TriedServers tried_;
  size_t serverIndex_ = kNoServer;
  uint64_t readingSince_ = 0;   // loop time the origin was last (re)started being read
  bool starting_ = false;       // inside start(): failures are reported from the timer
  bool attemptActive_ = false;  // counted in the server's active attempts
  bool bodyEnded_ = false;
  bool bodyWritten_ = false;  // body bytes went to an origin: never retried from here on
  bool headSeen_ = false;
  bool anyResponseByte_ = false;
  bool complete_ = false;
  bool staleRetried_ = false;       // a pooled connection failed and was replaced once
  bool interim_ = false;            // inside a 1xx response
  bool upstreamKeepAlive_ = false;  // the origin allows reuse after this response
  ResponseFault fault_ = ResponseFault::kNone;
  std::vector<http::Header> responseTrailers_;
  int deferredStatus_ = 0;  // a failure to report from the timer
  std::string failReason_;
  bool switching_ = false;  // got a 101 with Upgrade: switchHead_
  http::MessageHead switchHead_;
};

}  // namespace tlsedge::proxy
