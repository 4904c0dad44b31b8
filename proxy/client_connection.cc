#include "proxy/client_connection.h"

#include <string_view>

#include "base/log.h"
#include "proxy/http_util.h"
#include "proxy/redirect.h"
#include "proxy/worker.h"

namespace tlsedge::proxy {
namespace {
constexpr std::string_view kChallengePrefix = "/.well-known/acme-challenge/";
// Pipelined bytes held while a response is in progress; beyond this the
// client is not read until the response is done.
constexpr size_t kMaxPending = 64 * 1024;

bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

// The X-Forwarded-* headers are set by the edge alone: a client's own values
// are dropped, never trusted or appended to (this is the trust boundary).
bool isForwardedHeader(std::string_view name) {
  return equalsIgnoreCase(name, "x-forwarded-for") || equalsIgnoreCase(name, "x-forwarded-proto") ||
         equalsIgnoreCase(name, "x-forwarded-host");
}

// "HTTP/1.1 NNN Reason\r\n" for an origin's response head.
std::string statusLine(const net::MessageHead& head) {
  std::string out = "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += head.reason.empty() ? reasonPhrase(head.status) : std::string_view(head.reason);
  out += "\r\n";
  return out;
}

// The end-to-end header lines of `head` (hop-by-hop ones left out).
void appendEndToEndHeaders(std::string& out, const net::MessageHead& head) {
  const auto tokens = connectionTokens(head);
  for (const auto& h : head.headers) {
    if (isHopByHop(h.name, tokens)) continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
}

// Every Upgrade header value of `head`, comma-joined (RFC 9110 7.8).
std::string upgradeProtocols(const net::MessageHead& head) {
  std::string out;
  for (const auto& h : head.headers) {
    if (!equalsIgnoreCase(h.name, "upgrade")) continue;
    if (!out.empty()) out += ", ";
    out += h.value;
  }
  return out;
}
}  // namespace

ClientConnection* ClientConnection::accept(Worker& worker, uv_stream_t* server,
                                           SSL_CTX* tlsContext) {
  auto* c = new ClientConnection(worker, tlsContext != nullptr);
  SSL* ssl = tlsContext != nullptr ? newServerSsl(tlsContext, &c->handshake_) : nullptr;
  c->stream_ = net::Stream::accept(server, ssl, c);
  if (c->stream_ == nullptr) {
    delete c;
    return nullptr;
  }
  c->stream_->startReading();
  return c;
}

ClientConnection::ClientConnection(Worker& worker, bool tls)
    : worker_(worker),
      generation_(worker.generation()),
      tls_(tls),
      parser_(net::HttpParser::Kind::kRequest, *this) {
  handshake_.selector = generation_->selector.get();
}

ClientConnection::~ClientConnection() = default;

void ClientConnection::drain() {
  if (tunnel_ != nullptr) {
    tunnel_->drain();
  } else if (!inRequest_) {
    stream_->shutdown();
  } else {
    keepAlive_ = false;
  }
}

void ClientConnection::abort() {
  if (tunnel_ != nullptr) {
    tunnel_->abort();
  } else {
    stream_->close();
  }
}

// ------------------------------------------------------------ stream events

void ClientConnection::onStreamHandshakeDone() {}

void ClientConnection::onStreamData(const char* data, size_t size) {
  if (!pending_.empty() || parser_.paused()) {
    pending_.append(data, size);
    if (pending_.size() > kMaxPending) stream_->stopReading();
    return;
  }
  feed(data, size);
  advance();
}

void ClientConnection::onStreamEof() {
  peerDone_ = true;
  if (inRequest_) {
    keepAlive_ = false;  // answer what was asked, then close
    // A request cut short is not answered, unless the client skipped the
    // body it announced with Expect: 100-continue and the answer has begun.
    if (!requestComplete_ && !(responseStarted_ && bodyMayNeverCome())) stream_->close();
    return;
  }
  stream_->shutdown();
}

void ClientConnection::onStreamError(const std::string& reason) {
  log::debug("client " + stream_->peerIp() + ": " + reason);
}

void ClientConnection::onStreamDrained() {
  if (exchange_ != nullptr) exchange_->resumeResponse();
}

void ClientConnection::onStreamClosed() {
  exchange_.reset();
  worker_.connectionClosed(this);
  delete this;
}

// ----------------------------------------------------------- request events

void ClientConnection::feed(const char* data, size_t size) {
  size_t used = parser_.feed(data, size);
  if (parser_.failed()) {
    log::debug("client " + stream_->peerIp() + ": bad request: " + parser_.errorReason());
    respondAndClose(400, "Bad Request: " + parser_.errorReason() + "\n");
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

void ClientConnection::onHead(net::MessageHead& head) {
  inRequest_ = true;
  requestComplete_ = false;
  responseComplete_ = false;
  keepAlive_ = head.keepAlive && !peerDone_ && !worker_.draining();
  headRequest_ = head.method == "HEAD";
  clientHttp11_ = head.versionMajor == 1 && head.versionMinor >= 1;
  responseStarted_ = false;
  site_ = nullptr;
  upgradeRequested_ = false;
  continueRelayed_ = false;
  // RFC 9110 10.1.1: only HTTP/1.1 clients expect a 100, and only for content.
  const std::string* expect = head.find("expect");
  expectContinue_ = clientHttp11_ && expect != nullptr &&
                    equalsIgnoreCase(*expect, "100-continue") &&
                    (head.chunked || head.contentLength.value_or(0) > 0);
  if (head.upgrade) {
    // Upgrade + Connection: upgrade, or CONNECT. Whatever the answer, nothing
    // after this request is HTTP: the connection becomes a tunnel (101) or
    // closes after the response.
    keepAlive_ = false;
    if (head.method == "CONNECT") {
      respond(501, "Not Implemented: CONNECT (tlsedge is a reverse proxy, not a forward proxy)\n");
      return;
    }
    upgradeRequested_ = clientHttp11_;  // RFC 9110 7.8: ignored in HTTP/1.0
  }
  route(head);
}

void ClientConnection::route(net::MessageHead& head) {
  const Generation& gen = *generation_;
  const std::string* host = head.find("host");
  if (host == nullptr || host->empty()) {
    respond(400, "Bad Request: missing Host header\n");
    return;
  }
  std::string_view target = head.target;
  if (!tls_ && target.starts_with(kChallengePrefix)) {
    // RFC 8555 section 8.3: answered here, whatever the site's settings.
    std::string_view token = target.substr(kChallengePrefix.size());
    token = token.substr(0, token.find('?'));
    auto keyAuthorization =
        acme::validToken(token) ? worker_.challenges().find(token) : std::nullopt;
    if (keyAuthorization) {
      respond(200, *keyAuthorization, "text/plain");
    } else {
      respond(404, "Not Found: unknown challenge token\n");
    }
    return;
  }
  site_ = gen.router->findSite(*host);
  if (site_ == nullptr) {
    respond(404, "Not Found: no site for this host\n");
    return;
  }
  if (!tls_ && site_->redirectHttps) {
    std::string location = httpsRedirectLocation(*host, target, worker_.httpsPort());
    if (location.empty()) {
      respond(400, "Bad Request: invalid Host header\n");
      return;
    }
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
  proxyTo(*upstream, head);
}

void ClientConnection::proxyTo(const conf::Upstream& upstream, net::MessageHead& head) {
  Exchange::Request request;
  request.head = forwardedRequestHead(head);
  if (head.chunked) {
    request.framing = BodyFraming::kChunked;
  } else if (head.contentLength.value_or(0) > 0) {
    request.framing = BodyFraming::kLength;
  }
  request.headMethod = headRequest_;
  request.idempotent = isIdempotent(head.method);
  request.upgrade = upgradeRequested_;
  exchange_ = std::make_unique<Exchange>(worker_.upstreams(), generation_->upstreamSetup(upstream),
                                         std::move(request), *this);
  exchange_->start();
}

std::string ClientConnection::forwardedRequestHead(const net::MessageHead& head) const {
  const auto tokens = connectionTokens(head);
  std::string out;
  out.reserve(512);
  out += head.method;
  out += ' ';
  out += head.target;
  out += " HTTP/1.1\r\n";
  for (const auto& h : head.headers) {
    if (isHopByHop(h.name, tokens) || isForwardedHeader(h.name)) continue;
    // An HTTP/1.0 client's expectation is ignored (RFC 9110 10.1.1).
    if (!clientHttp11_ && equalsIgnoreCase(h.name, "expect")) continue;
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  if (head.chunked) out += "Transfer-Encoding: chunked\r\n";
  if (upgradeRequested_) {
    // Hop-by-hop, yet the upgrade is asked of the origin: passed on as such.
    out += "Connection: upgrade\r\nUpgrade: ";
    out += upgradeProtocols(head);
    out += "\r\n";
  }
  out += "X-Forwarded-For: ";
  out += stream_->peerIp();
  out += tls_ ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n";
  out += "X-Forwarded-Host: ";
  out += *head.find("host");
  out += "\r\n\r\n";
  return out;
}

void ClientConnection::onBody(std::string_view data) {
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
  std::string headers(extraHeaders);
  headers += siteHeaders();
  stream_->write(simpleResponse(status, contentType, body, keepAlive_, headers, headRequest_));
  responseStarted_ = true;
  responseComplete_ = true;
}

void ClientConnection::respondAndClose(int status, std::string_view body) {
  exchange_.reset();
  keepAlive_ = false;
  if (!responseStarted_) {
    stream_->write(simpleResponse(status, "text/plain; charset=utf-8", body, false, {}, false));
  }
  stream_->shutdown();
}

void ClientConnection::onUpstreamHead(net::MessageHead& head) {
  if (bodyMayNeverCome()) keepAlive_ = false;
  const auto tokens = connectionTokens(head);
  const bool bodyless = headRequest_ || head.status == 204 || head.status == 304;
  std::string out = statusLine(head);
  out.reserve(512);
  bool originHsts = false;
  for (const auto& h : head.headers) {
    if (isHopByHop(h.name, tokens)) continue;
    originHsts = originHsts || equalsIgnoreCase(h.name, "strict-transport-security");
    out += h.name;
    out += ": ";
    out += h.value;
    out += "\r\n";
  }
  chunkedResponse_ = false;
  if (head.chunked) {
    out += "Transfer-Encoding: chunked\r\n";
    chunkedResponse_ = !bodyless;
  } else if (!bodyless && !head.contentLength) {
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
  stream_->write(out);
  responseStarted_ = true;
}

void ClientConnection::onUpstreamInterim(net::MessageHead& head) {
  // RFC 9110 15.2: a proxy forwards 1xx, but never to an HTTP/1.0 client.
  if (!clientHttp11_ || responseStarted_) return;
  std::string out = statusLine(head);
  appendEndToEndHeaders(out, head);
  out += "\r\n";
  stream_->write(out);
  if (head.status == 100) continueRelayed_ = true;
}

void ClientConnection::onUpstreamUpgraded(net::MessageHead& head, net::Stream* origin,
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
  std::string out = statusLine(head);
  appendEndToEndHeaders(out, head);
  out += "Connection: upgrade\r\nUpgrade: ";
  out += upgradeProtocols(head);
  out += "\r\n\r\n";
  stream_->write(out);
  responseStarted_ = true;
  responseComplete_ = true;
  // From here the tunnel has both streams; this object only owns it.
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
  delete this;
}

void ClientConnection::onUpstreamBody(std::string_view data) {
  if (data.empty()) return;
  if (!chunkedResponse_) {
    stream_->write(data);
    return;
  }
  stream_->write(chunk(data));
}

void ClientConnection::onUpstreamComplete() {
  if (chunkedResponse_) stream_->write(kLastChunk);
  responseComplete_ = true;
  advance();
}

void ClientConnection::onUpstreamFailed(int status, bool beforeHead, const std::string& reason) {
  (void)reason;  // logged by the exchange
  if (!beforeHead) {
    // Part of the response went out: only a close tells the client it is cut.
    stream_->close();
    return;
  }
  if (!requestComplete_) keepAlive_ = false;  // do not wait for the rest of a body
  respond(status, std::string(reasonPhrase(status)) + "\n");
  advance();
}

void ClientConnection::onUpstreamDrained() { advance(); }

bool ClientConnection::clientWriteQueueFull() const { return stream_->writeQueueFull(); }

// Moves to the next request once both halves of the current one are done.
// Never called from inside this connection's parser callbacks.
void ClientConnection::advance() {
  if (stream_->closing()) return;
  while (inRequest_ && responseComplete_ && (requestComplete_ || !keepAlive_)) {
    exchange_.reset();
    inRequest_ = false;
    if (!keepAlive_ || worker_.draining()) {
      stream_->shutdown();
      return;
    }
    parser_.resume();
    if (pending_.empty()) break;
    std::string input = std::move(pending_);
    pending_.clear();
    feed(input.data(), input.size());
    if (stream_->closing()) return;
  }
  if (!inRequest_ && peerDone_) {
    stream_->shutdown();
    return;
  }
  bool bodyBlocked = exchange_ != nullptr && exchange_->writeQueueFull();
  if (!stream_->reading() && pending_.size() <= kMaxPending && !bodyBlocked && !peerDone_) {
    stream_->startReading();
  }
}

}  // namespace tlsedge::proxy
