#include "proxy/upstream.h"

#include <algorithm>

#include "base/log.h"
#include "net/loop.h"
#include "proxy/http_util.h"

namespace tlsedge::proxy {
namespace {
// Until the limits issue makes them configurable: nginx's defaults are 60 s
// for both; an edge connect timeout should be short.
constexpr uint64_t kConnectTimeoutMs = 5000;
constexpr uint64_t kReadTimeoutMs = 60000;

bool toSockaddr(const conf::SocketAddress& a, sockaddr_storage* out) {
  if (a.ipv6) {
    return uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(out)) == 0;
  }
  return uv_ip4_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(out)) == 0;
}
}  // namespace

// ---------------------------------------------------------------- connection

UpstreamConnection::UpstreamConnection(UpstreamPool& pool, std::string key)
    : pool_(pool), key_(std::move(key)), parser_(net::HttpParser::Kind::kResponse, *this) {}

UpstreamConnection::~UpstreamConnection() = default;

void UpstreamConnection::onStreamConnected(int status) {
  if (exchange_ != nullptr) exchange_->connected(status);
}

void UpstreamConnection::onStreamData(const char* data, size_t size) {
  if (exchange_ == nullptr) {
    // An idle origin connection must stay silent; anything else means it is
    // out of sync and cannot be reused.
    stream_->close();
    return;
  }
  Exchange* exchange = exchange_;
  size_t used = parser_.feed(data, size);
  if (exchange_ != exchange) return;
  if (parser_.failed()) {
    exchange->fail(502, "invalid response from origin: " + parser_.errorReason());
    return;
  }
  if (parser_.upgraded()) {
    // 101: the rest is not HTTP; the stream leaves for a tunnel (never pooled).
    exchange->switchedProtocols(std::string_view(data + used, size - used));  // deletes this
    return;
  }
  if (used < size && exchange->complete_) exchange->release(false);  // bytes after the response
  exchange->afterFeed();
}

void UpstreamConnection::onStreamEof() {
  if (exchange_ == nullptr) {
    stream_->close();
    return;
  }
  Exchange* exchange = exchange_;
  if (parser_.finish() && exchange->complete_) {  // a close-delimited body ended
    exchange->release(false);
    exchange->afterFeed();
    return;
  }
  exchange->connectionLost("origin closed the connection");
}

void UpstreamConnection::onStreamError(const std::string& reason) {
  if (exchange_ != nullptr) exchange_->connectionLost(reason);
}

void UpstreamConnection::onStreamDrained() {
  if (exchange_ != nullptr) exchange_->drained();
}

void UpstreamConnection::onStreamClosed() {
  if (exchange_ != nullptr) exchange_->connectionLost("origin connection closed");
  if (exchange_ == nullptr) pool_.forget(this);
  delete this;
}

void UpstreamConnection::onHead(net::MessageHead& head) {
  if (exchange_ != nullptr) exchange_->headReceived(head);
}

void UpstreamConnection::onBody(std::string_view data) {
  if (exchange_ != nullptr) exchange_->bodyReceived(data);
}

void UpstreamConnection::onMessageComplete() {
  if (exchange_ != nullptr) exchange_->messageComplete();
}

// ------------------------------------------------------------------ exchange

Exchange::Exchange(UpstreamPool& pool, const conf::Upstream& upstream, Request request,
                   ExchangeClient& client)
    : pool_(pool), upstream_(upstream), request_(std::move(request)), client_(client) {}

Exchange::~Exchange() {
  if (connection_ != nullptr) release(false);
  if (timer_ != nullptr) net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
}

void Exchange::start() {
  serverIndex_ = pool_.pickServer(upstream_);
  const auto& server = upstream_.servers[serverIndex_];
  if (UpstreamConnection* idle = pool_.takeIdle(server.text)) {
    attach(idle);
    sendPending();
    armTimer(kReadTimeoutMs);
    return;
  }
  connectTo(server);
}

