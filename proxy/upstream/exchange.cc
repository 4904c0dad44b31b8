#include "proxy/upstream/exchange.h"

#include <openssl/err.h>

#include <algorithm>

#include "base/log.h"
#include "http/http_util.h"
#include "net/loop.h"
#include "net/tls.h"

namespace tlsedge::proxy {
namespace {

bool toSockaddr(const conf::SocketAddress& a, sockaddr_storage* out) {
  if (a.ipv6) {
    return uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(out)) == 0;
  }
  return uv_ip4_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(out)) == 0;
}

uint64_t ms(conf::Duration d) { return static_cast<uint64_t>(d.count()); }

}  // namespace

// ---------------------------------------------------------------- connection

UpstreamConnection::UpstreamConnection(UpstreamPool& pool, UpstreamState& state, size_t server,
                                       const conf::SocketAddress& address)
    : pool_(pool),
      state_(state),
      server_(server),
      key_(address.text),
      parser_(http::HttpParser::Kind::kResponse, *this) {
  pool_.pin(&state_);
}

UpstreamConnection::~UpstreamConnection() { pool_.unpin(&state_); }

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
  exchange->anyResponseByte_ = true;
  size_t used = parser_.feed(data, size);
  if (exchange_ != exchange) return;
  if (parser_.failed()) {
    const bool tooLarge = parser_.error() == http::HttpParser::Error::kHeadTooLarge ||
                          parser_.error() == http::HttpParser::Error::kTooManyHeaders;
    exchange->fault_ = tooLarge ? ResponseFault::kHeadTooLarge : ResponseFault::kMalformed;
    exchange->fail(502, key_ + ": invalid response: " + parser_.errorReason());
    return;
  }
  if (parser_.upgraded()) {
    // 101: the rest is not HTTP; the stream leaves for a tunnel (never pooled).
    exchange->switchedProtocols(std::string_view(data + used, size - used));  // deletes this
    return;
  }
  if (used < size && exchange->complete_) {
    // Bytes after a complete response: a body the head said was not there
    // (RFC 9112 6.3: a 204, a 304, an answer to HEAD) or worse. They are
    // never relayed and the connection is never reused: what they are the
    // start of is unknowable.
    exchange->fault_ = ResponseFault::kBytesAfterResponse;
    log::warning("upstream " + exchange->upstream_.name + ": " + key_ + ": " +
                 std::to_string(size - used) + " bytes after a complete response; closed");
    exchange->release(false);
  }
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

void UpstreamConnection::onHead(http::MessageHead& head) {
  if (exchange_ != nullptr) exchange_->headReceived(head);
}

void UpstreamConnection::onBody(std::string_view data) {
  if (exchange_ != nullptr) exchange_->bodyReceived(data);
}

void UpstreamConnection::onMessageComplete() {
  if (exchange_ != nullptr) exchange_->messageComplete();
}

void UpstreamConnection::onNewSession(bssl::UniquePtr<SSL_SESSION> session) {
  state_.servers[server_].session = std::move(session);
}

// ------------------------------------------------------------------ exchange

Exchange::Exchange(UpstreamPool& pool, const UpstreamSetup& upstream, Request request,
                   ExchangeClient& client)
    : pool_(pool),
      setup_(upstream),
      upstream_(*upstream.config),
      request_(std::move(request)),
      client_(client) {}

Exchange::~Exchange() {
  if (connection_ != nullptr) release(false);
  endAttempt();
  if (state_ != nullptr) pool_.unpin(state_);
  if (timer_ != nullptr) net::closeAndDelete(reinterpret_cast<uv_handle_t*>(timer_), timer_);
}

void Exchange::start() {
  state_ = pool_.acquire(setup_);
  starting_ = true;
  attempt();
  starting_ = false;
}

