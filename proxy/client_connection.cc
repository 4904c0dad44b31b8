#include "proxy/client_connection.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string_view>

#include "base/log.h"
#include "http/http_util.h"
#include "http/request_target.h"
#include "proxy/redirect.h"
#include "proxy/upstream/origin_request.h"
#include "proxy/worker.h"

namespace tlsedge::proxy {
namespace {
constexpr std::string_view kChallengePrefix = "/.well-known/acme-challenge/";
// Pipelined bytes held while a response is in progress; beyond this the
// client is not read until the response is done.
constexpr size_t kMaxPending = 64 * 1024;
// Lingering close (as nginx's lingering_close): after the last response, a
// client still sending is read and ignored for up to this long, or this many
// bytes, so that it reads the response instead of getting a reset.
constexpr conf::Duration kLingerTime{std::chrono::seconds(5)};
constexpr size_t kLingerMaxBytes = 4 << 20;

using Phase = ConnectionTimer::Phase;

bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

// "HTTP/1.1 NNN Reason\r\n" for an origin's response head.
std::string statusLine(const http::MessageHead& head) {
  std::string out = "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += head.reason.empty() ? http::reasonPhrase(head.status) : std::string_view(head.reason);
  out += "\r\n";
  return out;
}

// The end-to-end header lines of `head`: hop-by-hop ones and the framing
// (which the caller writes for what it sends) left out.
void appendEndToEndHeaders(std::string& out, const http::MessageHead& head) {
  const auto tokens = connectionTokens(head);
  for (const auto& h : head.headers) {
    if (http::isHopByHop(h.name, tokens) || http::isFraming(h.name)) continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
}

// Calls fn(protocol, name) for each protocol of every Upgrade field of
// `head` ("websocket"; "foo/2" has the name "foo"), RFC 9110 7.8.
template <typename Fn>
void forEachUpgrade(const http::MessageHead& head, Fn fn) {
  for (const auto& h : head.headers) {
    if (!ascii::equalsIgnoreCase(h.name, "upgrade")) continue;
    http::forEachListItem(h.value, [&](std::string_view protocol) {
      fn(protocol, protocol.substr(0, protocol.find('/')));
    });
  }
}

// The protocols of a client's Upgrade that `site` tunnels, comma-joined in
// the client's order; empty if none (RFC 9110 7.8: the others are ignored).
std::string offeredUpgrades(const http::MessageHead& head, const conf::Site& site) {
  std::string out;
  forEachUpgrade(head, [&](std::string_view protocol, std::string_view name) {
    const bool allowed =
        std::any_of(site.upgrades.begin(), site.upgrades.end(),
                    [&](const std::string& p) { return ascii::equalsIgnoreCase(name, p); });
    if (!allowed) return;
    if (!out.empty()) out += ", ";
    out += protocol;
  });
  return out;
}

// Whether an origin's 101 switched to a protocol `offered` named (RFC 9110
// 15.2.2: a server switches only to one the client listed).
bool switchedToOffered(const http::MessageHead& response, std::string_view offered) {
  bool any = false;
  bool all = true;
  forEachUpgrade(response, [&](std::string_view, std::string_view name) {
    bool listed = false;
    http::forEachListItem(offered, [&](std::string_view protocol) {
      listed = listed || ascii::equalsIgnoreCase(name, protocol.substr(0, protocol.find('/')));
    });
    any = true;
    all = all && listed;
  });
  return any && all;
}

}  // namespace

ClientConnection* ClientConnection::accept(Worker& worker, int fd, const sockaddr* peer,
                                           SSL_CTX* tlsContext) {
  auto* c = new ClientConnection(worker, tlsContext != nullptr);
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
      parser_(http::HttpParser::Kind::kRequest, *this) {
  if (tls_) {
    handshakeStartUs_ = uv_hrtime() / 1000;
    certificates_ = worker.acquireCertificates();
    handshake_.selector = certificates_->certificates.get();
    handshake_.stats = &worker.stats();
    handshake_.challenges = &worker.challenges();
  }
  parser_.setHeadLimits(limits().maxHeaderSize, limits().maxHeaders);
}

ClientConnection::~ClientConnection() { releaseCertificates(); }

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
  if (handshakePending_) {
    handshakePending_ = false;
    worker_.handshakeFinished();
  }
  if (handshake_.acmeTlsAlpn) {
    // A TLS-ALPN-01 validation: the handshake was all (RFC 8737 section 3);
    // close_notify, then close. No HTTP is read.
    log::debug("client " + stream_->peerIp() + ": acme-tls/1 challenge handshake served");
    done_ = true;
    stream_->shutdown();
    return;
  }
  updateTimer();
}

void ClientConnection::onStreamData(const char* data, size_t size) {
  if (done_) return;
  if (!pending_.empty() || parser_.paused()) {
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
    if (!requestComplete_ && !(responseStarted_ && bodyMayNeverCome())) {
      stream_->close();
      return;
    }
    // Else answer it and every request pipelined before the EOF, in order;
    // advance() closes after the last.
    updateTimer();
    return;
  }
  if (!parser_.idle()) {
    stream_->close();  // part of a head, which can never complete
    return;
  }
  finish(false);
  updateTimer();
}

void ClientConnection::onStreamError(const std::string& reason) {
  if (handshakePending_) {
    ++worker_.stats().handshakeFailures;
    log::debug("client " + stream_->peerIp() + ": TLS handshake failed: " + reason);
    return;
  }
  log::debug("client " + stream_->peerIp() + ": " + reason);
}

void ClientConnection::onStreamDrained() {
  if (exchange_ != nullptr) exchange_->resumeResponse();
}

void ClientConnection::onStreamWritten() { updateTimer(Phase::kSend); }

void ClientConnection::onStreamClosed() {
  endLog();  // a request cut by the close is logged with what it got
  exchange_.reset();
  releaseCertificates();
  if (handshakePending_) {
    handshakePending_ = false;
    worker_.handshakeFinished();
  }
  stream_ = nullptr;
  worker_.connectionClosed(this);
  timer_.close();  // onTimerClosed() deletes this
}

void ClientConnection::onTimerClosed() { delete this; }

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
  if (parser_.inHead()) return Phase::kHead;
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
      respondAndClose(408, "Request Timeout: the request head took too long\n");
      break;
    case Phase::kBody:
      ++stats.bodyTimeouts;
      if (!responseStarted_) ++stats.requestTimeouts;
      log::debug("client " + peer + ": request body stalled" +
                 (responseStarted_ ? ", closed" : " (408)"));
      respondAndClose(408, "Request Timeout: the request body stalled\n");
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
  size_t used = parser_.feed(data, size);
  if (done_ || stream_->closing()) return;
  if (parser_.failed()) {
    rejectMalformed();
    return;
  }
  if (parser_.upgraded()) {
    // After an upgrade request or CONNECT nothing is HTTP. (Usually the pause
    // in onMessageComplete comes first and the parser is never resumed, as
    // keepAlive_ is off.) The bytes wait in pending_ for a tunnel.
    requestComplete_ = true;
    keepAlive_ = false;
  }
  if (used < size) pending_.append(data + used, size - used);
}

void ClientConnection::rejectMalformed() {
  WorkerStats& stats = worker_.stats();
  const std::string& reason = parser_.errorReason();
  const auto error = parser_.error();
  if (error == http::HttpParser::Error::kHeadTooLarge ||
      error == http::HttpParser::Error::kTooManyHeaders) {
    ++stats.headsTooLarge;
    log::debug("client " + stream_->peerIp() + ": 431: " + reason);
    respondAndClose(431, "Request Header Fields Too Large: " + reason + "\n");
    return;
  }
  ++stats.badRequests;
  log::debug("client " + stream_->peerIp() + ": bad request: " + reason);
  respondAndClose(400, "Bad Request: " + reason + "\n");
}

void ClientConnection::onHead(http::MessageHead& head) {
  requestStartUs_ = uv_hrtime() / 1000;
  beginLog(head);
  inRequest_ = true;
  requestComplete_ = false;
  responseComplete_ = false;
  // A client that half-closed after pipelining still gets keep-alive answers
  // to each request; advance() closes after the last.
  keepAlive_ = head.keepAlive && !worker_.draining();
  clientCloses_ = !head.keepAlive;
  headRequest_ = head.method == "HEAD";
  clientHttp11_ = head.versionMajor == 1 && head.versionMinor >= 1;
  responseStarted_ = false;
  site_ = nullptr;
  upgradeOffer_.clear();
  continueRelayed_ = false;
  // RFC 9110 10.1.1: only HTTP/1.1 clients expect a 100, and only for content.
  const std::string* expect = head.find("expect");
  expectContinue_ = clientHttp11_ && expect != nullptr &&
                    ascii::equalsIgnoreCase(*expect, "100-continue") &&
                    (head.chunked || head.contentLength.value_or(0) > 0);
  bodyBytes_ = 0;
  const uint64_t maxBody = limits().maxBodySize;
  if (maxBody != 0 && head.contentLength.value_or(0) > maxBody) {
    // Refused before a byte of the body is read.
    ++worker_.stats().bodiesTooLarge;
    log::debug("client " + stream_->peerIp() + ": 413: Content-Length " +
               std::to_string(*head.contentLength));
    respondAndClose(413, "Content Too Large\n");
    return;
  }
  if (head.upgrade) {
    // Upgrade + Connection: upgrade, or CONNECT. Whatever the answer, nothing
    // after this request is HTTP: the connection becomes a tunnel (101) or
    // closes after the response.
    keepAlive_ = false;
    if (head.method == "CONNECT") {
      respond(501, "Not Implemented: CONNECT (tlsedge is a reverse proxy, not a forward proxy)\n");
      return;
    }
  }
  http::RequestTarget target;
  if (const std::string_view refused = resolveRequestTarget(head, target); !refused.empty()) {
    // A request whose routing is in doubt (two Host fields, userinfo, a bad
    // authority): nothing after it on this connection is trusted either.
    ++worker_.stats().badRequests;
    log::debug("client " + stream_->peerIp() + ": bad request: " + std::string(refused));
    respondAndClose(400, "Bad Request: " + std::string(refused) + "\n");
    return;
  }
  if (log_ != nullptr) log_->host = target.authority;
  route(head, target);
}

void ClientConnection::route(http::MessageHead& head, const http::RequestTarget& request) {
  const Generation& gen = *generation_;
  const std::string_view target = request.target;
  if (!tls_ && target.starts_with(kChallengePrefix)) {
    // RFC 8555 section 8.3: answered here, whatever the site's settings.
    std::string_view token = target.substr(kChallengePrefix.size());
    token = token.substr(0, token.find('?'));
    auto keyAuthorization =
        acme::validToken(token) ? worker_.challenges().find(token) : std::nullopt;
    if (keyAuthorization) {
      ++worker_.stats().challengesServed;
      respond(200, *keyAuthorization, "text/plain");
    } else {
      respond(404, "Not Found: unknown challenge token\n");
    }
    return;
  }
  site_ = gen.router->findSite(request.authority);
  if (site_ == nullptr) {
    respond(404, "Not Found: no site for this host\n");
    return;
  }
  if (!tls_ && site_->redirectHttps) {
    std::string location = httpsRedirectLocation(request.authority, target, worker_.httpsPort());
    if (location.empty()) {
      respond(400, "Bad Request: invalid Host header\n");
      return;
    }
    ++worker_.stats().redirects;
    respond(site_->redirectStatus, "", "", "Location: " + location + "\r\n");
    return;
  }
  const conf::Route* r = gen.router->findRoute(*site_, target);
  if (r == nullptr) {
    respond(404, "Not Found: no route for this path\n");
    return;
  }
  if (r->respond) {
    respond(r->respond->status, r->respond->body, r->respond->contentType);
    return;
  }
  const conf::Upstream* upstream = gen.config->findUpstream(r->upstream);
  if (upstream == nullptr || upstream->servers.empty()) {  // validated away; be safe
    respond(502, "Bad Gateway: no upstream\n");
    return;
  }
  // RFC 9110 7.8: an HTTP/1.0 Upgrade is ignored; so is every protocol the
  // site does not tunnel (never h2c, whose tunnel would skip routing).
  if (head.upgrade && clientHttp11_) upgradeOffer_ = offeredUpgrades(head, *site_);
  proxyTo(*upstream, head, request);
}

void ClientConnection::proxyTo(const conf::Upstream& upstream, http::MessageHead& head,
                               const http::RequestTarget& target) {
  Exchange::Request request;
  request.head = originRequestHead({head, target.target, target.authority, stream_->peerIp(), tls_,
                                    /*keepExpect=*/clientHttp11_, upgradeOffer_});
  if (head.chunked) {
    request.framing = BodyFraming::kChunked;
  } else if (head.contentLength.value_or(0) > 0) {
    request.framing = BodyFraming::kLength;
  }
  request.headMethod = headRequest_;
  request.idempotent = isIdempotent(head.method);
  request.upgrade = !upgradeOffer_.empty();
  if (log_ != nullptr) log_->upstream = upstream.name;
  exchange_ = std::make_unique<Exchange>(worker_.upstreams(), generation_->upstreamSetup(upstream),
                                         std::move(request), *this);
  exchange_->start();
}

void ClientConnection::onBody(std::string_view data) {
  bodyBytes_ += data.size();
  const uint64_t maxBody = limits().maxBodySize;
  if (maxBody != 0 && bodyBytes_ > maxBody) {
    // Chunked (or answered early and still coming): the running total. The
    // exchange is aborted, so the origin sees a cut request, never a
    // truncated body passed off as whole.
    ++worker_.stats().bodiesTooLarge;
    log::debug("client " + stream_->peerIp() + ": 413: body over " + std::to_string(maxBody) +
               " bytes");
    respondAndClose(413, "Content Too Large\n");
    return;
  }
  if (exchange_ == nullptr) return;  // answered already: the body is read and dropped
  exchange_->sendBody(data);
  if (exchange_->writeQueueFull()) stream_->stopReading();  // onUpstreamDrained resumes
}

void ClientConnection::onMessageComplete() {
  requestComplete_ = true;
  if (exchange_ != nullptr) exchange_->endBody();
  parser_.pause();  // one request at a time; advance() resumes
}

// ---------------------------------------------------------------- responses

std::string ClientConnection::siteHeaders() const {
  if (!tls_ || site_ == nullptr || !site_->hsts) return {};
  return "Strict-Transport-Security: " + hstsHeaderValue(*site_->hsts) + "\r\n";
}

// Expect: 100-continue, no 100 sent and the body not all read: the client
// may never send it (RFC 9110 10.1.1), so the connection cannot be reused.
bool ClientConnection::bodyMayNeverCome() const {
  return expectContinue_ && !continueRelayed_ && !requestComplete_;
}

void ClientConnection::respond(int status, std::string_view body, std::string_view contentType,
                               std::string_view extraHeaders) {
  if (bodyMayNeverCome()) keepAlive_ = false;
  logStatus(status);
  std::string headers(extraHeaders);
  headers += siteHeaders();
  send(http::simpleResponse(status, contentType, body, keepAlive_, headers, headRequest_));
  responseStarted_ = true;
  responseComplete_ = true;
}

void ClientConnection::respondAndClose(int status, std::string_view body) {
  exchange_.reset();
  keepAlive_ = false;
  if (!inRequest_ || !responseStarted_) {
    logStatus(status);
    send(http::simpleResponse(status, "text/plain; charset=utf-8", body, false, {}, false));
    responseStarted_ = true;
  }
  finish(true);
}

void ClientConnection::finish(bool linger) {
  if (done_) return;
  done_ = true;
  endLog();
  parser_.pause();  // when called from a parser callback: parse nothing more
  pending_.clear();
  exchange_.reset();
  if (linger && !peerDone_) {
    stream_->shutdownLingering(kLingerMaxBytes);
  } else {
    stream_->shutdown();
  }
}

void ClientConnection::onUpstreamHead(http::MessageHead& head) {
  if (bodyMayNeverCome()) keepAlive_ = false;
  logStatus(head.status);
  const uint64_t nowUs = uv_hrtime() / 1000;
  if (requestStartUs_ != 0) worker_.stats().upstreamLatency.observe(nowUs - requestStartUs_);
  if (log_ != nullptr) {
    log_->upstreamHeaderUs = static_cast<int64_t>(nowUs - log_->startUs);
    log_->upstreamAddr = exchange_->serverAddress();
  }
  const auto tokens = connectionTokens(head);
  // RFC 9112 6.3: no content whatever the head says (the exchange's parser
  // reads none, and bytes after such a head close the origin connection).
  const bool bodyless = http::bodylessResponse(head.status, headRequest_);
  std::string out = statusLine(head);
  out.reserve(512);
  bool originHsts = false;
  for (const auto& h : head.headers) {
    if (http::isHopByHop(h.name, tokens) || http::isFraming(h.name)) continue;
    originHsts = originHsts || ascii::equalsIgnoreCase(h.name, "strict-transport-security");
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  // The framing of what follows on this hop, whatever Connection named.
  chunkedResponse_ = false;
  if (head.status == 204) {
    // RFC 9110 8.6: never a Content-Length (nor chunked framing) on a 204.
  } else if (head.chunked) {
    // For HEAD and 304 it tells what a GET would have got (RFC 9110 9.3.2).
    if (head.status != 304) out += "Transfer-Encoding: chunked\r\n";
    chunkedResponse_ = !bodyless;
  } else if (head.contentLength) {
    out += "Content-Length: ";
    out += std::to_string(*head.contentLength);
    out += "\r\n";
  } else if (!bodyless) {
    // Delimited by the origin closing: re-frame as chunked for an HTTP/1.1
    // client so its connection survives; an HTTP/1.0 client gets the close.
    if (clientHttp11_) {
      out += "Transfer-Encoding: chunked\r\n";
      chunkedResponse_ = true;
    } else {
      keepAlive_ = false;
    }
  }
  if (!originHsts) out += siteHeaders();
  if (!keepAlive_) out += "Connection: close\r\n";
  out += "\r\n";
  // The head waits for the body bytes of the same origin read: one TLS
  // record and one write for a small response (onUpstreamReadDone or
  // onUpstreamComplete sends it).
  stream_->cork();
  send(std::move(out));
  responseStarted_ = true;
}

void ClientConnection::onUpstreamInterim(http::MessageHead& head) {
  // RFC 9110 15.2: a proxy forwards 1xx, but never to an HTTP/1.0 client.
  if (!clientHttp11_ || responseStarted_) return;
  std::string out = statusLine(head);
  appendEndToEndHeaders(out, head);
  out += "\r\n";
  send(out);
  if (head.status == 100) continueRelayed_ = true;
}

void ClientConnection::onUpstreamUpgraded(http::MessageHead& head, net::Stream* origin,
                                          std::string_view originBytes) {
  // Complete; deleted on return (`head` lives in it). The stream is ours now.
  std::unique_ptr<Exchange> finished = std::move(exchange_);
  if (!requestComplete_) {
    // Switched before the request's own body was all here: no clean tunnel.
    origin->close();
    log::warning("client " + stream_->peerIp() + ": origin switched protocols mid-request");
    respondAndClose(502, "Bad Gateway: origin switched protocols before the request ended\n");
    return;
  }
  if (!switchedToOffered(head, upgradeOffer_)) {
    // A tunnel to a protocol the client never asked for (or that this site
    // does not tunnel, h2c above all) would pass every routing rule.
    origin->close();
    ++worker_.stats().upstreamErrors;
    log::warning("client " + stream_->peerIp() +
                 ": origin switched to a protocol that was not offered (" + upgradeOffer_ + ")");
    respondAndClose(502, "Bad Gateway: origin switched to a protocol that was not offered\n");
    return;
  }
  std::string out = statusLine(head);
  appendEndToEndHeaders(out, head);
  out += "Connection: upgrade\r\nUpgrade: ";
  bool first = true;
  forEachUpgrade(head, [&](std::string_view protocol, std::string_view) {
    if (!first) out += ", ";
    first = false;
    out += protocol;
  });
  out += "\r\n\r\n";
  send(out);
  responseStarted_ = true;
  responseComplete_ = true;
  logStatus(101);
  if (log_ != nullptr) log_->upstreamAddr = finished->serverAddress();
  endLog();  // what follows is not HTTP
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

void ClientConnection::onTunnelClosed() {
  worker_.connectionClosed(this);
  timer_.close();  // onTimerClosed() deletes this
}

void ClientConnection::onUpstreamBody(std::string_view data) {
  if (data.empty()) return;
  if (chunkedResponse_) {
    send(http::chunk(data));
  } else {
    send(data);
  }
}

void ClientConnection::onUpstreamReadDone() {
  stream_->uncork();
  updateTimer();
}

void ClientConnection::countFault(ResponseFault fault) {
  if (fault == ResponseFault::kNone) return;
  ++worker_.stats().upstreamInvalidResponses[static_cast<size_t>(fault) - 1];
}

void ClientConnection::onUpstreamComplete() {
  countFault(exchange_->fault());
  if (chunkedResponse_) send(http::kLastChunk);
  responseComplete_ = true;
  // Still corked: a last response leaves with the close_notify in one write;
  // answers to pipelined requests join it.
  advance();
  stream_->uncork();
  updateTimer();
}

void ClientConnection::onUpstreamFailed(int status, bool beforeHead, const std::string& reason) {
  (void)reason;  // logged by the exchange
  if (log_ != nullptr) log_->upstreamAddr = exchange_->serverAddress();
  ++worker_.stats().upstreamErrors;
  countFault(exchange_->fault());
  if (!beforeHead) {
    // Part of the response went out: only a close tells the client it is cut.
    stream_->uncork();
    stream_->close();
    return;
  }
  if (!requestComplete_) keepAlive_ = false;  // do not wait for the rest of a body
  respond(status, std::string(http::reasonPhrase(status)) + "\n");
  advance();
  updateTimer();
}

void ClientConnection::onUpstreamDrained() {
  advance();
  updateTimer();
}

bool ClientConnection::clientWriteQueueFull() const { return stream_->writeQueueFull(); }

void ClientConnection::send(std::string_view data) {
  if (log_ != nullptr) log_->bytesOut += data.size();
  stream_->write(data);
}

void ClientConnection::send(std::string&& data) {
  if (log_ != nullptr) log_->bytesOut += data.size();
  stream_->write(std::move(data));
}

// ---------------------------------------------------------------- access log

void ClientConnection::beginLog(const http::MessageHead& head) {
  statusCounted_ = false;
  if (!worker_.accessLog().enabled()) {
    log_.reset();
    return;
  }
  if (log_ == nullptr) log_ = std::make_unique<RequestLog>();
  RequestLog& r = *log_;
  r.pending = true;
  r.startUnixMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  r.startUs = requestStartUs_;
  r.method = head.method;
  r.target = head.target;
  const std::string* host = head.find("host");
  r.host = host != nullptr ? *host : std::string();
  r.upstream.clear();
  r.upstreamAddr.clear();
  r.versionMinor = head.versionMinor;
  r.status = 0;
  r.bytesOut = 0;
  r.upstreamHeaderUs = -1;
}

void ClientConnection::logStatus(int status) {
  if (!statusCounted_) {
    statusCounted_ = true;
    WorkerStats::countResponse(siteCounts(), status);
  }
  if (log_ != nullptr && log_->status == 0) log_->status = status;
}

WorkerStats::StatusCounts& ClientConnection::siteCounts() {
  if (siteCounts_ == nullptr || countedSite_ != site_) {
    countedSite_ = site_;
    siteCounts_ =
        &worker_.stats().siteCounts(site_ != nullptr ? site_->name : WorkerStats::kNoSite);
  }
  return *siteCounts_;
}

void ClientConnection::endLog() {
  const bool logPending = log_ != nullptr && log_->pending;
  if (requestStartUs_ == 0 && !logPending) return;
  // One clock read for the histogram and the access log: a read costs as
  // much as the rest of the bookkeeping (docs/benchmarks.md).
  const uint64_t nowUs = uv_hrtime() / 1000;
  if (requestStartUs_ != 0) {
    if (statusCounted_) worker_.stats().requestLatency.observe(nowUs - requestStartUs_);
    requestStartUs_ = 0;
  }
  if (!logPending) return;
  RequestLog& r = *log_;
  r.pending = false;
  AccessRecord record;
  record.startUnixMs = r.startUnixMs;
  if (stream_ != nullptr) record.client = stream_->peerIp();
  record.tls = tls_;
  record.site = site_ != nullptr ? std::string_view(site_->name) : std::string_view();
  record.host = r.host;
  record.method = r.method;
  record.target = r.target;
  record.versionMinor = r.versionMinor;
  record.status = r.status;
  record.bytesIn = bodyBytes_;
  record.bytesOut = r.bytesOut;
  record.durationUs = static_cast<int64_t>(nowUs - r.startUs);
  record.upstream = r.upstream;
  record.upstreamAddr = r.upstreamAddr;
  record.upstreamHeaderUs = r.upstreamHeaderUs;
  worker_.accessLog().append(record);
}

// Moves to the next request once both halves of the current one are done.
// Never called from inside this connection's parser callbacks.
void ClientConnection::advance() {
  if (done_ || stream_->closing()) return;
  while (inRequest_ && responseComplete_ && (requestComplete_ || !keepAlive_)) {
    endLog();
    exchange_.reset();
    inRequest_ = false;
    statusCounted_ = false;
    responseStarted_ = false;
    site_ = nullptr;  // a request refused before its head is read has no site
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
    parser_.resume();
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
  bool bodyBlocked = exchange_ != nullptr && exchange_->writeQueueFull();
  if (!stream_->reading() && pending_.size() <= kMaxPending && !bodyBlocked && !peerDone_) {
    stream_->startReading();
  }
}

}  // namespace tlsedge::proxy