void Exchange::connectTo(const conf::SocketAddress& server) {
  sockaddr_storage addr{};
  auto* connection = new UpstreamConnection(pool_, server.text);
  int error = 0;
  if (toSockaddr(server, &addr)) {
    connection->stream_ =
        net::Stream::connect(pool_.loop(), reinterpret_cast<sockaddr*>(&addr), connection, &error);
  } else {
    error = UV_EINVAL;
  }
  if (connection->stream_ == nullptr) {
    delete connection;
    // Report from the timer, not from inside the caller's parser callback.
    failReason_ = "connect to " + server.text + ": " + net::uvErrorText(error);
    armTimer(0);
    return;
  }
  attach(connection);
  armTimer(kConnectTimeoutMs);
}

void Exchange::attach(UpstreamConnection* connection) {
  connection_ = connection;
  connection->exchange_ = this;
  connection->parser_.setRequestWasHead(request_.headMethod);
  connection->parser_.resume();
  bodySent_ = false;
}

void Exchange::connected(int status) {
  if (status != 0) {
    connectionLost("connect to " + connection_->key_ + ": " + net::uvErrorText(status));
    return;
  }
  connection_->connected_ = true;
  connection_->stream_->startReading();
  sendPending();
  armTimer(kReadTimeoutMs);
}

void Exchange::sendPending() {
  net::Stream* stream = connection_->stream_;
  stream->startReading();
  stream->write(request_.head);
  if (!bodyBuffer_.empty()) {
    stream->write(bodyBuffer_);
    bodyBuffer_.clear();
  }
  bodySent_ = true;
}

void Exchange::sendBody(std::string_view data) {
  if (data.empty() || complete_) return;
  std::string framed;
  if (request_.framing == BodyFraming::kChunked) {
    framed = chunk(data);
    data = framed;
  }
  if (connection_ != nullptr && connection_->connected_) {
    connection_->stream_->write(data);
  } else {
    bodyBuffer_ += data;
  }
}

void Exchange::endBody() {
  bodyEnded_ = true;
  if (request_.framing != BodyFraming::kChunked || complete_) return;
  if (connection_ != nullptr && connection_->connected_) {
    connection_->stream_->write(kLastChunk);
  } else {
    bodyBuffer_ += kLastChunk;
  }
}

bool Exchange::writeQueueFull() const {
  if (connection_ == nullptr) return bodyBuffer_.size() > net::Stream::kHighWatermark;
  return connection_->stream_->writeQueueFull();
}

void Exchange::drained() { client_.onUpstreamDrained(); }

void Exchange::resumeResponse() {
  if (connection_ != nullptr && connection_->connected_) connection_->stream_->startReading();
}

void Exchange::headReceived(net::MessageHead& head) {
  anyResponseByte_ = true;
  if (head.status >= 100 && head.status < 200) {
    interim_ = true;  // 1xx end at their head
    if (head.status != 101) {
      client_.onUpstreamInterim(head);
    } else if (head.upgrade) {
      // The parser stops after this head (upgraded()): see switchedProtocols.
      // A 101 without Upgrade + Connection: upgrade is invalid; dropped.
      switching_ = true;
      switchHead_ = std::move(head);
    }
    return;
  }
  headSeen_ = true;
  upstreamKeepAlive_ = head.keepAlive;
  client_.onUpstreamHead(head);
}

void Exchange::bodyReceived(std::string_view data) {
  armTimer(kReadTimeoutMs);
  client_.onUpstreamBody(data);
  if (client_.clientWriteQueueFull() && connection_ != nullptr) {
    connection_->stream_->stopReading();  // resumeResponse() when the client drains
  }
}

void Exchange::messageComplete() {
  if (interim_) {
    interim_ = false;
    return;
  }
  complete_ = true;
  connection_->parser_.pause();  // the connection is handed on in afterFeed()
}

void Exchange::afterFeed() {
  if (!complete_) return;
  // Reusable only if the origin keeps the connection and got the whole request.
  if (connection_ != nullptr) release(upstreamKeepAlive_ && bodyEnded_);
  client_.onUpstreamComplete();  // may delete this
}