// One attempt: the next server by the balancing rule (each server at most
// once per request), over an idle pooled connection if there is one.
void Exchange::attempt() {
  size_t server = pool_.pick(*state_, upstream_, tried_);
  if (server == kNoServer) {  // not reached: callers check tried_ first
    fail(502, "no server left to try");
    return;
  }
  tried_.add(server);
  serverIndex_ = server;
  ++state_->slots[server].active;
  attemptActive_ = true;
  if (UpstreamConnection* idle = pool_.takeIdle(*state_, server, request_.owner)) {
    attach(idle);
    sendPending();
    armTimer(std::min(ms(upstream_.readTimeout), ms(upstream_.sendTimeout)));
    return;
  }
  connectTo(server);
}

void Exchange::connectTo(size_t server) {
  const conf::SocketAddress& address = upstream_.servers[server];
  auto* connection = new UpstreamConnection(pool_, *state_, server, address);
  std::string error;
  sockaddr_storage addr{};
  if (!toSockaddr(address, &addr)) {
    error = "invalid address";
  } else {
    SSL* ssl = nullptr;
    if (setup_.tls != nullptr) {
      ERR_clear_error();
      ssl = setup_.tls->newSsl(address, state_->servers[server].session.get(), connection);
      if (ssl == nullptr) error = "TLS set-up: " + net::drainSslErrors();
    }
    if (error.empty()) {
      int rc = 0;
      connection->stream_ = net::Stream::connect(pool_.loop(), reinterpret_cast<sockaddr*>(&addr),
                                                 ssl, connection, &rc, request_.proxyHeader);
      connection->owner_ = request_.owner;
      if (connection->stream_ == nullptr) error = net::uvErrorText(rc);
    }
  }
  if (!error.empty()) {
    delete connection;
    attemptFailed(Failure::kConnect, 502, "connect to " + address.text + ": " + error);
    return;
  }
  ++pool_.stats().upstreamConnectionsOpened;
  attach(connection);
  armTimer(ms(upstream_.connectTimeout));  // covers the TLS handshake too
}

void Exchange::attach(UpstreamConnection* connection) {
  connection_ = connection;
  connection->exchange_ = this;
  connection->parser_.setRequestWasHead(request_.headMethod);
  connection->parser_.setHeadLimits(upstream_.maxResponseHeaderSize, upstream_.maxResponseHeaders);
  connection->parser_.resume();
}

void Exchange::connected(int status) {
  if (status != 0) {
    attemptFailed(Failure::kConnect, 502,
                  "connect to " + connection_->key_ + ": " + net::uvErrorText(status));
    return;
  }
  connection_->connected_ = true;
  const bool heldBack = bodyBuffer_.size() > net::Stream::kHighWatermark;  // the client is paused
  sendPending();
  armTimer(std::min(ms(upstream_.readTimeout), ms(upstream_.sendTimeout)));
  // The kernel took part of the buffered body at once: if what is left in
  // the stream's queue is below the high watermark the stream never reports
  // draining, so the client resumes here. Last: it may delete this.
  if (heldBack && connection_ != nullptr && !connection_->stream_->writeQueueFull()) drained();
}

void Exchange::sendPending() {
  net::Stream* stream = connection_->stream_;
  stream->startReading();
  readingSince_ = pool_.now();
  stream->write(request_.head);
  if (!bodyBuffer_.empty()) {
    stream->write(bodyBuffer_);
    bodyBuffer_.clear();
    bodyWritten_ = true;
  }
}

void Exchange::sendBody(std::string_view data) {
  if (data.empty() || complete_) return;
  std::string framed;
  if (request_.framing == BodyFraming::kChunked) {
    framed = http::chunk(data);
    data = framed;
  }
  if (connection_ != nullptr && connection_->connected_) {
    connection_->stream_->write(data);
    bodyWritten_ = true;
  } else {
    bodyBuffer_ += data;
  }
}

void Exchange::endBody(const std::vector<http::Header>& trailers) {
  bodyEnded_ = true;
  if (request_.framing != BodyFraming::kChunked || complete_) return;
  const std::string last = http::lastChunk(trailers);
  if (connection_ != nullptr && connection_->connected_) {
    connection_->stream_->write(last);
    bodyWritten_ = true;
  } else {
    bodyBuffer_ += last;
  }
}

