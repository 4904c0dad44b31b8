#include "proxy/client_connection.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string_view>

#include "base/log.h"
#include "http/http_util.h"
#include "http/request_target.h"
#include "proxy/redirect.h"
#include "proxy/upstream/origin_request.h"
#include "proxy/worker.h"

namespace tlsedge::proxy {
namespace {
// Pipelined bytes held while a response is in progress; beyond this the
// client is not read until the response is done.
constexpr size_t kMaxPending = 64 * 1024;
// Lingering close (as nginx's lingering_close): after the last response, a
// client still sending is read and ignored for up to this long, or this many
// bytes, so that it reads the response instead of getting a reset.
constexpr conf::Duration kLingerTime{std::chrono::seconds(5)};
constexpr size_t kLingerMaxBytes = 4 << 20;

using Phase = ConnectionTimer::Phase;

// "HTTP/1.1 NNN Reason\r\n".
std::string statusLine(int status, std::string_view reason) {
  std::string out = "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason.empty() ? http::reasonPhrase(status) : reason;
  out += "\r\n";
  return out;
}

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

// The end-to-end header lines of `head`: hop-by-hop ones and the framing
// (which the caller writes for what it sends) left out.
void appendEndToEndHeaders(std::string& out, const http::MessageHead& head) {
  const auto tokens = connectionTokens(head);
  for (const auto& h : head.headers) {
    if (http::isHopByHop(h.name, tokens) || http::isFraming(h.name)) continue;
    appendField(out, h.name, h.value);
  }
}

}  // namespace

ClientConnection* ClientConnection::accept(Worker& worker, int fd, const sockaddr* peer,
                                           SSL_CTX* tlsContext, net::Stream::ProxyMode proxyMode,
                                           ClientTable::Entry* client) {
  auto* c = new ClientConnection(worker, tlsContext != nullptr);
  c->client_ = client;
  c->clientHandshake_ = client != nullptr && c->tls_;
  SSL* ssl = nullptr;
  if (tlsContext != nullptr) {
    ssl = newServerSsl(tlsContext, &c->handshake_);
    if (ssl == nullptr) {  // out of memory: never fall back to plain text
      ::close(fd);
      delete c;
      return nullptr;
    }
  }
  c->stream_ = net::Stream::adopt(worker.loop(), fd, peer, ssl, c);
  if (c->stream_ == nullptr) {
    delete c;
    return nullptr;
  }
  c->proxyMode_ = proxyMode;
  c->stream_->expectProxyHeader(proxyMode);
  c->timer_.init(worker.loop(), c);
  if (c->tls_) {
    c->handshakePending_ = true;
    worker.handshakeStarted();
  }
  c->stream_->startReading();
  c->updateTimer();
  return c;
}

ClientConnection::ClientConnection(Worker& worker, bool tls)
    : worker_(worker),
      generation_(worker.generation()),
      tls_(tls),
      id_(worker.nextConnectionId()),
      parser_(std::make_unique<http::HttpParser>(http::HttpParser::Kind::kRequest, *this)),
      request_(worker, *generation_, *this, tls) {
  if (tls_) {
    handshakeStartUs_ = uv_hrtime() / 1000;
    certificates_ = worker.acquireCertificates();
    handshake_.selector = certificates_->certificates.get();
    handshake_.stats = &worker.stats();
    handshake_.challenges = &worker.challenges();
    handshake_.http2 = generation_->config->tls.http2;
  }
  parser_->setHeadLimits(limits().maxHeaderSize, limits().maxHeaders);
}

ClientConnection::~ClientConnection() {
  // The HTTP/2 streams' exchanges go first, so that what they pooled is
  // among what closeOwned() finds.
  http2_.reset();
  tunnel_.reset();
  releaseCertificates();
  releaseClient();
  worker_.upstreams().closeOwned(id_);
}

void ClientConnection::endHandshake() {
  if (handshakePending_) {
    handshakePending_ = false;
    worker_.handshakeFinished();
  }
  if (clientHandshake_) {
    clientHandshake_ = false;
    ClientTable::handshakeDone(client_);
  }
}

void ClientConnection::releaseClient() {
  if (clientHandshake_) {
    clientHandshake_ = false;
    ClientTable::handshakeDone(client_);
  }
  worker_.clientClosed(client_);
  client_ = nullptr;
}

// The installed credentials are referenced by the SSL itself: the snapshot
// is only needed until the handshake ends.
void ClientConnection::releaseCertificates() {
  if (certificates_ == nullptr) return;
  handshake_.selector = nullptr;
  worker_.releaseCertificates(certificates_);
  certificates_ = nullptr;
}

void ClientConnection::drain() {
  if (tunnel_ != nullptr) {
    tunnel_->drain();
    return;
  }
  if (http2_ != nullptr) {
    http2_->drain();
    return;
  }
  if (stream_ == nullptr || done_) return;
  // An upgrade: the next request is answered with `Connection: close`
  // rather than closing now, which would race with a request on its way.
  if (!worker_.closesIdle()) return;
  if (!inRequest_) {
    finish(false);
    updateTimer();
  } else {
    keepAlive_ = false;
  }
}

void ClientConnection::abort() {
  if (tunnel_ != nullptr) {
    tunnel_->abort();
  } else if (http2_ != nullptr) {
    http2_->abort();
  } else if (stream_ != nullptr) {
    stream_->close();
  }
}

// ------------------------------------------------------------ stream events

void ClientConnection::onStreamHandshakeDone() {
  releaseCertificates();
  if (SSL* ssl = stream_->ssl(); ssl != nullptr) {
    const size_t version =
        SSL_version(ssl) == TLS1_3_VERSION ? WorkerStats::kTls13 : WorkerStats::kTls12;
    ++worker_.stats().handshakes[version][SSL_session_reused(ssl) ? 1 : 0];
    worker_.stats().handshakeLatency.observe(uv_hrtime() / 1000 - handshakeStartUs_);
  }
  endHandshake();
  if (handshake_.acmeTlsAlpn) {
    // A TLS-ALPN-01 validation: the handshake was all (RFC 8737 section 3);
    // close_notify, then close. No HTTP is read.
    log::debug("client " + stream_->peerIp() + ": acme-tls/1 challenge handshake served");
    done_ = true;
    stream_->shutdown();
    return;
  }
  const uint8_t* alpn = nullptr;
  unsigned alpnLength = 0;
  SSL_get0_alpn_selected(stream_->ssl(), &alpn, &alpnLength);
  if (alpnLength == 2 && std::memcmp(alpn, "h2", 2) == 0) {
    // From here the HTTP/2 connection has the stream and its own timer;
    // this object only owns it.
    timer_.enter(Phase::kNone, conf::Duration{0});
    net::Stream* stream = stream_;
    stream_ = nullptr;
    parser_.reset();  // 392 bytes an HTTP/2 connection has no use for
    http2_ = std::make_unique<Http2Connection>(worker_, *generation_, *stream, *this);
    stream->setHandler(http2_.get());
    http2_->start();
    return;
  }
  handshake_.served.reset();  // only HTTP/2 asks which certificate was served
  updateTimer();
}

void ClientConnection::onStreamData(const char* data, size_t size) {
  if (done_) return;
  if (!pending_.empty() || parser_->paused()) {
    pending_.append(data, size);
    if (pending_.size() > kMaxPending) stream_->stopReading();
    updateTimer();
    return;
  }
  feed(data, size);
  advance();
  updateTimer(Phase::kBody);  // a read: the body countdown starts again
}

void ClientConnection::onStreamEof() {
  peerDone_ = true;
  if (done_) return;
  if (inRequest_) {
    // The request itself was cut short: nothing to answer, unless the client
    // skipped the body it announced with Expect: 100-continue and the answer
    // has begun.
    if (!requestComplete_ && !(request_.responseStarted() && request_.bodyMayNeverCome())) {
      stream_->close();
      return;
    }
    // Else answer it and every request pipelined before the EOF, in order;
    // advance() closes after the last.
    updateTimer();
    return;
  }
  if (!parser_->idle()) {
    stream_->close();  // part of a head, which can never complete
    return;
  }
  finish(false);
  updateTimer();
}

void ClientConnection::onStreamProxyHeader(const net::ProxyHeader* header,
                                           const std::string& error) {
  auto& counts = worker_.stats().proxyHeaders;
  if (header != nullptr) {
    ++counts[WorkerStats::kProxyAccepted];
    // The client is known now (a balancer's own connection names none).
    if (!header->hasAddresses) return;
    const ClientTable::Admission admission =
        worker_.admitClient(reinterpret_cast<const sockaddr*>(&header->source), handshakePending_);
    if (admission.refused) {
      refused_ = true;
      stream_->reset();
      return;
    }
    client_ = admission.entry;
    clientHandshake_ = client_ != nullptr && handshakePending_;
    return;
  }
  refused_ = true;
  const bool untrusted = proxyMode_ == net::Stream::ProxyMode::kRefused;
  ++counts[untrusted ? WorkerStats::kProxyUntrusted : WorkerStats::kProxyMalformed];
  log::debug("client " + stream_->peerIp() + ": refused: " + error);
}

void ClientConnection::onStreamError(const std::string& reason) {
  if (refused_) return;  // counted and logged as such
  if (handshakePending_) {
    ++worker_.stats().handshakeFailures;
    log::debug("client " + stream_->peerIp() + ": TLS handshake failed: " + reason);
    return;
  }
  log::debug("client " + stream_->peerIp() + ": " + reason);
}

void ClientConnection::onStreamDrained() { request_.resumeResponse(); }

void ClientConnection::onStreamWritten() { updateTimer(Phase::kSend); }

void ClientConnection::onStreamClosed() {
  request_.end();  // a request cut by the close is logged with what it got
  releaseCertificates();
  endHandshake();
  releaseClient();
  stream_ = nullptr;
  worker_.connectionClosed(this);
  timer_.close();  // onTimerClosed() deletes this
}

void ClientConnection::onTimerClosed() { delete this; }

void ClientConnection::onIdleTrim() {
  if (stream_ != nullptr) stream_->trimBuffers();
}

// ------------------------------------------------------------------- limits

Phase ClientConnection::currentPhase() const {
  if (tls_ && !stream_->handshakeDone()) return Phase::kHandshake;
  if (stream_->queuedBytes() > 0) return Phase::kSend;
  if (done_) return Phase::kLinger;
  if (inRequest_) {
    // A body is due while we read it; not while the origin holds us back
    // (its own send timeout covers that) or once it is all here.
    return !requestComplete_ && stream_->reading() ? Phase::kBody : Phase::kNone;
  }
  if (parser_->inHead()) return Phase::kHead;
  return peerDone_ ? Phase::kNone : Phase::kIdle;
}

void ClientConnection::updateTimer(Phase progress) {
  if (stream_ == nullptr || stream_->closing()) return;
  const Phase next = currentPhase();
  const bool restart = next == progress;
  if (next == timer_.phase() && !restart) return;
  const conf::Limits& l = limits();
  conf::Duration timeout{0};
  switch (next) {
    case Phase::kNone:
      break;
    case Phase::kHandshake:
      timeout = l.handshakeTimeout;
      break;
    case Phase::kIdle:
      timeout = l.keepaliveTimeout;
      break;
    case Phase::kHead:
      timeout = l.headerTimeout;
      break;
    case Phase::kBody:
      timeout = l.bodyTimeout;
      break;
    case Phase::kSend:
      sendMark_ = stream_->bytesSent();
      timeout = l.sendTimeout;
      break;
    case Phase::kLinger:
      timeout = kLingerTime;
      break;
  }
  timer_.enter(next, timeout, true);
}

void ClientConnection::onDeadline(Phase phase) {
  if (stream_ == nullptr || stream_->closing()) return;
  WorkerStats& stats = worker_.stats();
  const std::string& peer = stream_->peerIp();
  switch (phase) {
    case Phase::kNone:
      break;
    case Phase::kHandshake:
      ++stats.handshakeTimeouts;
      log::debug("client " + peer + ": TLS handshake timed out");
      stream_->close();
      return;
    case Phase::kIdle:
      ++stats.idleTimeouts;
      log::debug("client " + peer + ": idle, closed");
      finish(false);
      break;
    case Phase::kHead:
      ++stats.headerTimeouts;
      ++stats.requestTimeouts;
      log::debug("client " + peer + ": request head timed out (408)");
      request_.refuse(408, "Request Timeout: the request head took too long\n");
      break;
    case Phase::kBody:
      ++stats.bodyTimeouts;
      if (!request_.responseStarted()) ++stats.requestTimeouts;
      log::debug("client " + peer + ": request body stalled" +
                 (request_.responseStarted() ? ", closed" : " (408)"));
      request_.refuse(408, "Request Timeout: the request body stalled\n");
      break;
    case Phase::kSend:
      if (stream_->bytesSent() != sendMark_) break;  // the kernel took part of a write: go on
      ++stats.sendTimeouts;
      log::debug("client " + peer + ": took no response bytes for the send timeout, closed");
      stream_->reset();  // frees what the kernel still holds for it
      return;
    case Phase::kLinger:
      stream_->close();
      return;
  }
  updateTimer();
}

// ----------------------------------------------------------- request events

void ClientConnection::feed(const char* data, size_t size) {
  size_t used = parser_->feed(data, size);
  if (done_ || stream_->closing()) return;
  if (parser_->failed()) {
    rejectMalformed();
    return;
  }
  if (parser_->upgraded()) {
    // After an upgrade request or CONNECT nothing is HTTP. (Usually the pause
    // in onMessageComplete comes first and the parser is never resumed, as
    // keepAlive_ is off.) The bytes wait in pending_ for a tunnel.
    requestComplete_ = true;
    request_.bodyDone();
    keepAlive_ = false;
  }
  if (used < size) pending_.append(data + used, size - used);
}

void ClientConnection::rejectMalformed() {
  WorkerStats& stats = worker_.stats();
  const std::string& reason = parser_->errorReason();
  const auto error = parser_->error();
  if (error == http::HttpParser::Error::kHeadTooLarge ||
      error == http::HttpParser::Error::kTooManyHeaders) {
    ++stats.headsTooLarge;
    log::debug("client " + stream_->peerIp() + ": 431: " + reason);
    request_.refuse(431, "Request Header Fields Too Large: " + reason + "\n");
    return;
  }
  ++stats.badRequests;
  log::debug("client " + stream_->peerIp() + ": bad request: " + reason);
  request_.refuse(400, "Bad Request: " + reason + "\n");
}

void ClientConnection::onHead(http::MessageHead& head) {
  inRequest_ = true;
  requestComplete_ = false;
  responseComplete_ = false;
  chunkedResponse_ = false;
  // A client that half-closed after pipelining still gets keep-alive answers
  // to each request; advance() closes after the last.
  keepAlive_ = head.keepAlive && !worker_.draining();
  clientCloses_ = !head.keepAlive;
  clientHttp11_ = head.versionMajor == 1 && head.versionMinor >= 1;
  // Upgrade + Connection: upgrade, or CONNECT. Whatever the answer, nothing
  // after this request is HTTP: the connection becomes a tunnel (101) or
  // closes after the response.
  if (head.upgrade) keepAlive_ = false;
  request_.begin(head);
}

void ClientConnection::onBody(std::string_view data) { request_.body(data); }

void ClientConnection::onMessageComplete() {
  requestComplete_ = true;
  request_.bodyDone(parser_->trailers());
  parser_->pause();  // one request at a time; advance() resumes
}

// ------------------------------------------------------- responses (Downstream)

std::string ClientConnection::headBytes(const ResponseHead& head) {
  // Expect: 100-continue unanswered: the body may never come, so the
  // connection cannot be reused.
  if (head.closing || request_.bodyMayNeverCome()) keepAlive_ = false;
  std::string out = statusLine(head.status, head.reason);
  out.reserve(512);
  if (head.origin != nullptr) {
    appendEndToEndHeaders(out, *head.origin);
  } else {
    out += "Server: tlsedge\r\n";
  }
  if (!head.contentType.empty()) appendField(out, "Content-Type", head.contentType);
  if (!head.location.empty()) appendField(out, "Location", head.location);
  // The framing of what follows on this hop, whatever Connection named.
  chunkedResponse_ = false;
  if (head.status == 204) {
    // RFC 9110 8.6: never a Content-Length (nor chunked framing) on a 204.
  } else if (head.originChunked) {
    // For HEAD and 304 it tells what a GET would have got (RFC 9110 9.3.2).
    if (head.status != 304) out += "Transfer-Encoding: chunked\r\n";
    chunkedResponse_ = !head.bodyless;
  } else if (head.contentLength) {
    appendField(out, "Content-Length", std::to_string(*head.contentLength));
  } else if (!head.bodyless) {
    // Delimited by the origin closing: re-frame as chunked for an HTTP/1.1
    // client so its connection survives; an HTTP/1.0 client gets the close.
    if (clientHttp11_) {
      out += "Transfer-Encoding: chunked\r\n";
      chunkedResponse_ = true;
    } else {
      keepAlive_ = false;
    }
  }
  if (!head.hsts.empty()) appendField(out, "Strict-Transport-Security", head.hsts);
  if (head.retryAfter != 0) appendField(out, "Retry-After", std::to_string(head.retryAfter));
  if (!keepAlive_) out += "Connection: close\r\n";
  out += "\r\n";
  return out;
}

void ClientConnection::respond(const ResponseHead& head, std::string_view body) {
  std::string out = headBytes(head);
  if (!head.bodyless) out += body;
  send(std::move(out));
  responseComplete_ = true;
}

void ClientConnection::sendHead(const ResponseHead& head) {
  // The head waits for the body bytes of the same origin read: one TLS
  // record and one write for a small response (settle() sends it).
  stream_->cork();
  send(headBytes(head));
}

void ClientConnection::sendBody(std::string_view data) {
  if (chunkedResponse_) {
    send(http::chunk(data));
  } else {
    send(data);
  }
}

void ClientConnection::endResponse(const std::vector<http::Header>& trailers) {
  if (chunkedResponse_ && trailers.empty()) {
    send(http::kLastChunk);
  } else if (chunkedResponse_) {
    send(http::lastChunk(trailers));  // a Content-Length response cannot carry them
  }
  responseComplete_ = true;
}

void ClientConnection::cutResponse() {
  // Part of the response went out: only a close tells the client it is cut.
  stream_->uncork();
  stream_->close();
}

bool ClientConnection::sendInterim(const http::MessageHead& head) {
  if (!clientHttp11_) return false;
  std::string out = statusLine(head.status, head.reason);
  appendEndToEndHeaders(out, head);
  out += "\r\n";
  send(out);
  return true;
}

void ClientConnection::upgraded(http::MessageHead& head, net::Stream* origin,
                                std::string_view originBytes) {
  std::string out = statusLine(head.status, head.reason);
  appendEndToEndHeaders(out, head);
  out += "Connection: upgrade\r\nUpgrade: ";
  bool first = true;
  http::forEachUpgrade(head, [&](std::string_view protocol, std::string_view) {
    if (!first) out += ", ";
    first = false;
    out += protocol;
  });
  out += "\r\n\r\n";
  send(out);
  responseComplete_ = true;
  request_.end();  // what follows is not HTTP
  // From here the tunnel has both streams and its own idle timer; this
  // object only owns it.
  timer_.enter(Phase::kNone, conf::Duration{0});
  net::Stream* client = stream_;
  stream_ = nullptr;
  std::string early = std::move(pending_);
  pending_.clear();
  const auto idle = generation_->config->limits.tunnelIdleTimeout.count();
  tunnel_ = std::make_unique<Tunnel>(*client, *origin, *this, static_cast<uint64_t>(idle));
  tunnel_->start(early, originBytes, peerDone_);
}

void ClientConnection::onTunnelClosed() { handedOffClosed(); }

void ClientConnection::onHttp2Closed() { handedOffClosed(); }

void ClientConnection::handedOffClosed() {
  releaseClient();
  worker_.connectionClosed(this);
  timer_.close();  // onTimerClosed() deletes this
}

void ClientConnection::pauseBody() { stream_->stopReading(); }

void ClientConnection::resumeBody() {
  advance();  // reads again unless something else holds the client back
  updateTimer();
}

bool ClientConnection::writeQueueFull() const { return stream_->writeQueueFull(); }

void ClientConnection::settle() {
  // Still corked after a last response: it leaves with the close_notify in
  // one write; answers to pipelined requests join it.
  advance();
  if (stream_ == nullptr) return;
  stream_->uncork();
  updateTimer();
}

void ClientConnection::abandon() {
  keepAlive_ = false;
  finish(true);
}

const std::string& ClientConnection::peerIp() const {
  static const std::string kNone;
  return stream_ != nullptr ? stream_->peerIp() : kNone;
}

void ClientConnection::finish(bool linger) {
  if (done_) return;
  done_ = true;
  request_.end();
  parser_->pause();  // when called from a parser callback: parse nothing more
  pending_.clear();
  if (linger && !peerDone_) {
    stream_->shutdownLingering(kLingerMaxBytes);
  } else {
    stream_->shutdown();
  }
}

void ClientConnection::send(std::string_view data) {
  request_.countBytesOut(data.size());
  stream_->write(data);
}

void ClientConnection::send(std::string&& data) {
  request_.countBytesOut(data.size());
  stream_->write(std::move(data));
}

// Moves to the next request once both halves of the current one are done.
// Never called from inside this connection's parser callbacks.
void ClientConnection::advance() {
  if (done_ || stream_->closing()) return;
  while (inRequest_ && responseComplete_ && (requestComplete_ || !keepAlive_)) {
    request_.end();
    inRequest_ = false;
    if (!keepAlive_ || worker_.closesIdle()) {
      // Linger while the client may still be sending (a body we did not wait
      // for, pipelined requests, a client that meant to keep the connection),
      // unless shutting down. One that asked to close, whose request was read
      // whole with nothing after it, sends nothing more but its close_notify
      // after reading ours (nginx's heuristic too): close at once.
      const bool mayStillSend = !requestComplete_ || !pending_.empty() || !clientCloses_;
      finish(mayStillSend && !worker_.draining());
      return;
    }
    parser_->resume();
    if (pending_.empty()) break;
    std::string input = std::move(pending_);
    pending_.clear();
    feed(input.data(), input.size());
    if (done_ || stream_->closing()) return;
  }
  if (!inRequest_ && peerDone_) {
    // Every request the client sent before its EOF is answered; anything
    // left (part of a head) can never complete.
    finish(false);
    return;
  }
  if (!stream_->reading() && pending_.size() <= kMaxPending && !request_.bodyBlocked() &&
      !peerDone_) {
    stream_->startReading();
  }
}

}  // namespace tlsedge::proxy