void Exchange::switchedProtocols(std::string_view rest) {
  if (!request_.upgrade || !switching_) {
    fail(502, "origin switched protocols without an upgrade request");
    return;
  }
  UpstreamConnection* c = connection_;
  connection_ = nullptr;
  net::Stream* stream = c->stream_;
  c->stream_ = nullptr;
  c->exchange_ = nullptr;
  stream->setHandler(nullptr);
  delete c;  // we are in its onStreamData, which returns at once
  headSeen_ = true;
  complete_ = true;
  client_.onUpstreamUpgraded(switchHead_, stream, rest);  // may delete this
}

void Exchange::connectionLost(const std::string& reason) {
  if (complete_) return;
  UpstreamConnection* lost = connection_;
  bool wasReused = lost != nullptr && lost->reused_;
  if (lost != nullptr) release(false);
  // A kept-alive connection the origin closed before answering: replay once
  // on a fresh connection if the request is safe to send again (RFC 9110
  // section 9.2.2) and nothing of the body had to be buffered.
  if (wasReused && !anyResponseByte_ && !retried_ && request_.idempotent &&
      request_.framing == BodyFraming::kNone) {
    retried_ = true;
    connectTo(upstream_.servers[serverIndex_]);
    return;
  }
  fail(502, reason);
}

void Exchange::fail(int status, const std::string& reason) {
  if (connection_ != nullptr) release(false);
  complete_ = true;
  log::warning("upstream " + upstream_.name + ": " + reason);
  client_.onUpstreamFailed(status, !headSeen_, reason);  // may delete this
}

void Exchange::release(bool reusable) {
  UpstreamConnection* c = connection_;
  connection_ = nullptr;
  c->exchange_ = nullptr;
  if (reusable && c->connected_ && !c->stream_->closing()) {
    c->reused_ = true;
    pool_.putIdle(c);
  } else if (c->stream_ != nullptr) {
    c->stream_->close();
  }
}

void Exchange::armTimer(uint64_t ms) {
  if (timer_ == nullptr) {
    timer_ = new uv_timer_t;
    uv_timer_init(pool_.loop(), timer_);
    timer_->data = this;
  }
  uv_timer_start(timer_, &Exchange::onTimer, ms, 0);
}

void Exchange::onTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Exchange*>(timer->data);
  if (self->complete_) return;
  if (!self->failReason_.empty()) {
    self->fail(502, self->failReason_);
  } else if (self->connection_ != nullptr && !self->connection_->connected_) {
    self->fail(504, "connect to " + self->connection_->key_ + " timed out");
  } else {
    self->fail(504, "origin did not answer in time");
  }
}

// ---------------------------------------------------------------------- pool

UpstreamPool::~UpstreamPool() { closeIdle(); }

size_t UpstreamPool::pickServer(const conf::Upstream& upstream) {
  size_t& next = roundRobin_[upstream.name];
  size_t index = next % upstream.servers.size();
  next = index + 1;
  return index;
}

UpstreamConnection* UpstreamPool::takeIdle(const std::string& key) {
  auto it = idle_.find(key);
  if (it == idle_.end()) return nullptr;
  while (!it->second.empty()) {
    UpstreamConnection* c = it->second.back();  // most recently used: least likely closed
    it->second.pop_back();
    if (!c->stream_->closing()) return c;
  }
  return nullptr;
}

void UpstreamPool::putIdle(UpstreamConnection* connection) {
  auto& list = idle_[connection->key_];
  if (list.size() >= kMaxIdlePerServer) {
    connection->stream_->close();
    return;
  }
  connection->stream_->startReading();  // to notice the origin closing it
  list.push_back(connection);
}

void UpstreamPool::forget(UpstreamConnection* connection) {
  auto it = idle_.find(connection->key_);
  if (it == idle_.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), connection), list.end());
}

void UpstreamPool::closeIdle() {
  for (auto& [key, list] : idle_) {
    for (auto* c : list) c->stream_->close();
  }
}

}  // namespace tlsedge::proxy