bool Exchange::writeQueueFull() const {
  // Until connected (TLS handshake included) the body waits in bodyBuffer_.
  if (connection_ == nullptr || !connection_->connected_) {
    return bodyBuffer_.size() > net::Stream::kHighWatermark;
  }
  return connection_->stream_->writeQueueFull();
}

std::string_view Exchange::serverAddress() const {
  if (serverIndex_ == kNoServer) return {};
  return upstream_.servers[serverIndex_].text;
}

void Exchange::drained() { client_.onUpstreamDrained(); }

void Exchange::resumeResponse() {
  if (connection_ != nullptr && connection_->connected_ && !connection_->stream_->reading()) {
    connection_->stream_->startReading();
    readingSince_ = pool_.now();  // the silence while paused was the client's, not the origin's
  }
}

void Exchange::headReceived(http::MessageHead& head) {
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
  // A 204 or 304 that announces content has none (RFC 9112 6.3), but an
  // origin that announces it may send it anyway, after the read that ends
  // the response: never reuse such a connection, where those bytes would
  // be read as the next request's response. (An answer to HEAD announces
  // its length as a rule, and stays reusable.)
  if ((head.status == 204 || head.status == 304) &&
      (head.chunked || head.contentLength.value_or(0) > 0)) {
    upstreamKeepAlive_ = false;
  }
  client_.onUpstreamHead(head);
}

void Exchange::bodyReceived(std::string_view data) {
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
  responseTrailers_ = std::move(connection_->parser_.trailers());
  connection_->parser_.pause();  // the connection is handed on in afterFeed()
}

void Exchange::afterFeed() {
  if (!complete_) {
    client_.onUpstreamReadDone();
    return;
  }
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
  endAttempt();
  headSeen_ = true;
  complete_ = true;
  client_.onUpstreamUpgraded(switchHead_, stream, rest);  // may delete this
}

void Exchange::connectionLost(const std::string& reason) {
  if (connection_ == nullptr) return;
  if (complete_) {
    release(false);
    return;
  }
  const std::string& server = connection_->key_;
  if (!connection_->connected_) {
    attemptFailed(Failure::kConnect, 502, "connect to " + server + ": " + reason);
  } else if (anyResponseByte_) {
    fail(502, server + ": " + reason + " in the middle of the response");
  } else {
    attemptFailed(Failure::kLost, 502, server + ": " + reason + " before answering");
  }
}

// An attempt failed before any response byte reached us (or the request
// could not be sent at all). Counts against the server unless it was a
// pooled connection the origin had closed; then retries where that is safe:
//   - nothing was sent (connect refused or timed out, TLS failure): on the
//     next untried server, whatever the method (a buffered body is replayed);
//   - a pooled connection turned out closed: once more on a new connection to
//     the same server, if the request is idempotent and no body byte was
//     written;
//   - otherwise the request may have reached the origin: no retry.
void Exchange::attemptFailed(Failure failure, int status, const std::string& reason) {
  const bool stale = failure == Failure::kLost && connection_ != nullptr && connection_->reused_;
  const bool nothingSent = failure == Failure::kConnect || failure == Failure::kConnectTimeout;
  if (connection_ != nullptr) release(false);
  endAttempt();
  if (anyResponseByte_) {
    fail(status, reason);
    return;
  }
  if (nothingSent && setup_.tls != nullptr) {
    state_->servers[serverIndex_].session.reset();  // do not offer it again
  }
  if (!stale) pool_.recordFailure(*state_, serverIndex_, upstream_, reason);

  if (stale && request_.idempotent && !bodyWritten_ && !staleRetried_) {
    staleRetried_ = true;
    log::info("upstream " + upstream_.name + ": " + reason +
              " (a pooled connection the origin had closed); retrying on a new connection");
    ++state_->slots[serverIndex_].active;
    attemptActive_ = true;
    connectTo(serverIndex_);
    return;
  }
  if (nothingSent && !bodyWritten_ && tried_.count() < upstream_.servers.size()) {
    log::warning("upstream " + upstream_.name + ": " + reason + "; trying the next server");
    attempt();
    return;
  }
  fail(status, reason);
}

