// Talking to origins: a per-worker pool of keep-alive connections, and one
// Exchange per proxied request.
//
// Thread: all of it lives on one worker loop.
// Ownership: the ClientConnection owns its Exchange; the Exchange borrows an
// UpstreamConnection from the pool and gives it back (keep-alive) or closes
// it when the exchange ends.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "conf/config.h"
#include "net/http_parser.h"
#include "net/stream.h"

namespace tlsedge::proxy {

class Exchange;
class UpstreamPool;

// Events of an exchange, delivered to the client side. Never called from
// inside the client's own parser callbacks.
class ExchangeClient {
 public:
  virtual ~ExchangeClient() = default;
  // The origin's final response head.
  virtual void onUpstreamHead(net::MessageHead& head) = 0;
  // An interim 1xx response other than 101 (100 Continue, 103 Early Hints).
  // Called from inside the exchange's parser: must not delete the exchange.
  virtual void onUpstreamInterim(net::MessageHead& head) = 0;
  // The origin answered an upgrade request with 101 (Switching Protocols).
  // The exchange is complete and hands over the origin's stream: it has no
  // handler now; the client must adopt it (Stream::setHandler) or close it,
  // and relay `originBytes` (what the origin sent right after the 101 head,
  // valid during this call only) after the 101 head. May delete the exchange.
  virtual void onUpstreamUpgraded(net::MessageHead& head, net::Stream* origin,
                                  std::string_view originBytes) = 0;
  virtual void onUpstreamBody(std::string_view data) = 0;
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

// How the request body is framed on its way to the origin.
enum class BodyFraming { kNone, kLength, kChunked };

// One keep-alive connection to one origin server.
class UpstreamConnection final : public net::Stream::Handler, public net::HttpParser::Handler {
 public:
  UpstreamConnection(UpstreamPool& pool, std::string key);
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
  void onHead(net::MessageHead& head) override;
  void onBody(std::string_view data) override;
  void onMessageComplete() override;

  UpstreamPool& pool_;
  std::string key_;  // server address text, the pool's key
  net::Stream* stream_ = nullptr;
  net::HttpParser parser_;
  Exchange* exchange_ = nullptr;  // null while idle in the pool
  bool connected_ = false;
  bool reused_ = false;  // served a request before: may have been closed by the origin
};

class Exchange {
 public:
  struct Request {
    std::string head;  // serialized request line + headers + CRLF CRLF
    BodyFraming framing = BodyFraming::kNone;
    bool headMethod = false;
    bool idempotent = false;
    bool upgrade = false;  // carries Upgrade + Connection: upgrade (a 101 may follow)
  };

  Exchange(UpstreamPool& pool, const conf::Upstream& upstream, Request request,
           ExchangeClient& client);
  ~Exchange();  // aborts if not complete: the origin connection is closed, not reused
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  void start();
  void sendBody(std::string_view data);
  void endBody();
  bool writeQueueFull() const;
  void resumeResponse();

 private:
  friend class UpstreamConnection;
  static void onTimer(uv_timer_t* timer) noexcept;

  void attach(UpstreamConnection* connection);
  void connectTo(const conf::SocketAddress& server);
  void sendPending();
  void armTimer(uint64_t ms);
  // From UpstreamConnection:
  void connected(int status);
  void headReceived(net::MessageHead& head);
  void bodyReceived(std::string_view data);
  void messageComplete();
  void connectionLost(const std::string& reason);
  void drained();
  void afterFeed();
  void switchedProtocols(std::string_view rest);

  void fail(int status, const std::string& reason);
  void release(bool reusable);

  UpstreamPool& pool_;
  const conf::Upstream& upstream_;
  Request request_;
  ExchangeClient& client_;
  UpstreamConnection* connection_ = nullptr;
  std::string bodyBuffer_;  // request body received before the connection is up
  uv_timer_t* timer_ = nullptr;
  size_t serverIndex_ = 0;
  bool bodyEnded_ = false;
  bool bodySent_ = false;  // any request byte written on the current connection
  bool headSeen_ = false;
  bool anyResponseByte_ = false;
  bool complete_ = false;
  bool retried_ = false;
  bool interim_ = false;            // inside a 1xx response
  bool upstreamKeepAlive_ = false;  // the origin allows reuse after this response
  std::string failReason_;          // a failure to report from the timer
  bool switching_ = false;          // got a 101 with Upgrade: switchHead_
  net::MessageHead switchHead_;
};

class UpstreamPool {
 public:
  explicit UpstreamPool(uv_loop_t* loop) : loop_(loop) {}
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  uv_loop_t* loop() const { return loop_; }
  // The next server of `upstream`, round robin.
  size_t pickServer(const conf::Upstream& upstream);
  // An idle connection to `server`, or null.
  UpstreamConnection* takeIdle(const std::string& key);
  void putIdle(UpstreamConnection* connection);
  void forget(UpstreamConnection* connection);  // closed while idle
  void closeIdle();                             // draining: close every idle connection

 private:
  static constexpr size_t kMaxIdlePerServer = 64;
  uv_loop_t* loop_;
  std::unordered_map<std::string, std::vector<UpstreamConnection*>> idle_;
  std::unordered_map<std::string, size_t> roundRobin_;
};

}  // namespace tlsedge::proxy