void Exchange::fail(int status, const std::string& reason) {
  if (connection_ != nullptr) release(false);
  endAttempt();
  complete_ = true;
  log::warning("upstream " + upstream_.name + ": " + reason);
  if (starting_) {
    // Not from inside the client's parser callback: from the timer.
    deferredStatus_ = status;
    failReason_ = reason;
    armTimer(0);
    return;
  }
  client_.onUpstreamFailed(status, !headSeen_, reason);  // may delete this
}

void Exchange::release(bool reusable) {
  UpstreamConnection* c = connection_;
  connection_ = nullptr;
  c->exchange_ = nullptr;
  endAttempt();
  if (reusable && c->connected_ && !c->stream_->closing()) {
    c->reused_ = true;
    pool_.putIdle(c, upstream_);
  } else if (c->stream_ != nullptr) {
    c->stream_->close();
  }
}

void Exchange::endAttempt() {
  if (!attemptActive_) return;
  attemptActive_ = false;
  --state_->slots[serverIndex_].active;
}

void Exchange::armTimer(uint64_t delay) {
  if (timer_ == nullptr) {
    timer_ = new uv_timer_t;
    uv_timer_init(pool_.loop(), timer_);
    timer_->data = this;
  }
  uv_timer_start(timer_, &Exchange::onTimer, delay, 0);
}

void Exchange::onTimer(uv_timer_t* timer) noexcept {
  auto* self = static_cast<Exchange*>(timer->data);
  if (self->deferredStatus_ != 0) {
    int status = self->deferredStatus_;
    self->deferredStatus_ = 0;
    self->client_.onUpstreamFailed(status, true, self->failReason_);  // may delete self
    return;
  }
  if (self->complete_) return;
  self->checkTimeouts();
}

// A response is due once the whole request was handed over (or the origin
// started answering early), and only while we read the origin: a pause for a
// slow client is not the origin's silence.
bool Exchange::responseDue() const {
  return (bodyEnded_ || anyResponseByte_) && connection_->stream_->reading();
}

// The timer fires at the connect deadline, then lazily: each check either
// finds a deadline passed or re-arms for the earliest one still ahead, so
// data flowing in and out never touches the timer.
void Exchange::checkTimeouts() {
  if (connection_ == nullptr) return;
  const uint64_t now = pool_.now();
  net::Stream* stream = connection_->stream_;
  const std::string& server = connection_->key_;
  if (!connection_->connected_) {
    std::string what = setup_.tls != nullptr && !stream->peerIp().empty()
                           ? "TLS handshake with " + server
                           : "connect to " + server;
    attemptFailed(Failure::kConnectTimeout, 504,
                  what + " timed out (connect_timeout " +
                      std::to_string(ms(upstream_.connectTimeout)) + " ms)");
    return;
  }
  const uint64_t sendMs = ms(upstream_.sendTimeout);
  const uint64_t readMs = ms(upstream_.readTimeout);
  if (stream->queuedBytes() > 0) {
    uint64_t since = stream->lastWriteProgressAt();
    if (now - since >= sendMs) {
      attemptFailed(Failure::kSendTimeout, 504,
                    server + ": sending the request stalled for " + std::to_string(now - since) +
                        " ms (send_timeout)");
      return;
    }
    armTimer(since + sendMs - now);
    return;
  }
  if (responseDue()) {
    uint64_t since = std::max({stream->lastReadAt(), stream->lastWriteProgressAt(), readingSince_});
    if (now - since >= readMs) {
      attemptFailed(Failure::kReadTimeout, 504,
                    server +
                        (anyResponseByte_ ? ": the response stalled for " : ": no response for ") +
                        std::to_string(now - since) + " ms (read_timeout)");
      return;
    }
    armTimer(since + readMs - now);
    return;
  }
  armTimer(std::min(readMs, sendMs));
}

}  // namespace tlsedge::proxy
